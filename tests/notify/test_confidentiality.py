"""Confidentiality and opposition against the real stack: notify's ledger in PostgreSQL, the
service on Kafka, the SMTP server keeping every email. A protected stay and an opposed patient
get no email, each notice skipped with the reason; an objection recorded after a first notice
stops the later ones, and the waiting ones are withdrawn."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from services.cli.__main__ import main
from services.cli.reconcile import withheld_check, withheld_stays
from services.cli.run import record_day_oppositions
from services.common import outbox
from services.common.db import connect
from services.common.records import StayEvent
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.common.skip_reasons import SkipReason
from services.notify import privacy
from services.notify.delivery import DeliveryWorker
from tests.notify.builders import enriched, put_notice, recipient
from tests.support import MailServer, ServiceProcess, as_principal, eventually

pytestmark = pytest.mark.integration


def address() -> str:
    return f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"


def state(conn: outbox.Conn, notification_id: str) -> tuple[str, str | None]:
    row = conn.execute(
        "SELECT state, detail FROM notification WHERE notification_id = %s", (notification_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.fixture
def operator(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str]]:
    """``harpicoop opposition ...`` as the operator's principal, on the test's database, its
    audit log in the test's folder; the exit code and what it printed."""
    monkeypatch.setenv("DATABASE_URL", as_principal(empty_database, "operator"))
    monkeypatch.setenv("HARPICOOP_AUDIT_LOG", str(tmp_path / "audit.log"))

    def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        code = main(["opposition", *argv])
        return code, capsys.readouterr().out

    return run


def test_a_protection_holds_for_the_stay_until_an_explicit_n(ledger_conn: outbox.Conn) -> None:
    event = enriched("V1", [])["event"]
    said = []
    for patient, visit in [(None, None), (True, None), (None, None), (False, None), (None, True)]:
        event["patient_protected"], event["stay_protected"] = patient, visit
        said.append(privacy.remember_stay(ledger_conn, StayEvent.from_avro(event)).protected)
    # Unsaid is not yet protected; Y protects; a message without PD1-12 keeps it; N lifts it;
    # PV2-22 Y protects the stay on its own.
    assert said == [False, True, True, False, True]


