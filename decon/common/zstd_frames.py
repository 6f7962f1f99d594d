"""Follow the frame and block headers of a zstd stream as it is read, to tell a complete stream
from a truncated one.

``zstandard``'s stream reader decompresses across frames in bounded memory, but it reaches EOF
without complaint when the input stops mid-frame. :class:`FrameCheckedSource` sits between the file
and that reader: it passes the compressed bytes through unchanged while walking the headers (one
step per block, never the block contents), and raises ``EOFError`` at end of input unless the
input ended exactly after a whole frame. Bytes that cannot be a frame raise :class:`ZstdFormatError`.
"""

from __future__ import annotations

from typing import BinaryIO

_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE_MAGIC = 0xFFFFFFF0, 0x184D2A50
_DICT_ID_BYTES = (0, 1, 2, 4)
_CONTENT_SIZE_BYTES = (0, 2, 4, 8)  # with the single-segment flag a 0 here means 1



class ZstdFormatError(ValueError):
    """The bytes are not a well-formed sequence of zstd frames."""


# walker states: what the next header bytes are
_MAGIC, _SKIP_SIZE, _DESCRIPTOR, _BLOCK = range(4)


class ZstdFrameWalker:
    """Feed it the compressed bytes in order; :meth:`at_frame_boundary` says whether the bytes so
    far end exactly after a whole frame."""

    def __init__(self) -> None:
        self._state = _MAGIC
        self._need = 4  # header bytes wanted for the current state
        self._header = bytearray()
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False

    def at_frame_boundary(self) -> bool:
        return self._state == _MAGIC and not self._header and not self._skip

    def feed(self, data: bytes | memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._need - len(self._header), end - pos)
            self._header += data[pos:pos + step]
            pos += step
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        if self._state == _MAGIC:
            if value == _ZSTD_MAGIC:
                self._state, self._need = _DESCRIPTOR, 1
            elif value & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                self._state, self._need = _SKIP_SIZE, 4
            else:
                raise ZstdFormatError("not a zstd frame (bad magic number)")
        elif self._state == _SKIP_SIZE:
            self._state, self._need, self._skip = _MAGIC, 4, value
        elif self._state == _DESCRIPTOR:
            if value & 0x08:
                raise ZstdFormatError("corrupt zstd frame header (reserved bit set)")
            single_segment = bool(value & 0x20)
            content_size = _CONTENT_SIZE_BYTES[value >> 6] or (1 if single_segment else 0)
            self._checksum = bool(value & 0x04)
            self._skip = (0 if single_segment else 1) + _DICT_ID_BYTES[value & 0x03] + content_size
            self._state, self._need = _BLOCK, 3
        else:  # block header: last-block bit, 2-bit type, 21-bit size
            block_type, size = (value >> 1) & 0x03, value >> 3
            if block_type == 3:
                raise ZstdFormatError("corrupt zstd block (reserved block type)")
            self._skip = 1 if block_type == 1 else size  # an RLE block stores one byte
            if value & 0x01:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = _MAGIC, 4


class FrameCheckedSource:
    """A read-only file wrapper for ``zstandard``'s stream reader that checks frame boundaries."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._walker = ZstdFrameWalker()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._walker.feed(data)
        elif not self._walker.at_frame_boundary():
            raise EOFError("the zstd stream ends in the middle of a frame")
        return data
