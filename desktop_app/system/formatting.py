"""How the system panel writes figures: None is always "n/a". Qt-free."""

from __future__ import annotations

NA = "n/a"
_GiB = 1024**3
_MiB = 1024**2


def fmt_bytes(value: int | float | None) -> str:
    """``"12.3 GiB"``, ``"512 MiB"``, or "n/a"."""
    if value is None:
        return NA
    if abs(value) >= _GiB:
        return f"{value / _GiB:.1f} GiB"
    return f"{value / _MiB:.0f} MiB"


def fmt_used_total(used: int | None, total: int | None) -> str:
    """``"14.2 / 80.0 GiB (18 %)"``; each missing figure reads "n/a"."""
    if used is None and total is None:
        return NA
    if used is None or total is None:
        return f"{fmt_bytes(used)} / {fmt_bytes(total)}"
    unit, scale = ("GiB", _GiB) if total >= _GiB else ("MiB", _MiB)
    digits = 1 if unit == "GiB" else 0
    share = f" ({100 * used / total:.0f} %)" if total > 0 else ""
    return f"{used / scale:.{digits}f} / {total / scale:.{digits}f} {unit}{share}"


def fmt_percent(value: float | None) -> str:
    return NA if value is None else f"{value:.0f} %"


def fmt_temperature(value: float | None) -> str:
    return NA if value is None else f"{value:.0f} °C"


def fmt_power(value: float | None) -> str:
    return NA if value is None else f"{value:.0f} W"


def fraction(used: int | float | None, total: int | float | None) -> float | None:
    """``used / total`` clamped to 0..1, or None when either is missing."""
    if used is None or total is None or total <= 0:
        return None
    return min(max(used / total, 0.0), 1.0)
