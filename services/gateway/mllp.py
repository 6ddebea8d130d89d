"""MLLP framing: ``0x0B`` + message + ``0x1C 0x0D``, decoded incrementally from a byte stream.

``MllpDecoder.feed`` takes whatever a read returned and gives back the frames it completed: several
messages in one read, one message across many reads. Bytes outside a frame (line noise, a sender's
keep-alive newlines) are skipped and counted. A frame growing past the size limit is not buffered:
its head is kept (enough to answer it) and the rest is skipped up to its end block, so the
connection stays usable for the next message.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
# What is kept of an oversized frame: the MSH segment is in its first few hundred bytes.
OVERSIZED_HEAD_BYTES = 4096


def frame(message: bytes) -> bytes:
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


@dataclass(frozen=True)
class Frame:
    """A complete message."""

    payload: bytes


@dataclass(frozen=True)
class OversizedFrame:
    """A message longer than the limit: its first bytes, and its whole size."""

    head: bytes
    size: int


class MllpDecoder:
    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._oversized_head: bytes | None = None
        self._oversized_size = 0
        self.skipped_bytes = 0
        """Bytes seen outside any frame, and of frames abandoned by a new start block."""

    @property
    def in_frame(self) -> bool:
        """A frame has started and not ended: the sender owes us the rest."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame | OversizedFrame]:
        frames: list[Frame | OversizedFrame] = []
        view = memoryview(data)
        position = 0
        while position < len(view):
            if not self._in_frame:
                start = data.find(START_BLOCK, position)
                if start < 0:
                    self.skipped_bytes += len(data) - position
                    break
                self.skipped_bytes += start - position
                self._start_frame()
                position = start + 1
                continue
            end = data.find(END_BLOCK, position)
            restart = data.find(START_BLOCK, position)
            if restart >= 0 and (end < 0 or restart < end):
                # A new start block before the end: the sender gave up on that frame.
                self.skipped_bytes += self._pending_size() + restart - position
                self._start_frame()
                position = restart + 1
                continue
            chunk = view[position : end if end >= 0 else len(view)]
            self._append(chunk)
            if end < 0:
                break
            frames.append(self._finish_frame())
            position = end + 1
            # The end block is 1C 0D; a lone 1C from a sloppy sender also ends the frame.
            if position < len(data) and data[position : position + 1] == CARRIAGE_RETURN:
                position += 1
        return frames

    def _start_frame(self) -> None:
        self._in_frame = True
        self._buffer.clear()
        self._oversized_head = None
        self._oversized_size = 0

    def _pending_size(self) -> int:
        return self._oversized_size if self._oversized_head is not None else len(self._buffer)

    def _append(self, chunk: memoryview) -> None:
        if self._oversized_head is not None:
            self._oversized_size += len(chunk)
            return
        self._buffer += chunk
        if len(self._buffer) > self.max_frame_bytes:
            self._oversized_head = bytes(self._buffer[:OVERSIZED_HEAD_BYTES])
            self._oversized_size = len(self._buffer)
            self._buffer.clear()

    def _finish_frame(self) -> Frame | OversizedFrame:
        self._in_frame = False
        if self._oversized_head is not None:
            finished: Frame | OversizedFrame = OversizedFrame(
                self._oversized_head, self._oversized_size
            )
            self._oversized_head = None
            return finished
        payload = bytes(self._buffer)
        self._buffer.clear()
        return Frame(payload)