def test_an_objection_holds_waiting_notices_and_notify_withdraws_them(
    ledger_conn: outbox.Conn,
    worker: DeliveryWorker,
    operator: Callable[..., tuple[int, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Recorded by the operator, an objection holds at once what waits to go (no worker takes
    it), and notify records it skipped with the reason; the audit log names the opposition
    only; the listing shows ids only."""
    notice = put_notice(ledger_conn, worker.statuses, "10101010901", address())
    stay = enriched("V900", [])["event"]  # the stay put_notice's notice belongs to
    privacy.remember_stay(ledger_conn, StayEvent.from_avro(stay))
    ipp = stay["patient"]["ipp"]

    code, out = operator("add", "--establishment", "chrunancy", "--ipp", ipp, capsys=capsys)
    assert code == 0 and "1 waiting notice(s) held" in out
    opposition_id = int(out.split()[1])
    assert worker.deliver_due() == 0  # held: due at infinity
    assert privacy.withdraw_withheld(ledger_conn, worker.statuses) == 1
    assert state(ledger_conn, notice) == ("skipped", SkipReason.OPPOSED.sentence)

    code, out = operator("add", "--establishment", "chrunancy", "--ipp", ipp, capsys=capsys)
    assert code == 0 and f"opposition {opposition_id} already recorded" in out
    code, out = operator("list", capsys=capsys)
    assert f"{opposition_id}\tchrunancy\tIPP\t{ipp}\t" in out
    assert "Lefèvre".upper() not in out.upper() and "Hélène" not in out
    code, out = operator("remove", str(opposition_id), capsys=capsys)
    assert code == 0 and "lifted" in out
    assert str(opposition_id) not in operator("list", capsys=capsys)[1].split("\n", 1)[1]
    assert operator("remove", str(opposition_id), capsys=capsys)[0] == 1

    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["opposition_id"]) for line in lines] == [
        ("opposition add", opposition_id),
        ("opposition remove", opposition_id),
    ]
    assert ipp not in (tmp_path / "audit.log").read_text()


def test_an_objection_by_ins_applies_in_every_establishment(
    ledger_conn: outbox.Conn,
    operator: Callable[..., tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ins = "248017512345678"
    at_toul = enriched("V1", [])["event"]
    at_toul.update(establishment="toul", stay_key="toul:V1")
    at_toul["patient"]["ins"] = ins
    elsewhere = enriched("V2", [])["event"]  # the same IPP at Nancy, but another patient's INS
    elsewhere["patient"]["ins"] = "148017512345678"
    code, _ = operator("add", "--establishment", "chrunancy", "--ins", ins, capsys=capsys)
    assert code == 0
    assert privacy.remember_stay(ledger_conn, StayEvent.from_avro(at_toul)).opposed
    assert not privacy.remember_stay(ledger_conn, StayEvent.from_avro(elsewhere)).opposed
    assert operator("add", "--establishment", "nowhere", "--ins", ins, capsys=capsys)[0] == 2
    assert operator("add", "--establishment", "toul", "--ins", "12", capsys=capsys)[0] == 2


def migrated(database: str) -> bool:
    with connect(database, autocommit=True) as conn:
        row = conn.execute("SELECT to_regprocedure('notify.list_oppositions()')").fetchone()
    return bool(row and row[0])


@pytest.fixture
def publish(
    producer_factory: Callable[..., Producer], serde_factory: Callable[[str], AvroSerde]
) -> Callable[[str, dict[str, Any]], None]:
    producer = producer_factory()
    serde = serde_factory("harpicoop.EnrichedStayEvent")

    def send(topic: str, value: dict[str, Any]) -> None:
        producer.produce(topic, key=value["event"]["stay_key"], value=serde.serialize(topic, value))
        assert producer.flush(10) == 0

    return send


def skipped(
    consumer: Consumer, serde: AvroSerde, seen: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    for message in consumer.consume(500, timeout=0.5):
        if message.error() is None:
            seen.append(serde.deserialize(str(message.topic()), message.value() or b""))
    return [item for item in seen if item["status"] == "SKIPPED"]


def test_protected_and_opposed_stays_send_nothing_and_an_objection_stops_later_notices(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
    empty_database: str,
    operator: Callable[..., tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = notify_factory(mail_server)
    statuses = consumer_factory(service.topics["status"])
    status_serde = serde_factory("harpicoop.NotificationStatus")
    seen: list[dict[str, Any]] = []
    topic = service.topics["input"]

    # A stay under PD1-12 Y: its admission, then a transfer that no longer says PD1-12.
    protected_to = address()
    admission = enriched("V10", [recipient("10101011001", protected_to)], movement_id="M10")
    admission["event"]["patient_protected"] = True
    transfer = enriched(
        "V10", [recipient("10101011001", protected_to)], kind="TRANSFER", movement_id="M11"
    )
    publish(topic, admission)
    publish(topic, transfer)

    # A patient who objected before their stay: keyed by the establishment's IPP.
    opposed_to = address()
    opposed = enriched("V20", [recipient("10101011002", opposed_to)], movement_id="M20")
    opposed["event"]["patient"]["ipp"] = "IPP-OPPOSED"
    eventually(lambda: migrated(empty_database), what="notify's migrations")
    assert (
        operator("add", "--establishment", "chrunancy", "--ipp", "IPP-OPPOSED", capsys=capsys)[0]
        == 0
    )
    publish(topic, opposed)

    # A patient told of once, who then objects: the discharge goes to nobody.
    later_to = address()
    first = enriched("V30", [recipient("10101011003", later_to)], movement_id="M30")
    first["event"]["patient"]["ipp"] = "IPP-LATER"
    publish(topic, first)
    eventually(lambda: mail_server.to(later_to), what="the first notice")
    assert (
        operator("add", "--establishment", "chrunancy", "--ipp", "IPP-LATER", capsys=capsys)[0] == 0
    )
    discharge = enriched(
        "V30", [recipient("10101011003", later_to)], kind="DISCHARGE", movement_id="M31"
    )
    discharge["event"]["patient"]["ipp"] = "IPP-LATER"
    publish(topic, discharge)

    reasons = eventually(
        lambda: (
            len(found := skipped(statuses, status_serde, seen)) == 4
            and sorted((item["stay_key"], item["kind"], item["detail"]) for item in found)
        ),
        what="four skipped notices",
    )
    assert reasons == [
        ("chrunancy:V10", "ADMISSION", SkipReason.PROTECTED.sentence),
        ("chrunancy:V10", "TRANSFER", SkipReason.PROTECTED.sentence),
        ("chrunancy:V20", "ADMISSION", SkipReason.OPPOSED.sentence),
        ("chrunancy:V30", "DISCHARGE", SkipReason.OPPOSED.sentence),
    ]
    assert mail_server.to(protected_to) == [] and mail_server.to(opposed_to) == []
    assert len(mail_server.to(later_to)) == 1

    # What make run's check reads, as the operator: nothing handed to the SMTP server once
    # withheld (V30's first notice went out before the objection), a stay never withheld absent.
    with connect(as_principal(empty_database, "operator"), autocommit=True) as conn:
        rows = withheld_stays(conn, ["chrunancy:V10", "chrunancy:V20", "chrunancy:V30", "x:V9"])
    assert sorted(rows) == [("chrunancy:V10", 0), ("chrunancy:V20", 0), ("chrunancy:V30", 0)]
    assert withheld_check(rows).ok
    with connect(empty_database, autocommit=True) as conn:
        flags = conn.execute(
            "SELECT stay_key, protected, opposed FROM v_withheld_stays ORDER BY 1"
        ).fetchall()
    assert flags == [
        ("chrunancy:V10", True, False),
        ("chrunancy:V20", False, True),
        ("chrunancy:V30", False, True),
    ]


def test_a_stay_unheard_of_past_the_retention_is_forgotten(ledger_conn: outbox.Conn) -> None:
    old, recent = enriched("V1", [])["event"], enriched("V2", [])["event"]
    old["patient_protected"] = True
    for event in (old, recent):
        privacy.remember_stay(ledger_conn, StayEvent.from_avro(event))
    ledger_conn.execute(
        "UPDATE stay_privacy SET updated_at = now() - interval '31 days' WHERE stay_key = %s",
        (old["stay_key"],),
    )
    assert privacy.purge_stays(ledger_conn, dt.timedelta(days=30), 100) == 1
    kept = ledger_conn.execute("SELECT stay_key FROM stay_privacy").fetchall()
    assert kept == [(recent["stay_key"],)]


def test_the_sensitivity_policy_suppresses_or_shortens_notices(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    """deploy/sensitivity.toml as shipped: the psychiatric centre's stays go to nobody, CH
    Ravenel's psychiatric units are not named."""
    service = notify_factory(mail_server)
    statuses = consumer_factory(service.topics["status"])
    status_serde = serde_factory("harpicoop.NotificationStatus")
    seen: list[dict[str, Any]] = []
    at_cpn, at_ravenel = address(), address()
    psychiatric = enriched("V40", [recipient("10101011004", at_cpn)], movement_id="M40")
    psychiatric["event"].update(establishment="cpn", stay_key="cpn:V40")
    psychiatric["event"]["movement"].update(unit="G01", unit_name=None)
    ravenel = enriched(
        "V50",
        [recipient("10101011005", at_ravenel)],
        kind="DISCHARGE",
        movement_id="M50",
        disposition="7",
        destination="CH_TOUL",
    )
    ravenel["event"].update(establishment="ravenel", stay_key="ravenel:V50")
    ravenel["event"]["movement"].update(unit="PSY1", unit_name="Psychiatrie générale secteur 1")
    publish(service.topics["input"], psychiatric)
    publish(service.topics["input"], ravenel)

    [email] = eventually(lambda: mail_server.to(at_ravenel), what="the minimal discharge notice")
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Centre hospitalier Ravenel" in email["Subject"]
    assert "Psychiatrie" not in text and "Service :" not in text
    assert "Destination :" not in text and "Toul" not in text
    [withheld] = eventually(
        lambda: skipped(statuses, status_serde, seen), what="the psychiatric centre's skip"
    )
    assert withheld["stay_key"] == "cpn:V40"
    assert withheld["detail"] == SkipReason.SENSITIVE_UNIT.sentence
    assert mail_server.to(at_cpn) == []


def test_make_run_records_the_days_objections_as_the_operator(
    ledger_conn: outbox.Conn,
    empty_database: str,
    operator: Callable[..., tuple[int, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before the day is sent, as ``make run`` calls the simulator: each objection once, in the
    register and in the audit log, however often it is recorded."""
    args = ["--fast", "--seed", "7", "--rate", "0.3", "--date", "2026-03-02"]
    settings = Settings(database_url=as_principal(empty_database, "operator"))
    recorded = record_day_oppositions(settings, args)
    assert recorded > 0
    assert record_day_oppositions(settings, args) == recorded  # a second run: nothing new
    listed = operator("list", capsys=capsys)[1].strip().splitlines()[1:]
    assert len(listed) == recorded
    audit = (tmp_path / "audit.log").read_text().splitlines()
    assert len(audit) == recorded and all('"by": "make run"' in line for line in audit)


def test_the_running_service_withdraws_a_retrying_notice_of_a_patient_who_objects(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
    empty_database: str,
    operator: Callable[..., tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A notice waiting for its next attempt when the objection comes is never sent: notify's
    sweeper records it skipped and publishes that status."""
    service = notify_factory(mail_server, NOTIFY_WITHHELD_INTERVAL_SECONDS="0.5")
    statuses = consumer_factory(service.topics["status"])
    status_serde = serde_factory("harpicoop.NotificationStatus")
    eventually(lambda: migrated(empty_database), what="notify's migrations")
    notice = str(uuid.uuid4())
    with connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO notify.stay_privacy (stay_key, establishment, ipp) "
            "VALUES ('toul:V60', 'toul', 'IPP-RETRY')"
        )
        conn.execute(
            "INSERT INTO notify.notification (notification_id, event_id, stay_key, establishment,"
            " movement_key, kind, recipient_rpps, recipient_address, message_id, message, state,"
            " attempts, next_attempt_at) VALUES (%s, 'toul:M60', 'toul:V60', 'toul', 'toul:M60',"
            " 'ADMISSION', '10101011006', %s, '<x@y>', '\\x00', 'retrying', 1,"
            " now() + interval '1 hour')",
            (notice, address()),
        )
    assert operator("add", "--establishment", "toul", "--ipp", "IPP-RETRY", capsys=capsys)[0] == 0
    seen: list[dict[str, Any]] = []
    [withdrawn] = eventually(
        lambda: skipped(statuses, status_serde, seen), what="the withdrawn notice's status"
    )
    assert withdrawn["notification_id"] == notice
    assert withdrawn["detail"] == SkipReason.OPPOSED.sentence
