"""Settings from the fixed environment variables, with the local stack's defaults.

Every service builds one ``Settings`` at start-up and passes it down; nothing else reads the
environment, so what a service is configured with is visible in one place.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args, get_origin, get_type_hints

from services.common.ports import local_port

SmtpSecurity = Literal["none", "starttls", "tls"]

_SMTP_SECURITY_VALUES: tuple[SmtpSecurity, ...] = ("none", "starttls", "tls")


class SettingsError(ValueError):
    """An environment variable holds a value the services cannot use."""


T = TypeVar("T")
C = TypeVar("C")

_DURATION_UNITS = {"_SECONDS": "seconds", "_MINUTES": "minutes", "_HOURS": "hours", "_DAYS": "days"}


def setting(default: T, *names: str, minimum: float | None = None) -> T:
    """A field of a service's config dataclass, read by ``read_config`` from the first of the
    environment variables ``names`` that is set; unset or empty keeps ``default``.

    The field's annotation says how the text is read: ``str``, ``int``, ``float``, ``Path``,
    ``tuple[str, ...]`` (comma-separated), ``X | None``, or ``timedelta`` in the unit its
    variable's name ends with (``_SECONDS``, ``_MINUTES``, ``_HOURS``, ``_DAYS``). ``minimum``
    bounds a number or a duration (in that unit).
    """
    return field(default=default, metadata={"env": names, "minimum": minimum})


def read_config(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
    """An instance of the config dataclass ``cls``, its ``setting`` fields from the environment."""
    env = os.environ if environ is None else environ
    kinds = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in fields(cast(Any, cls)):
        for name in item.metadata.get("env", ()):
            raw = env.get(name, "")
            if raw.strip():
                values[item.name] = _read(name, raw, kinds[item.name], item.metadata["minimum"])
                break
    return cls(**values)


def _read(name: str, raw: str, kind: Any, minimum: float | None) -> Any:
    optional = [arg for arg in get_args(kind) if arg is not type(None)]
    if len(optional) == 1:
        kind = optional[0]
    if kind is str:
        return raw
    if kind is Path:
        return Path(raw)
    if get_origin(kind) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if kind is dt.timedelta:
        unit = next((unit for end, unit in _DURATION_UNITS.items() if name.endswith(end)), None)
        if unit is None:
            raise TypeError(f"{name}: a duration's variable must end with its unit")
        return dt.timedelta(**{unit: _number(name, raw, float, minimum, unit)})
    if kind in (int, float):
        return _number(name, raw, kind, minimum, "")
    raise TypeError(f"{name}: no reader for {kind!r}")


def _number(name: str, raw: str, kind: type, minimum: float | None, unit: str) -> Any:
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not {what}{f' of {unit}' if unit else ''}"
        ) from None
    if minimum is not None and value < minimum:
        raise SettingsError(
            f"{name}={raw!r} must be at least {minimum:g}{f' {unit}' if unit else ''}"
        )
    return value


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client signs in to Kafka: from the environment on a real cluster; on the local stack,
    SASL_PLAINTEXT with SCRAM-SHA-512 as the caller's principal (``local_kafka_security``)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None

    def librdkafka_config(self) -> dict[str, str]:
        """The security part of a confluent-kafka configuration."""
        config = {"security.protocol": self.protocol}
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        config.update({key: value for key, value in optional.items() if value})
        return config


@dataclass(frozen=True)
class Settings:
    """Everything a service needs to reach the platform's components."""

    # Local defaults, moved together by HARPICOOP_PORT_SHIFT (services.common.ports).
    kafka_bootstrap_servers: str = f"localhost:{local_port(9092)}"
    schema_registry_url: str = f"http://localhost:{local_port(8081)}/apis/ccompat/v7"
    database_url: str = f"postgresql://harpicoop:harpicoop@localhost:{local_port(5433)}/harpicoop"
    smtp_host: str = "localhost"
    smtp_port: int = local_port(2525)
    smtp_security: SmtpSecurity = "none"
    smtp_from: str = "harpicoop@ght-sud-lorraine.mssante.fr"
    smtp_client_cert: str | None = None
    smtp_client_key: str | None = None
    smtp_ca_file: str | None = None
    mllp_host: str = "0.0.0.0"
    mllp_port: int = local_port(2575)
    imap_host: str = "localhost"
    imap_port: int = local_port(1143)
    imap_user: str = "harpicoop@ght-sud-lorraine.mssante.fr"
    """The applicative mailbox, where DSNs, read receipts and bounces arrive: the sending
    address's own."""
    imap_password: str | None = None
    """Locally, the stack's (``.stack/secrets/imap-mailbox``)."""
    imap_security: SmtpSecurity = "none"
    imap_ca_file: str | None = None
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, principal: str | None = None
    ) -> Settings:
        """Read the fixed variable names; an unset or empty variable keeps its local default.

        ``principal`` is who the caller is (``deploy/access.toml``). When the environment gives
        no Kafka credentials (``KAFKA_SASL_USERNAME``) or no ``DATABASE_URL``, the local stack's
        password of that principal is used, if the stack made one: a service started on this
        machine by hand or by ``make run`` needs no secret in its environment.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        local = _local_credentials(env, principal)

        def text(name: str, default: str) -> str:
            return env.get(name) or default

        def optional(name: str) -> str | None:
            return env.get(name) or None

        def port(name: str, default: int) -> int:
            raw = env.get(name)
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a port number") from None
            if not 0 < value < 65536:
                raise SettingsError(f"{name}={raw!r} is outside 1..65535")
            return value

        def transport(name: str) -> SmtpSecurity:
            value = (env.get(name) or "none").lower()
            if value not in _SMTP_SECURITY_VALUES:
                raise SettingsError(
                    f"{name}={value!r}: use one of {', '.join(_SMTP_SECURITY_VALUES)}"
                )
            return value  # type: ignore[return-value]  # checked just above

        security = transport("SMTP_SECURITY")
        return cls(
            kafka_bootstrap_servers=text(
                "KAFKA_BOOTSTRAP_SERVERS", _local_bootstrap() or defaults.kafka_bootstrap_servers
            ),
            schema_registry_url=text("SCHEMA_REGISTRY_URL", defaults.schema_registry_url),
            database_url=text(
                "DATABASE_URL", local.database_url if local else defaults.database_url
            ),
            smtp_host=text("SMTP_HOST", defaults.smtp_host),
            smtp_port=port("SMTP_PORT", defaults.smtp_port),
            smtp_security=security,
            smtp_from=text("SMTP_FROM", defaults.smtp_from),
            smtp_client_cert=optional("SMTP_CLIENT_CERT"),
            smtp_client_key=optional("SMTP_CLIENT_KEY"),
            smtp_ca_file=optional("SMTP_CA_FILE"),
            mllp_host=text("MLLP_HOST", defaults.mllp_host),
            mllp_port=port("MLLP_PORT", defaults.mllp_port),
            imap_host=text("IMAP_HOST", defaults.imap_host),
            imap_port=port("IMAP_PORT", defaults.imap_port),
            imap_user=text("IMAP_USER", defaults.imap_user),
            imap_password=optional("IMAP_PASSWORD") or _local_mailbox_password(),
            imap_security=transport("IMAP_SECURITY"),
            imap_ca_file=optional("IMAP_CA_FILE"),
            # Credentials or a protocol named in the environment win over the local stack's.
            kafka_security=local.kafka_security
            if local and not (env.get("KAFKA_SASL_USERNAME") or env.get("KAFKA_SECURITY_PROTOCOL"))
            else KafkaSecurity(
                protocol=text("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
                sasl_mechanism=optional("KAFKA_SASL_MECHANISM"),
                sasl_username=optional("KAFKA_SASL_USERNAME"),
                sasl_password=optional("KAFKA_SASL_PASSWORD"),
                ssl_ca_location=optional("KAFKA_SSL_CA_LOCATION"),
                ssl_certificate_location=optional("KAFKA_SSL_CERTIFICATE_LOCATION"),
                ssl_key_location=optional("KAFKA_SSL_KEY_LOCATION"),
            ),
        )

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables ``from_env`` reads (for a child process)."""
        security = self.kafka_security
        pairs = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "SCHEMA_REGISTRY_URL": self.schema_registry_url,
            "DATABASE_URL": self.database_url,
            "KAFKA_SECURITY_PROTOCOL": security.protocol,
            "KAFKA_SASL_MECHANISM": security.sasl_mechanism,
            "KAFKA_SASL_USERNAME": security.sasl_username,
            "KAFKA_SASL_PASSWORD": security.sasl_password,
            "KAFKA_SSL_CA_LOCATION": security.ssl_ca_location,
            "KAFKA_SSL_CERTIFICATE_LOCATION": security.ssl_certificate_location,
            "KAFKA_SSL_KEY_LOCATION": security.ssl_key_location,
        }
        return {key: value for key, value in pairs.items() if value}


