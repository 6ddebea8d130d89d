"""MLLP framing from a byte stream, however the reads cut it."""

from __future__ import annotations

from services.gateway.mllp import OVERSIZED_HEAD_BYTES, Frame, MllpDecoder, OversizedFrame, frame

FIRST = b"MSH|^~\\&|GAM|CHRU_NANCY|||||ADT^A01|1|P|2.5\rPID|1||IPP1^^^^PI||Lef\xe8vre\r"
SECOND = b"MSH|^~\\&|GAM|CH_TOUL|||||ADT^A03|2|P|2.5\r"


def test_several_messages_in_one_read_come_out_in_order() -> None:
    decoder = MllpDecoder(1024)
    assert decoder.feed(frame(FIRST) + frame(SECOND)) == [Frame(FIRST), Frame(SECOND)]
    assert not decoder.in_frame


def test_one_message_fed_byte_by_byte_comes_out_once_whole() -> None:
    decoder = MllpDecoder(1024)
    out: list[Frame | OversizedFrame] = []
    data = frame(FIRST)
    for index in range(len(data)):
        out += decoder.feed(data[index : index + 1])
        if index < len(data) - 2:  # up to the end block, the sender still owes bytes
            assert out == [] and decoder.in_frame
    assert out == [Frame(FIRST)]


def test_bytes_before_the_start_block_and_between_frames_are_skipped_and_counted() -> None:
    decoder = MllpDecoder(1024)
    frames = decoder.feed(b"\r\nnoise" + frame(FIRST) + b"\n\n" + frame(SECOND))
    assert frames == [Frame(FIRST), Frame(SECOND)]
    assert decoder.skipped_bytes == len(b"\r\nnoise") + 2


def test_a_frame_cut_between_end_block_and_carriage_return_is_complete() -> None:
    decoder = MllpDecoder(1024)
    data = frame(FIRST)
    assert decoder.feed(data[:-1]) == [Frame(FIRST)]
    assert decoder.feed(data[-1:] + frame(SECOND)) == [Frame(SECOND)]


def test_a_new_start_block_abandons_an_unfinished_frame() -> None:
    decoder = MllpDecoder(1024)
    frames = decoder.feed(b"\x0bMSH|half a mess" + frame(SECOND))
    assert frames == [Frame(SECOND)]
    assert decoder.skipped_bytes == len(b"MSH|half a mess")


def test_an_oversized_frame_keeps_its_head_and_the_stream_stays_usable() -> None:
    decoder = MllpDecoder(max_frame_bytes=10_000)
    big = FIRST + b"NTE|1||" + b"x" * 50_000 + b"\r"
    data = frame(big) + frame(SECOND)
    frames: list[Frame | OversizedFrame] = []
    for start in range(0, len(data), 4096):  # as reads would cut it
        frames += decoder.feed(data[start : start + 4096])
    assert frames == [OversizedFrame(big[:OVERSIZED_HEAD_BYTES], len(big)), Frame(SECOND)]


def test_a_frame_exactly_at_the_limit_is_accepted() -> None:
    decoder = MllpDecoder(max_frame_bytes=len(FIRST))
    assert decoder.feed(frame(FIRST)) == [Frame(FIRST)]


def test_an_empty_frame_is_a_frame() -> None:
    assert MllpDecoder(10).feed(b"\x0b\x1c\r") == [Frame(b"")]
