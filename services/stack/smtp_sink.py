"""The stack's local SMTP server: accepts mail like an MSSanté operator and keeps each message.

Every accepted message is written atomically as one ``.eml`` file (RFC 5322, as received, with
``Return-Path`` and one ``X-Original-To`` per envelope recipient prepended, as delivering MTAs do),
so tests and people can read exactly what a GP would receive. The message is on disk before the
server answers 250: an accepted message is never lost. A message names a patient, so each file is
readable by its owner only (0600, in a 0700 folder), whatever the process's umask.

Like an operator's server, it refuses unknown mailboxes: addresses listed, one per line, in
``refused-recipients.txt`` in the mail folder get ``550 5.1.1`` (read at each RCPT, so a test
or an operator can change it while it runs). It can also require STARTTLS or speak implicit TLS,
and demand a client certificate, as MSSanté operators do.

Like an operator's relay, it speaks DSN (RFC 3461): with ``--lmtp`` (the stack's IMAP server's
LMTP socket) it returns delivery status notifications to the sender's mailbox there, as the
envelope's ``NOTIFY`` asks (``services.stack.dsn``). Addresses listed in
``bouncing-recipients.txt`` in the mail folder (or given with ``--bounce``) are accepted, then
bounce: not kept, and a failed DSN goes back, as a relay reports a remote mailbox that does not
exist. Mail to the mailboxes the IMAP server holds (``--mailbox``, read receipts for instance)
is delivered there rather than kept as a file.

    python -m services.stack.smtp_sink --port 2525 --maildir .stack/mail \
        --lmtp .stack/imap/run/lmtp --mailbox harpicoop@ght-sud-lorraine.mssante.fr
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import re
import signal
import smtplib
import ssl
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.common.ports import local_port
from services.stack.dsn import Outcome, RecipientDsn, delivery_report, xtext_decode

LOG = logging.getLogger("smtp_sink")

REFUSED_FILE = "refused-recipients.txt"
BOUNCE_FILE = "bouncing-recipients.txt"
MESSAGE_MODE = 0o600
"""Each kept message: identity and clinical context, for the mail folder's owner only."""


_DSN_PARAMETER = re.compile(r"\s+(RET|ENVID|NOTIFY|ORCPT)=(\S+)", re.IGNORECASE)


def take_dsn_parameters(arguments: str) -> tuple[str, dict[str, str]]:
    """The MAIL or RCPT arguments without their DSN parameters, and those parameters (names in
    capitals, values as given: aiosmtpd would refuse them, and capitalise ENVID's)."""
    found = {name.upper(): value for name, value in _DSN_PARAMETER.findall(arguments)}
    return _DSN_PARAMETER.sub("", arguments), found


class DsnSMTP(SMTP):
    """aiosmtpd's server, speaking DSN: it advertises it and keeps the envelope's parameters."""

    async def smtp_MAIL(self, arg: str | None) -> None:
        arg, found = take_dsn_parameters(arg or "")
        await super().smtp_MAIL(arg or None)
        if self.envelope is not None and self.envelope.mail_from is not None:
            self.envelope.dsn_ret = found.get("RET", "HDRS").upper()  # type: ignore[attr-defined]
            envid = found.get("ENVID")
            self.envelope.dsn_envid = xtext_decode(envid) if envid else None  # type: ignore[attr-defined]

    async def smtp_RCPT(self, arg: str | None) -> None:
        arg, found = take_dsn_parameters(arg or "")
        assert self.envelope is not None
        before = len(self.envelope.rcpt_tos)
        await super().smtp_RCPT(arg or None)
        if len(self.envelope.rcpt_tos) > before:
            notify = frozenset(
                item.strip().upper() for item in found.get("NOTIFY", "").split(",") if item
            )
            original = found.get("ORCPT")
            dsn = RecipientDsn(
                self.envelope.rcpt_tos[-1], notify, xtext_decode(original) if original else None
            )
            recipients = getattr(self.envelope, "dsn_recipients", [])
            self.envelope.dsn_recipients = [*recipients, dsn]  # type: ignore[attr-defined]