LOCAL_DATABASE = "harpicoop"
IMAP_MAILBOX_SECRET = "imap-mailbox"
"""The local stack's file (in ``.stack/secrets``) of the applicative mailbox's password."""
LOCAL_POSTGRES = f"localhost:{local_port(5433)}"
LOCAL_KAFKA_MECHANISM = "SCRAM-SHA-512"
LOCAL_KAFKA_BOOTSTRAP = Path("kafka") / "bootstrap-servers"
"""The local stack's file (in its folder) listing its brokers, one or three
(``services.stack.brokers``): the default bootstrap of whoever runs on this machine."""


def local_kafka_security(principal: str, password: str) -> KafkaSecurity:
    """How ``principal`` signs in to the local stack's broker (SASL/SCRAM, no TLS on loopback)."""
    return KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism=LOCAL_KAFKA_MECHANISM,
        sasl_username=principal,
        sasl_password=password,
    )


@dataclass(frozen=True)
class _LocalCredentials:
    kafka_security: KafkaSecurity
    database_url: str


def _local_credentials(env: Mapping[str, str], principal: str | None) -> _LocalCredentials | None:
    """The local stack's credentials of ``principal``, or None (no principal named, or a stack
    that made no password for it: production, or a stack older than the access declaration)."""
    if principal is None:
        return None
    from services.common.access import LocalSecrets

    password = LocalSecrets.default().get(principal)
    if password is None:
        return None
    return _LocalCredentials(
        kafka_security=local_kafka_security(principal, password),
        database_url=f"postgresql://{principal}:{password}@{LOCAL_POSTGRES}/{LOCAL_DATABASE}",
    )


def _local_bootstrap() -> str | None:
    """Every broker of the local stack, when it wrote their list: with three, a client started
    while the first is down still finds the cluster."""
    from services.common.access import local_stack_dir

    try:
        return (local_stack_dir() / LOCAL_KAFKA_BOOTSTRAP).read_text(encoding="ascii").strip()
    except (FileNotFoundError, PermissionError):
        return None


def _local_mailbox_password() -> str | None:
    """The local stack's IMAP mailbox password, if it made one (``components.Imap``)."""
    from services.common.access import LocalSecrets

    return LocalSecrets.default().get(IMAP_MAILBOX_SECRET)
