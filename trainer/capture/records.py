"""The capture file: JSON lines from a command's process to the trainer that journals them.

Each line is one record: ``{"kind": "log", "step": 3, "metrics": {...}, "wall": ...}``,
``{"kind": "event", "event": "checkpoint", "message": "...", "step": 3}`` or
``{"kind": "config", "config": {...}}``. Lines are appended whole and flushed, so the reader
takes every complete line and leaves a partial one for next time.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from trainer import settings

ENV_CAPTURE_FILE = settings.CAPTURE_FILE.name


class CaptureWriter:
    """Appends records to the capture file (thread-safe; each record one flushed line)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fh = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_plain, allow_nan=True)
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
                self._fh.flush()

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.write({"kind": "log", "step": step, "metrics": metrics, "wall": time.time()})

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _plain(value: Any) -> Any:
    """Numbers from numpy or torch scalars; anything else as text."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric values of ``metrics`` (flattened ``a/b`` for nested dicts), as floats."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update({f"{key}/{k}": v for k, v in numeric(value).items()})
            continue
        value = _plain(value) if not isinstance(value, int | float) else value
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and not math.isnan(float(value)):
            out[str(key)] = float(value)
    return out


#: The most read from the capture file at once (memory stays bounded on a huge backlog).
READ_LIMIT = 8 * 1024 * 1024


class CaptureTail:
    """Reads the records appended to a capture file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        from trainer.imports.tfevents import read_from

        data = read_from(self.path, self.offset, READ_LIMIT)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) == READ_LIMIT:  # one line longer than any record: not ours, skipped
                self.offset += len(data)
            return []
        self.offset += end + 1
        records = []
        for line in data[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # not ours: never fatal
            if isinstance(record, dict):
                records.append(record)
        return records
