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

    python -m services.stack.smtp_sink --port 2525 --maildir .stack/mail
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REFUSED_FILE = "refused-recipients.txt"
MESSAGE_MODE = 0o600
"""Each kept message: identity and clinical context, for the mail folder's owner only."""


class MaildirHandler:
    """aiosmtpd handler that writes each message to the mail folder before accepting it."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.maildir.chmod(0o700)  # also when the stack's layout made it first

    def _refused(self) -> set[str]:
        try:
            text = (self.maildir / REFUSED_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        return {line.strip().lower() for line in text.splitlines() if line.strip()}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._refused():
            return f"550 5.1.1 <{address}>: Recipient address rejected: unknown mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        trace = [f"Return-Path: <{envelope.mail_from}>"]
        trace += [f"X-Original-To: {recipient}" for recipient in envelope.rcpt_tos]
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
        return f"250 2.0.0 Ok: queued as {name}"


def tls_server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+; with ``client_ca``, a client certificate signed by it is required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def build_controller(
    host: str,
    port: int,
    maildir: Path,
    *,
    security: str = "none",
    tls_context: ssl.SSLContext | None = None,
    **smtp_options: Any,
) -> Controller:
    """The server; ``security`` is ``none``, ``starttls`` (required) or ``tls`` (implicit)."""
    if security != "none" and tls_context is None:
        raise ValueError(f"security {security!r} needs a TLS context")
    if security == "starttls":
        smtp_options.update(tls_context=tls_context, require_starttls=True)
    return Controller(
        MaildirHandler(maildir),
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
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    parser.add_argument("--client-ca", type=Path, help="require client certificates from this CA")
    args = parser.parse_args()
    context = (
        tls_server_context(args.tls_cert, args.tls_key, args.client_ca)
        if args.security != "none"
        else None
    )
    controller = build_controller(
        args.host, args.port, args.maildir, security=args.security, tls_context=context
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
