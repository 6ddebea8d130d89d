"""Settings come from the fixed variable names, with the local stack's defaults; each service's
own config is read field by field, by the type of the field."""

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from services.analytics.config import AnalyticsConfig
from services.common.settings import Settings, SettingsError, read_config, setting
from services.covid.config import CovidConfig
from services.dashboard.config import DashboardConfig
from services.dedup.config import DedupConfig
from services.enrich.config import EnrichConfig
from services.notify.config import NotifyConfig


def test_defaults_point_at_the_local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stack folder with nothing in it: the defaults, whatever the machine's stack runs.
    monkeypatch.setenv("HARPICOOP_STACK_DIR", str(tmp_path))
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
    # The stack's IMAP server and the platform's mailbox, the sending address's own.
    assert (settings.imap_host, settings.imap_port, settings.imap_security) == (
        "localhost",
        1143,
        "none",
    )
    assert settings.imap_user == settings.smtp_from


def test_the_brokers_come_from_the_environment_else_the_local_stacks_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARPICOOP_STACK_DIR", str(tmp_path))
    (tmp_path / "kafka").mkdir()
    three = "localhost:9092,localhost:9094,localhost:9096"
    (tmp_path / "kafka" / "bootstrap-servers").write_text(three + "\n")
    assert Settings.from_env({}).kafka_bootstrap_servers == three
    named = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093"}
    assert Settings.from_env(named).kafka_bootstrap_servers == "kafka-1:9093"


def test_the_mailbox_password_comes_from_the_environment_else_the_local_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARPICOOP_STACK_DIR", str(tmp_path))
    assert Settings.from_env({}).imap_password is None  # a stack that made no mailbox
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "imap-mailbox").write_text("local-one\n")
    assert Settings.from_env({}).imap_password == "local-one"
    given = Settings.from_env({"IMAP_PASSWORD": "operator", "IMAP_SECURITY": "STARTTLS"})
    assert (given.imap_password, given.imap_security) == ("operator", "starttls")


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
        ("IMAP_SECURITY", "ssl", "use one of none, starttls, tls"),
        ("IMAP_PORT", "993a", "not a port number"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says) as error:
        Settings.from_env({name: value})
    assert name in str(error.value)


@dataclasses.dataclass(frozen=True)
class Example:
    name: str = setting("default", "EX_NAME")
    count: int = setting(3, "EX_COUNT", minimum=1)
    ratio: float = setting(0.5, "EX_RATIO")
    folder: Path = setting(Path("/var/lib/example"), "EX_FOLDER")
    items: tuple[str, ...] = setting(("a", "b"), "EX_ITEMS")
    port: int | None = setting(None, "EX_PORT")
    delay: dt.timedelta = setting(dt.timedelta(days=7), "EX_DELAY_SECONDS", "EX_DELAY_DAYS")
    window: dt.timedelta = setting(dt.timedelta(hours=1), "EX_WINDOW_MINUTES", minimum=1)
    fixed: str = "not from the environment"


def test_a_config_keeps_its_defaults_when_variables_are_unset_or_empty() -> None:
    assert read_config(Example, {}) == Example()
    assert read_config(Example, {"EX_NAME": "", "EX_COUNT": "  ", "EX_PORT": ""}) == Example()


def test_each_field_is_read_as_its_annotation_says() -> None:
    config = read_config(
        Example,
        {
            "EX_NAME": "stays.raw",
            "EX_COUNT": "12",
            "EX_RATIO": "0.25",
            "EX_FOLDER": "/data/x",
            "EX_ITEMS": " notify, covid ,,",
            "EX_PORT": "6066",
            "EX_DELAY_DAYS": "1.5",
            "EX_WINDOW_MINUTES": "90",
        },
    )
    assert config == Example(
        "stays.raw",
        12,
        0.25,
        Path("/data/x"),
        ("notify", "covid"),
        6066,
        dt.timedelta(days=1.5),
        dt.timedelta(minutes=90),
    )


def test_the_first_variable_set_wins() -> None:
    both = {"EX_DELAY_SECONDS": "30", "EX_DELAY_DAYS": "2"}
    assert read_config(Example, both).delay == dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"EX_COUNT": "three"}, r"EX_COUNT='three' is not a whole number"),
        ({"EX_COUNT": "0"}, r"EX_COUNT='0' must be at least 1"),
        ({"EX_DELAY_SECONDS": "a week"}, r"EX_DELAY_SECONDS='a week' is not a number of seconds"),
        ({"EX_WINDOW_MINUTES": "0.5"}, r"EX_WINDOW_MINUTES='0.5' must be at least 1 minutes"),
    ],
)
def test_a_value_that_cannot_be_used_is_named_with_its_variable(
    variables: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError, match=says):
        read_config(Example, variables)


@pytest.mark.parametrize(
    "config",
    [AnalyticsConfig, CovidConfig, DashboardConfig, DedupConfig, EnrichConfig, NotifyConfig],
)
def test_every_service_setting_has_a_variable_and_reads_back_its_default(config: type) -> None:
    for item in dataclasses.fields(config):
        assert item.metadata.get("env"), f"{config.__name__}.{item.name} has no variable"
    assert read_config(config, {}) == config()
