"""A reader of TensorBoard event files' scalars, without TensorFlow or TensorBoard.

An event file is a TFRecord stream: each record is ``length (u64) | crc (u32) | data | crc``,
and each ``data`` an ``Event`` protocol buffer. Only what scalars need is decoded: the event's
``wall_time`` (1), ``step`` (2) and ``summary`` (5), a summary's ``value`` (1), and a value's
``tag`` (1), ``simple_value`` (2) or a scalar ``tensor`` (8). Anything else is skipped by its
wire type. Hand-written so that the trainer needs no TensorBoard at run time (it is ~100
lines; TensorBoard pulls in protobuf, grpc and a web server); tests check it against the real
writer.

:class:`EventFileReader` reads incrementally: a record still being written is left for the
next :meth:`~EventFileReader.read_new`. Both CRCs of every record are checked (a masked
CRC-32C, computed here from a table, checked against the real writer by the tests): a corrupt
or truncated record is skipped and reported, never read as a value, and no record larger than
:data:`MAX_RECORD` is read into memory.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF = 1, 2, 3, 9, 19


@dataclass(frozen=True)
class ScalarEvent:
    tag: str
    step: int
    wall: float
    value: float


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varints and fixed, bytes for lengths."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 5:
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        else:  # groups (3, 4) are not used by these messages
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _tensor_scalar(buf: bytes) -> float | None:
    dtype = 0
    content = b""
    packed: dict[int, bytes] = {}
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 0:
            dtype = int(value)
        elif number == 4 and wire == 2:
            content = value
        elif number in (5, 6, 7, 10) and wire in (1, 2, 5):  # packed, or a single fixed
            packed[number] = value
    if dtype == _DT_FLOAT:
        raw = content or packed.get(5, b"")
        return struct.unpack("<f", raw[:4])[0] if len(raw) >= 4 else None
    if dtype == _DT_DOUBLE:
        raw = content or packed.get(6, b"")
        return struct.unpack("<d", raw[:8])[0] if len(raw) >= 8 else None
    if dtype in (_DT_INT32, _DT_INT64):
        if content:
            fmt = "<i" if dtype == _DT_INT32 else "<q"
            return float(struct.unpack(fmt, content[: struct.calcsize(fmt)])[0])
        ints = packed.get(7 if dtype == _DT_INT32 else 10)
        return float(_varint(ints, 0)[0]) if ints else None
    if dtype == _DT_HALF and len(content) >= 2:
        return struct.unpack("<e", content[:2])[0]
    return None


def parse_event(data: bytes) -> list[ScalarEvent]:
    """The scalars in one serialized ``Event``."""
    wall, step, summaries = 0.0, 0, []
    for number, wire, value in _fields(data):
        if number == 1 and wire == 1:
            wall = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            step = int(value)
            if step >= 1 << 63:
                step -= 1 << 64
        elif number == 5 and wire == 2:
            summaries.append(value)
    out = []
    for summary in summaries:
        for number, wire, value in _fields(summary):
            if number != 1 or wire != 2:
                continue
            tag, scalar = "", None
            for vnum, vwire, vval in _fields(value):
                if vnum == 1 and vwire == 2:
                    tag = bytes(vval).decode("utf-8", "replace")
                elif vnum == 2 and vwire == 5:
                    scalar = struct.unpack("<f", vval)[0]
                elif vnum == 8 and vwire == 2:
                    scalar = _tensor_scalar(vval)
            if tag and scalar is not None:
                out.append(ScalarEvent(tag, step, wall, float(scalar)))
    return out


def read_from(path: Path, offset: int, limit: int | None = None) -> bytes:
    """What a growing file holds past ``offset``, at most ``limit`` bytes (nothing if it
    cannot be read now)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read() if limit is None else fh.read(limit)
    except OSError:
        return b""


# ----------------------------------------------------------------------------- checksums
def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits, plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- records
#: The largest record read into memory; a bigger one (an image, or a length field that lies)
#: is stepped over unread, so memory stays bounded whatever a file claims.
MAX_RECORD = 16 * 1024 * 1024
#: How far past a corrupt header the reader looks for the next good one, per call.
RESYNC_WINDOW = 64 * 1024
_HEADER, _FOOTER = 12, 4


@dataclass(frozen=True)
class Problem:
    """A part of an event file that was skipped: where, and why."""

    path: Path
    offset: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}: byte {self.offset}: {self.what}"


