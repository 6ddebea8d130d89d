"""SMTP delivery to the MSSanté operator, with the outcome classified for the ledger.

``SMTP_SECURITY`` is ``none``, ``starttls`` or ``tls`` (implicit TLS); MSSanté operators require
TLS 1.2 or later and a client certificate from the health PKI, given by ``SMTP_CLIENT_CERT`` and
``SMTP_CLIENT_KEY`` (``SMTP_CA_FILE`` to trust the operator's CA).

The SMTP exchange is done step by step so that the outcome says where it stopped: a failure
before the message body was sent means nothing was delivered and it is safe to try again; a
connection lost while the body was being accepted leaves the delivery unknown, and the message is
then never resent (at most once).

Where the server speaks DSN (RFC 3461), each notice asks for a delivery status notification on
success and on failure, with the notification id as its envelope id (``ENVID``) and only the
headers returned (``RET=HDRS``: a report never carries the patient's notice back);
``services.notify.receipts`` reads them from the platform's mailbox.
"""

from __future__ import annotations

import contextlib
import enum
import smtplib
import ssl
import time
from dataclasses import dataclass

from services.common.settings import Settings

PROBE_AFTER = 5.0
"""Seconds a connection may sit idle and still be reused without a NOOP first."""


class Outcome(enum.Enum):
    SENT = "sent"
    TRANSIENT = "transient"
    """Nothing was delivered and trying later may succeed (4xx, connection refused, timeout)."""
    PERMANENT = "permanent"
    """Nothing was delivered and trying again will not help (5xx: address refused...)."""
    UNCERTAIN = "uncertain"
    """The connection broke while the body was being accepted: it may have been delivered."""


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    smtp_code: int | None = None
    detail: str | None = None


def tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.smtp_ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.smtp_client_cert:
        context.load_cert_chain(settings.smtp_client_cert, settings.smtp_client_key)
    return context


def _classify(code: int, text: bytes | str) -> Delivery:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    outcome = Outcome.PERMANENT if 500 <= code < 600 else Outcome.TRANSIENT
    return Delivery(outcome, code, detail.strip()[:300])


class SmtpSender:
    """One SMTP connection, reused across messages and reopened when it has gone stale."""

    def __init__(
        self, settings: Settings, timeout: float = 30.0, probe_after: float = PROBE_AFTER
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.probe_after = probe_after
        self._context = tls_context(settings) if settings.smtp_security != "none" else None
        self._client: smtplib.SMTP | None = None
        self._last_used = 0.0

    def _connect(self) -> smtplib.SMTP:
        host, port = self.settings.smtp_host, self.settings.smtp_port
        client: smtplib.SMTP
        if self.settings.smtp_security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=self._context)
        else:
            client = smtplib.SMTP(host, port, timeout=self.timeout)
        client.ehlo()
        if self.settings.smtp_security == "starttls":
            client.starttls(context=self._context)
            client.ehlo()
        return client

    def _ready_client(self) -> tuple[smtplib.SMTP, bool]:
        """The connection, and whether it may have gone stale unnoticed (reused unprobed).

        A connection used within ``probe_after`` seconds is taken as it is: a NOOP per message
        was one round trip more on every notice. One idle longer is probed first, since servers
        close idle connections."""
        if self._client is not None:
            if time.monotonic() - self._last_used < self.probe_after:
                return self._client, True
            try:
                if self._client.noop()[0] == 250:
                    return self._client, False
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._client = self._connect()
        return self._client, False

    def _envelope(
        self, sender: str, recipient: str, envelope_id: str | None
    ) -> tuple[smtplib.SMTP, Delivery | None]:
        """MAIL and RCPT; a refusal as a Delivery. Nothing is delivered yet, so a connection that
        turns out to be gone, reused unprobed, is replaced and the envelope given once more."""
        client, unprobed = self._ready_client()
        try:
            return client, self._mail_rcpt(client, sender, recipient, envelope_id)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            if not unprobed:
                raise
            self.close()
            client = self._connect()
            self._client = client
            return client, self._mail_rcpt(client, sender, recipient, envelope_id)

    @staticmethod
    def _mail_rcpt(
        client: smtplib.SMTP, sender: str, recipient: str, envelope_id: str | None
    ) -> Delivery | None:
        mail_options, rcpt_options = dsn_options(envelope_id, recipient, client.has_extn("dsn"))
        code, text = client.mail(sender, mail_options)
        if code != 250:
            client.rset()
            return _classify(code, text)
        code, text = client.rcpt(recipient, rcpt_options)
        if code not in (250, 251):
            client.rset()
            return _classify(code, text)
        return None

    def send(
        self, message: bytes, sender: str, recipient: str, envelope_id: str | None = None
    ) -> Delivery:
        try:
            client, refused = self._envelope(sender, recipient, envelope_id)
            self._last_used = time.monotonic()
            if refused is not None:
                return refused
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            reply = getattr(error, "smtp_code", None)
            if isinstance(reply, int) and reply >= 500:
                return Delivery(Outcome.PERMANENT, reply, _describe(error))
            return Delivery(
                Outcome.TRANSIENT, reply if isinstance(reply, int) else None, _describe(error)
            )
        try:
            code, text = client.data(message)
            self._last_used = time.monotonic()
        except smtplib.SMTPDataError as error:
            return _classify(error.smtp_code, error.smtp_error)
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            return Delivery(
                Outcome.UNCERTAIN, None, f"connection lost during DATA: {_describe(error)}"
            )
        if code != 250:
            return _classify(code, text)
        return Delivery(Outcome.SENT, code, text.decode("utf-8", "replace").strip()[:300])

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._client.quit()
            self._client = None


def xtext(value: str) -> str:
    """RFC 3461's xtext: '+', '=' and characters outside printable ASCII as ``+XX``."""
    return "".join(
        f"+{ord(char):02X}" if char in "+=" or not 33 <= ord(char) <= 126 else char
        for char in value
    )


def dsn_options(
    envelope_id: str | None, recipient: str, server_speaks_dsn: bool
) -> tuple[list[str], list[str]]:
    """The MAIL and RCPT parameters asking for delivery status notifications, where the server
    advertises DSN and the notice has an id to report under; none otherwise."""
    if not server_speaks_dsn or not envelope_id:
        return [], []
    return (
        ["RET=HDRS", f"ENVID={xtext(envelope_id)}"],
        ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{xtext(recipient)}"],
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]
