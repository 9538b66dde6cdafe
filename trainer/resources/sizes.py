"""Byte sizes as people write them: ``20GiB``, ``512MiB``, ``1.5TB``, ``800M``."""

from __future__ import annotations

import re

from trainer.errors import UsageError

GiB = 1024**3
UNITS = {
    "tib": 1024**4, "tb": 10**12, "t": 1024**4,
    "gib": GiB, "gb": 10**9, "g": GiB,
    "mib": 1024**2, "mb": 10**6, "m": 1024**2,
    "kib": 1024, "kb": 1000, "k": 1024, "b": 1, "": 1,
}  # fmt: skip
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str, *, what: str = "size") -> int:
    """``"20GiB"`` -> bytes; a one-line UsageError naming ``what`` otherwise."""
    match = _SIZE_RE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in UNITS:
        raise UsageError(f"{what} {text!r} is not a size: write it like 20GiB, 512MiB or 2TB")
    return int(float(match.group(1)) * UNITS[unit])


def format_size(n: float | None) -> str:
    """Bytes as a short binary size: ``21.5 GiB``; "n/a" for None."""
    if n is None:
        return "n/a"
    for unit, size in (("TiB", 1024**4), ("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
