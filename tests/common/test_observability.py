"""Every service serves Prometheus metrics and a health endpoint that tells the truth."""

from __future__ import annotations

import httpx

from services.common.observability import LAG, PROCESSED, ObservabilityServer, lag_from_statistics


def test_metrics_and_health_are_served_over_http() -> None:
    healthy = {"database": True}
    server = ObservabilityServer("notify", 0, {"database": lambda: healthy["database"]}).start()
    try:
        PROCESSED.labels("notify", "sent").inc(3)
        metrics = httpx.get(f"http://localhost:{server.port}/metrics").text
        assert 'harpicoop_records_processed_total{outcome="sent",service="notify"}' in metrics

        answer = httpx.get(f"http://localhost:{server.port}/health")
        assert answer.status_code == 200
        assert answer.json() == {"service": "notify", "healthy": True, "checks": {"database": True}}

        healthy["database"] = False
        answer = httpx.get(f"http://localhost:{server.port}/health")
        assert answer.status_code == 503 and answer.json()["checks"] == {"database": False}
    finally:
        server.stop()


def test_consumer_lag_comes_from_the_client_statistics() -> None:
    lag_from_statistics("enrich")(
        '{"topics": {"stays.unique": {"partitions": {"0": {"consumer_lag": 42}, '
        '"1": {"consumer_lag": -1}, "-1": {"consumer_lag": 0}}}}}'
    )
    assert LAG.labels("enrich", "stays.unique", "0")._value.get() == 42
