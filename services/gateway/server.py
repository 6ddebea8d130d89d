"""The MLLP listener: one asyncio task per connection, messages answered in order.

A connection reads, cuts frames with ``MllpDecoder`` and hands each to the ``MessageHandler``; the
ACK is written before the next frame is taken, as engines expect. Nothing a client sends can stop
the server: bad bytes get an AE or AR, a handler failure closes that connection only. Slow and
half-open clients are cut off by time-outs (a started frame must end within ``frame_timeout``, a
quiet connection is closed after ``idle_timeout``) and by TCP keep-alive.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from dataclasses import dataclass

import structlog

from services.gateway.handler import MessageHandler, Unconfirmed
from services.gateway.mllp import MllpDecoder, frame
from services.gateway.tls import ClientBinding, UnknownClient

log = structlog.get_logger("gateway")

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    max_frame_bytes: int = 256 * 1024
    """A bigger message is answered AR and skipped."""
    frame_timeout: float = 60.0
    """Seconds a started frame may take to arrive in full."""
    idle_timeout: float = 900.0
    """Seconds a connection may stay quiet between messages; engines reconnect when needed."""
    write_timeout: float = 30.0
    """Seconds a client has to take its ACK."""
    max_connections: int = 256


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
        tls: ssl.SSLContext | None = None,
        clients: ClientBinding | None = None,
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._clients = clients
        self._limits = limits
        self._counters = counters
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._connection, host, port, limit=READ_SIZE, reuse_address=True, ssl=self._tls
        )

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
        if len(self._connections) >= self._limits.max_connections:
            self._counters["connections_refused"] += 1
            log.warning("too many connections; closing", peer=peer)
            writer.close()
            return
        try:
            # The handshake checked the chain; the CN says which establishment it speaks for.
            sender = self._clients.establishment_of(writer) if self._clients else None
        except UnknownClient as error:
            self._counters["connections_unbound"] += 1
            log.warning("client certificate of no establishment; closing", peer=peer, cn=str(error))
            writer.close()
            return
        self._connections.add(task)
        self._counters["connections"] += 1
        _keep_alive(writer.get_extra_info("socket"))
        reason = "closed by peer"
        try:
            reason = await self._serve(reader, writer, peer, sender)
        except asyncio.CancelledError:
            reason = "gateway stopping"
        except Exception:  # a bug must cost one connection, not the gateway
            reason = "internal error"
            log.exception("connection failed", peer=peer)
        finally:
            self._connections.discard(task)
            writer.close()
            log.info("connection closed", peer=peer, reason=reason)

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
        frame_started: float | None = None
        while True:
            # A frame's time limit runs from its start, so a sender dribbling bytes cannot
            # hold the connection; between frames, the idle limit applies.
            if decoder.in_frame:
                frame_started = frame_started or loop.time()
                timeout = frame_started + limits.frame_timeout - loop.time()
            else:
                frame_started = None
                timeout = limits.idle_timeout
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), max(timeout, 0))
            except TimeoutError:
                self._counters["connections_timed_out"] += 1
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
                try:
                    ack = await self._handler.handle(received, peer, sender)
                except Unconfirmed:
                    return "kafka did not confirm; closed without ack"
                if ack is None:
                    continue
                writer.write(frame(ack))
                try:
                    await asyncio.wait_for(writer.drain(), limits.write_timeout)
                except (TimeoutError, ConnectionError):
                    return "peer does not take its acks"
            if decoder.skipped_bytes > skipped:
                self._counters["bytes_outside_frames"] += decoder.skipped_bytes - skipped
