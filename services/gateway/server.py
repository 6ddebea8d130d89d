"""The MLLP listener: one asyncio task per connection, messages answered in order.

A connection reads, cuts frames with ``MllpDecoder`` and hands each to the ``MessageHandler``; the
ACK is written before the next frame is taken, as engines expect. Nothing a client sends can stop
the server: bad bytes get an AE or AR, a handler failure closes that connection only. Slow and
half-open clients are cut off by time-outs (a started frame must end within ``frame_timeout``, a
quiet connection is closed after ``idle_timeout``) and by TCP keep-alive. Only a complete frame
resets the idle timer: noise bytes do not keep a connection. Connections are capped per source
address and in total (``limits.ConnectionSlots``: noise gives way to engines); a TLS handshake
must end within ``tls_handshake_timeout``. Refusals are counted by reason
(``harpicoop_edge_refusals_total``) and logged at most once a minute per address.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Any

import structlog

from services.common.observability import REFUSED
from services.common.settings import setting
from services.gateway.handler import MessageHandler, Unconfirmed, source_address
from services.gateway.limits import ConnectionSlots, LogThrottle
from services.gateway.mllp import MllpDecoder, frame
from services.gateway.tls import ClientBinding, UnknownClient

log = structlog.get_logger("gateway")

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    max_frame_bytes: int = setting(256 * 1024, "MLLP_MAX_FRAME_BYTES", minimum=1024)
    """A bigger message is answered AR and skipped."""
    frame_timeout: float = setting(60.0, "MLLP_FRAME_TIMEOUT_SECONDS", minimum=0.1)
    """Seconds a started frame may take to arrive in full."""
    idle_timeout: float = setting(900.0, "MLLP_IDLE_TIMEOUT_SECONDS", minimum=0.1)
    """Seconds a connection may go without a complete frame; engines reconnect when needed."""
    write_timeout: float = setting(30.0, "MLLP_WRITE_TIMEOUT_SECONDS", minimum=0.1)
    """Seconds a client has to take its ACK."""
    max_connections: int = setting(256, "MLLP_MAX_CONNECTIONS", minimum=1)
    max_connections_per_address: int = setting(16, "MLLP_MAX_CONNECTIONS_PER_ADDRESS", minimum=1)
    tls_handshake_timeout: float = setting(10.0, "MLLP_TLS_HANDSHAKE_TIMEOUT_SECONDS", minimum=0.1)
    """Seconds a TLS client has to finish its handshake (asyncio does it before the connection
    is ours, so these connections escape the caps until then)."""


def _keep_alive(sock: socket.socket | None) -> None:
    """Probe quiet connections so that a peer gone without a FIN is noticed."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


class MllpServer:
    def __init__(
        self,
        handler: MessageHandler,
        limits: ServerLimits,
        counters: Counter[str],
        clients: ClientBinding | None = None,
    ) -> None:
        self._handler = handler
        self._clients = clients
        self._limits = limits
        self._counters = counters
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._slots: ConnectionSlots[asyncio.Task[None]] = ConnectionSlots(
            limits.max_connections_per_address, limits.max_connections
        )
        self._refusal_log = LogThrottle(60.0)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(
            self._connection,
            host,
            port,
            limit=READ_SIZE,
            reuse_address=True,
            **self._tls_options(tls),
        )

    def _tls_options(self, tls: ssl.SSLContext | None) -> dict[str, Any]:
        # asyncio refuses a handshake time-out without an ssl context.
        if tls is None:
            return {}
        return {"ssl": tls, "ssl_handshake_timeout": self._limits.tls_handshake_timeout}

    @property
    def port(self) -> int:
        """The port listened on (useful when started on port 0)."""
        assert self._server is not None, "the server is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting and drop open connections: an unanswered message will be resent."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        source = source_address(peer)
        admission = self._slots.admit(source, task)
        for displaced in admission.displaced:
            displaced.cancel("displaced")
        if not admission.admitted:
            self._refuse(admission.refused_by or "cap", source)
            writer.close()
            return
        try:
            # The handshake checked the chain; the CN says which establishment it speaks for.
            sender = self._clients.establishment_of(writer) if self._clients else None
        except UnknownClient as error:
            self._counters["connections_unbound"] += 1
            log.warning("client certificate of no establishment; closing", peer=peer, cn=str(error))
            self._slots.release(task)
            writer.close()
            return
        self._connections.add(task)
        self._counters["connections"] += 1
        _keep_alive(writer.get_extra_info("socket"))
        reason = "closed by peer"
        try:
            reason = await self._serve(reader, writer, peer, sender)
        except asyncio.CancelledError as cancelled:
            reason = "gateway stopping"
            if cancelled.args == ("displaced",):  # made room for a newer connection
                reason = "displaced"
                self._refuse(reason, source)
        except Exception:  # a bug must cost one connection, not the gateway
            reason = "internal error"
            log.exception("connection failed", peer=peer)
        finally:
            self._connections.discard(task)
            self._slots.release(task)
            writer.close()
            if reason != "displaced":
                log.info("connection closed", peer=peer, reason=reason)

    def _refuse(self, reason: str, address: str) -> None:
        self._counters[f"connections_refused_{reason}"] += 1
        REFUSED.labels("gateway", reason).inc()
        count = self._refusal_log.note(f"{reason} {address}", asyncio.get_running_loop().time())
        if count is not None:
            log.warning("connections refused", address=address, reason=reason, count=count)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        sender: str | None,
    ) -> str:
        decoder = MllpDecoder(self._limits.max_frame_bytes)
        limits = self._limits
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        frame_started: float | None = None
        last_frame = loop.time()
        proven = False  # has sent a frame from a known establishment
        while True:
            # A frame's time limit runs from its start, so a sender dribbling bytes cannot
            # hold the connection; between frames, the idle limit runs from the last complete
            # frame, so noise bytes cannot hold it either.
            if decoder.in_frame:
                frame_started = frame_started or loop.time()
                deadline = frame_started + limits.frame_timeout
            else:
                frame_started = None
                deadline = last_frame + limits.idle_timeout
            try:
                data = await asyncio.wait_for(
                    reader.read(READ_SIZE), max(deadline - loop.time(), 0)
                )
            except TimeoutError:
                self._counters["connections_timed_out"] += 1
                reason = "frame_timeout" if decoder.in_frame else "idle"
                self._refuse(reason, source_address(peer))
                return "frame incomplete too long" if decoder.in_frame else "idle"
            except ConnectionError:
                return "connection reset"
            if not data:
                return "closed by peer"
            skipped = decoder.skipped_bytes
            frames = decoder.feed(data)
            if frames:
                frame_started = None  # a frame begun in this read starts its clock now
            for received in frames:
                self._slots.prove(task)  # not displaced while its frame is being answered
                try:
                    ack, vouched = await self._handler.handle(received, peer, sender)
                except Unconfirmed:
                    return "kafka did not confirm; closed without ack"
                last_frame = loop.time()
                proven = proven or vouched
                if not proven:
                    self._slots.prove(task, False)
                if ack is None:
                    continue
                writer.write(frame(ack))
                try:
                    await asyncio.wait_for(writer.drain(), limits.write_timeout)
                except (TimeoutError, ConnectionError):
                    return "peer does not take its acks"
            if decoder.skipped_bytes > skipped:
                self._counters["bytes_outside_frames"] += decoder.skipped_bytes - skipped
