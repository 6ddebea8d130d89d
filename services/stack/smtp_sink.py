"""The stack's local SMTP server: accepts mail like an MSSanté operator and keeps each message.

Every accepted message is written atomically as one ``.eml`` file (RFC 5322, as received, with
``Return-Path`` and one ``X-Original-To`` per envelope recipient prepended, as delivering MTAs do),
so tests and people can read exactly what a GP would receive. The message is on disk before the
server answers 250: an accepted message is never lost.

    python -m services.stack.smtp_sink --port 2525 --maildir .stack/mail
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """aiosmtpd handler that writes each message to the mail folder before accepting it."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.maildir.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        trace = [f"Return-Path: <{envelope.mail_from}>"]
        trace += [f"X-Original-To: {recipient}" for recipient in envelope.rcpt_tos]
        data = ("\r\n".join(trace) + "\r\n").encode("ascii", "replace") + content
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:12]}.eml"
        temporary = self.maildir / f".{name}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(self.maildir / name)
        return f"250 2.0.0 Ok: queued as {name}"


def build_controller(host: str, port: int, maildir: Path, **smtp_options: Any) -> Controller:
    return Controller(
        MaildirHandler(maildir),
        hostname=host,
        port=port,
        server_hostname="mssante.local",
        data_size_limit=20 * 1024 * 1024,
        **smtp_options,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args()
    controller = build_controller(args.host, args.port, args.maildir)
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
