"""The container of an Inspect AI `.eval` log: a zip of zstd-compressed JSON members, written
member by member as the export produces them.

Why not Python's `zipfile`: importing Inspect AI patches `zipfile`'s zstd compressor to start a
12-thread zstd context for every member. A log is thousands of 1-3 KB samples, and that pool,
started and stopped per sample, cost more than everything else Inspect's writer did for it
(0.6 ms a sample on 2 cores); `zipfile` has no way to write a member compressed elsewhere. This
writer compresses each member once, single-threaded, with one reused context at zstd's default
level (Inspect's, 3), and writes the zip records itself: local headers with the sizes known up
front (no data descriptors), the central directory, and ZIP64 records where the 32-bit fields
overflow (more than 65,534 members, or past 4 GiB). Inspect's reader, Python's `zipfile` and
the viewer's read the central directory, so members may come in any order.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

ZSTD = 93
"""The zip compression method of zstd (APPNOTE 4.4.5), what Inspect writes."""

LEVEL = 3
"""zstd's default level, the one Inspect's writer uses."""

_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_UNIX = 3
_FILE_ATTR = 0o600 << 16
"""What `zipfile.writestr` gives a member: a regular file, read-write by its owner."""
_UTF8_NAME = 0x800


class EvalZip:
    """A zip file written once, front to back: `write` each member, then `close`.

    A member's name is unique per file; writing one twice raises (a duplicate would be a sample
    exported twice, and readers disagree on which copy wins)."""

    def __init__(self, path: Path) -> None:
        import zstandard

        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._compressor = zstandard.ZstdCompressor(level=LEVEL)
        self._central: list[bytes] = []
        self._names: set[str] = set()
        self._offset = 0
        now = time.localtime()
        self._dos_time = (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2)
        self._dos_date = ((now.tm_year - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday

    def __enter__(self) -> EvalZip:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def discard(self) -> None:
        """Close and remove the file: a failed export leaves no half-written log behind (a
        reader would take a zip without its directory for a corrupt log)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def write(self, name: str, data: bytes) -> None:
        """Add `data` as member `name`, zstd-compressed."""
        self.write_compressed(name, self._compressor.compress(data), len(data), zlib.crc32(data))

    def write_compressed(self, name: str, compressed: bytes, size: int, crc: int) -> None:
        """Add a member already compressed as one zstd stream of `size` bytes whose CRC-32 is
        `crc` (a member built up piece by piece: `StreamedMember`)."""
        if name in self._names:
            raise ValueError(f"{self.path}: member {name!r} written twice")
        self._names.add(name)
        encoded = name.encode("utf-8")
        flags = 0 if encoded.isascii() else _UTF8_NAME
        big = size >= _MAX32 or len(compressed) >= _MAX32
        local_extra = struct.pack("<HHQQ", 1, 16, size, len(compressed)) if big else b""
        version = 45 if big or self._offset >= _MAX32 else 20
        header = struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            version,
            flags,
            ZSTD,
            self._dos_time,
            self._dos_date,
            crc,
            _MAX32 if big else len(compressed),
            _MAX32 if big else size,
            len(encoded),
            len(local_extra),
        )
        self._file.write(header + encoded + local_extra)
        self._file.write(compressed)
        # the central record carries in its ZIP64 extra only the fields that overflow, in order
        wide = [v for v in (size, len(compressed)) if big] + (
            [self._offset] if self._offset >= _MAX32 else []
        )
        extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
        self._central.append(
            struct.pack(
                "<4sBBHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                version,
                _UNIX,
                version,
                flags,
                ZSTD,
                self._dos_time,
                self._dos_date,
                crc,
                _MAX32 if big else len(compressed),
                _MAX32 if big else size,
                len(encoded),
                len(extra),
                0,
                0,
                0,
                _FILE_ATTR,
                min(self._offset, _MAX32),
            )
            + encoded
            + extra
        )
        self._offset += len(header) + len(encoded) + len(local_extra) + len(compressed)

    def close(self) -> None:
        """The central directory and the end records; the file is complete after this."""
        if self._file.closed:
            return
        start = self._offset
        directory = b"".join(self._central)
        self._file.write(directory)
        count = len(self._central)
        if count >= _MAX16 or start >= _MAX32 or len(directory) >= _MAX32:
            end64 = start + len(directory)
            self._file.write(
                struct.pack(
                    "<4sQHHIIQQQQ",
                    b"PK\x06\x06",
                    44,
                    45,
                    45,
                    0,
                    0,
                    count,
                    count,
                    len(directory),
                    start,
                )
            )
            self._file.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, end64, 1))
        self._file.write(
            struct.pack(
                "<4sHHHHIIH",
                b"PK\x05\x06",
                0,
                0,
                min(count, _MAX16),
                min(count, _MAX16),
                min(len(directory), _MAX32),
                min(start, _MAX32),
                0,
            )
        )
        self._file.close()


class StreamedMember:
    """A member's content compressed as it is appended, so a large member (the summaries of
    every sample of a log) is held compressed, about a tenth of its size, not whole."""

    def __init__(self) -> None:
        import zstandard

        self._stream = zstandard.ZstdCompressor(level=LEVEL).compressobj()
        self._parts: list[bytes] = []
        self.size = 0
        self.crc = 0

    def append(self, data: bytes) -> None:
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)
        self._parts.append(self._stream.compress(data))

    def finish(self) -> bytes:
        """The whole compressed stream; append nothing after this."""
        self._parts.append(self._stream.flush())
        return b"".join(self._parts)
