"""A reader of TensorBoard event files' scalars, without TensorFlow or TensorBoard.

An event file is a TFRecord stream: each record is ``length (u64) | crc (u32) | data | crc``,
and each ``data`` an ``Event`` protocol buffer. Only what scalars need is decoded: the event's
``wall_time`` (1), ``step`` (2) and ``summary`` (5), a summary's ``value`` (1), and a value's
``tag`` (1), ``simple_value`` (2) or a scalar ``tensor`` (8). Anything else is skipped by its
wire type. Hand-written so that the trainer needs no TensorBoard at run time (it is ~100
lines; TensorBoard pulls in protobuf, grpc and a web server); tests check it against the real
writer.

:class:`EventFileReader` reads incrementally: a record still being written is left for the
next :meth:`~EventFileReader.read_new`.
"""

from __future__ import annotations

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


def read_from(path: Path, offset: int) -> bytes:
    """What a growing file holds past ``offset`` (nothing if it cannot be read now)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError:
        return b""


class EventFileReader:
    """Reads one event file from where it left off; safe on a file still being written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[ScalarEvent]:
        """The scalars of every whole record added since the last call."""
        data = read_from(self.path, self.offset)
        out: list[ScalarEvent] = []
        pos = 0
        while len(data) - pos >= 12:
            (length,) = struct.unpack_from("<Q", data, pos)
            end = pos + 12 + length + 4
            if end > len(data):
                break  # the writer has not finished this record yet
            out.extend(parse_event(data[pos + 12 : pos + 12 + length]))
            pos = end
        self.offset += pos
        return out


def event_files(log_dir: Path) -> list[Path]:
    """Every event file under ``log_dir`` (a run may write several, in subfolders)."""
    return sorted(p for p in Path(log_dir).rglob("*tfevents*") if p.is_file())


def read_dir(log_dir: Path) -> list[ScalarEvent]:
    """All scalars of every event file under ``log_dir``, keyed by their subfolder.

    A scalar in a subfolder ``sub`` (SummaryWriter's ``add_scalars``, or runs side by side)
    gets the tag ``sub/tag``.
    """
    root = Path(log_dir)
    out = []
    for path in event_files(root):
        prefix = path.parent.relative_to(root).as_posix()
        for event in EventFileReader(path).read_new():
            tag = event.tag if prefix == "." else f"{prefix}/{event.tag}"
            out.append(ScalarEvent(tag, event.step, event.wall, event.value))
    return out