def _addresses(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {line.strip().lower() for line in text.splitlines() if line.strip()}


class MaildirHandler:
    """aiosmtpd handler that writes each message to the mail folder before accepting it."""

    def __init__(
        self,
        maildir: Path,
        *,
        lmtp: Path | None = None,
        mailboxes: Collection[str] = (),
        bounce: Collection[str] = (),
    ) -> None:
        self.maildir = maildir
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.maildir.chmod(0o700)  # also when the stack's layout made it first
        self.lmtp = lmtp
        self.mailboxes = {item.lower() for item in mailboxes}
        self.bounce = {item.lower() for item in bounce}

    def _refused(self) -> set[str]:
        return _addresses(self.maildir / REFUSED_FILE)

    def _bouncing(self) -> set[str]:
        return self.bounce | _addresses(self.maildir / BOUNCE_FILE)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._refused():
            return f"550 5.1.1 <{address}>: Recipient address rejected: unknown mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        arrived = dt.datetime.now(dt.UTC)
        bouncing = self._bouncing()
        local = [item for item in envelope.rcpt_tos if item.lower() in self.mailboxes]
        kept = [
            item
            for item in envelope.rcpt_tos
            if item.lower() not in bouncing and item.lower() not in self.mailboxes
        ]
        name = self._keep(envelope, content, kept) if kept else "nothing kept"
        loop = asyncio.get_running_loop()
        if local:
            await loop.run_in_executor(
                None, self._to_mailboxes, envelope.mail_from or "", local, content
            )
        outcomes = [
            Outcome(
                dsn,
                dsn.address.lower() not in bouncing,
                None
                if dsn.address.lower() not in bouncing
                else f"550 5.1.1 <{dsn.address}>: Recipient address rejected: unknown mailbox",
            )
            for dsn in getattr(envelope, "dsn_recipients", [])
        ]
        reported = [item for item in outcomes if item.recipient.wants(item.delivered)]
        if reported and envelope.mail_from:  # never to the null sender: no report loops
            report = delivery_report(
                sender=envelope.mail_from,
                envelope_id=getattr(envelope, "dsn_envid", None),
                outcomes=reported,
                original=content,
                full=getattr(envelope, "dsn_ret", "HDRS") == "FULL",
                arrived=arrived,
            )
            await loop.run_in_executor(None, self._to_mailboxes, "", [envelope.mail_from], report)
        return f"250 2.0.0 Ok: queued as {name}"

    def _to_mailboxes(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Hand ``message`` to the IMAP server over LMTP. A stand-in has no queue: what cannot be
        delivered now (no IMAP server, an unknown mailbox) is logged, never retried."""
        if self.lmtp is None:
            LOG.warning("no LMTP socket: a report or message for the mailbox is dropped")
            return
        try:
            with smtplib.LMTP(str(self.lmtp)) as lmtp:
                lmtp.sendmail(sender, recipients, message)
        except (OSError, smtplib.SMTPException) as error:
            LOG.warning("not delivered to the IMAP server: %s", type(error).__name__)

    def _keep(self, envelope: Envelope, content: bytes, recipients: list[str]) -> str:
        trace = [f"Return-Path: <{envelope.mail_from}>"]
        trace += [f"X-Original-To: {recipient}" for recipient in recipients]
        data = ("\r\n".join(trace) + "\r\n").encode("ascii", "replace") + content
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:12]}.eml"
        temporary = self.maildir / f".{name}.tmp"
        # Created 0600 from the start (never readable by others, even for an instant).
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MESSAGE_MODE)
        with open(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(self.maildir / name)
        return name


def tls_server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+; with ``client_ca``, a client certificate signed by it is required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class DsnController(Controller):
    """aiosmtpd's controller, serving ``DsnSMTP``."""

    def factory(self) -> SMTP:
        return DsnSMTP(self.handler, **self.SMTP_kwargs)


def build_controller(
    host: str,
    port: int,
    maildir: Path,
    *,
    security: str = "none",
    tls_context: ssl.SSLContext | None = None,
    lmtp: Path | None = None,
    mailboxes: Collection[str] = (),
    bounce: Collection[str] = (),
    **smtp_options: Any,
) -> Controller:
    """The server; ``security`` is ``none``, ``starttls`` (required) or ``tls`` (implicit)."""
    if security != "none" and tls_context is None:
        raise ValueError(f"security {security!r} needs a TLS context")
    if security == "starttls":
        smtp_options.update(tls_context=tls_context, require_starttls=True)
    return DsnController(
        MaildirHandler(maildir, lmtp=lmtp, mailboxes=mailboxes, bounce=bounce),
        hostname=host,
        port=port,
        server_hostname="mssante.local",
        ssl_context=tls_context if security == "tls" else None,
        data_size_limit=20 * 1024 * 1024,
        **smtp_options,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=local_port(2525))
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    parser.add_argument("--client-ca", type=Path, help="require client certificates from this CA")
    parser.add_argument("--lmtp", type=Path, help="the IMAP server's LMTP socket, for reports")
    parser.add_argument(
        "--mailbox", action="append", default=[], help="an address the IMAP server holds"
    )
    parser.add_argument(
        "--bounce",
        action="append",
        default=[],
        help="an address that bounces (accepted, then a "
        "failed DSN); see also bouncing-recipients.txt",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    context = (
        tls_server_context(args.tls_cert, args.tls_key, args.client_ca)
        if args.security != "none"
        else None
    )
    controller = build_controller(
        args.host,
        args.port,
        args.maildir,
        security=args.security,
        tls_context=context,
        lmtp=args.lmtp,
        mailboxes=args.mailbox,
        bounce=args.bounce,
    )
    controller.start()
    print(f"SMTP server on {args.host}:{args.port}, keeping mail in {args.maildir}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
