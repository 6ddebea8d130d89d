"""Settings come from the fixed variable names, with the local stack's defaults."""

import pytest

from services.common.settings import Settings, SettingsError


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.schema_registry_url == "http://localhost:8081/apis/ccompat/v7"
    assert settings.database_url.endswith("@localhost:5433/harpicoop")
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "localhost",
        2525,
        "none",
    )
    assert settings.mllp_port == 2575
    assert settings.kafka_security.librdkafka_config() == {"security.protocol": "PLAINTEXT"}


def test_environment_overrides_each_fixed_name() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
            "SCHEMA_REGISTRY_URL": "https://registry.example/apis/ccompat/v7",
            "DATABASE_URL": "postgresql://u:p@db/harpicoop",
            "SMTP_HOST": "smtp.mssante.example",
            "SMTP_PORT": "465",
            "SMTP_SECURITY": "TLS",
            "SMTP_FROM": "notifications@chru-nancy.mssante.fr",
            "MLLP_HOST": "127.0.0.1",
            "MLLP_PORT": "6661",
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "harpicoop",
            "KAFKA_SASL_PASSWORD": "secret",
            "KAFKA_SSL_CA_LOCATION": "/etc/harpicoop/ca.pem",
        }
    )
    assert settings.kafka_bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert settings.smtp_port == 465 and settings.smtp_security == "tls"
    assert settings.mllp_port == 6661
    assert settings.kafka_security.librdkafka_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "harpicoop",
        "sasl.password": "secret",
        "ssl.ca.location": "/etc/harpicoop/ca.pem",
    }


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SMTP_PORT", "twenty-five", "not a port number"),
        ("MLLP_PORT", "70000", "outside 1..65535"),
        ("SMTP_SECURITY", "ssl", "use one of none, starttls, tls"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says) as error:
        Settings.from_env({name: value})
    assert name in str(error.value)