class EventFileReader:
    """Reads one event file from where it left off; safe on a file still being written.

    Every record is checked against its CRCs: a corrupt or truncated record is skipped and
    added to :attr:`problems` (file, offset, what), never turned into a value. A record not
    yet whole waits for the next :meth:`read_new`, unless ``final`` says the file is
    complete (then it is reported as truncated).
    """

    def __init__(self, path: Path, max_record: int = MAX_RECORD) -> None:
        self.path = Path(path)
        self.offset = 0
        self.max_record = max_record
        self.problems: list[Problem] = []
        self._reported = 0

    def new_problems(self) -> list[Problem]:
        """The problems found since the last call."""
        found = self.problems[self._reported :]
        self._reported = len(self.problems)
        return found

    def _skip(self, offset: int, what: str) -> None:
        self.problems.append(Problem(self.path, offset, what))

    def read_new(self, final: bool = False) -> list[ScalarEvent]:
        """The scalars of every whole, intact record added since the last call."""
        out: list[ScalarEvent] = []
        try:
            fh = self.path.open("rb")
        except OSError:
            return out
        with fh:
            size = os.fstat(fh.fileno()).st_size
            while self.offset < size:
                if not self._record(fh, size, final, out):
                    break
        return out

    def _record(self, fh: Any, size: int, final: bool, out: list[ScalarEvent]) -> bool:
        """Read the record at :attr:`offset`; False when it must wait (or the file ended)."""
        start = self.offset
        fh.seek(start)
        header = fh.read(_HEADER)
        if len(header) < _HEADER:
            if final:
                self._skip(start, f"truncated record header ({len(header)} of 12 bytes)")
                self.offset = size
            return False
        (length,) = struct.unpack_from("<Q", header)
        if masked_crc32c(header[:8]) != struct.unpack_from("<I", header, 8)[0]:
            return self._resync(fh, size, final)
        end = start + _HEADER + length + _FOOTER
        if end > size:
            if final:
                got = max(0, size - start - _HEADER)
                self._skip(start, f"truncated record ({got} of {length + _FOOTER} bytes)")
                self.offset = size
            return False
        self.offset = end
        if length > self.max_record:
            self._skip(start, f"record of {length} bytes skipped unread (over the "
                       f"{self.max_record}-byte limit)")  # fmt: skip
            return True
        data = fh.read(length)
        footer = fh.read(_FOOTER)
        try:
            events = parse_event(data)
            broken = False
        except (IndexError, ValueError, struct.error, UnicodeDecodeError):
            events, broken = [], True
        # Records without scalars (images, graphs...) are not checked: nothing is taken.
        if (events or broken) and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            self._skip(start, f"corrupt record ({length} bytes): data checksum mismatch")
            return True
        if broken:
            self._skip(start, f"record ({length} bytes) is not a readable Event")
            return True
        out.extend(events)
        return True

    def _resync(self, fh: Any, size: int, final: bool) -> bool:
        """A header failed its CRC: find the next header that passes, skipping what is
        between (the length field cannot be trusted, so records are not counted on)."""
        start = self.offset
        fh.seek(start + 1)
        window = fh.read(RESYNC_WINDOW + _HEADER)
        for i in range(max(0, len(window) - _HEADER + 1)):
            if masked_crc32c(window[i : i + 8]) == struct.unpack_from("<I", window, i + 8)[0]:
                self._skip(start, f"corrupt record header: {i + 1} bytes skipped")
                self.offset = start + 1 + i
                return True
        if final:
            self._skip(start, f"corrupt record header: the last {size - start} bytes skipped")
            self.offset = size
            return False
        if len(window) > RESYNC_WINDOW:  # every position of a full window was tried
            self.offset = start + 1 + len(window) - _HEADER + 1
            self._skip(start, f"corrupt record header: {self.offset - start} bytes skipped")
            return True
        return False  # wait: the next header may still be on its way


def event_files(log_dir: Path) -> list[Path]:
    """Every event file under ``log_dir`` (a run may write several, in subfolders)."""
    return sorted(p for p in Path(log_dir).rglob("*tfevents*") if p.is_file())


def read_dir(log_dir: Path) -> list[ScalarEvent]:
    """All scalars of every event file under ``log_dir``, keyed by their subfolder.

    A scalar in a subfolder ``sub`` (SummaryWriter's ``add_scalars``, or runs side by side)
    gets the tag ``sub/tag``.
    """
    return read_dir_checked(log_dir)[0]


def read_dir_checked(log_dir: Path) -> tuple[list[ScalarEvent], list[Problem]]:
    """:func:`read_dir`, and the corrupt or truncated parts that were skipped."""
    root = Path(log_dir)
    out, problems = [], []
    for path in event_files(root):
        prefix = path.parent.relative_to(root).as_posix()
        reader = EventFileReader(path)
        for event in reader.read_new(final=True):
            tag = event.tag if prefix == "." else f"{prefix}/{event.tag}"
            out.append(ScalarEvent(tag, event.step, event.wall, event.value))
        problems += reader.problems
    return out, problems
