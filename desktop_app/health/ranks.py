"""The ranks of a run on several processes (torchrun), from its run folder's ``ranks.json``.
Qt-free.

The trainer keeps there the newest heartbeat of each rank (rank, world, local rank, node,
host, pid, device, step, the elastic restart it belongs to, and its unix time), rewritten
atomically about once a second, and the elastic restart count:
``{"restart": n, "ranks": [{...}, ...]}``. A run without the file has no ranks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RANKS_NAME", "RankBeat", "Ranks", "read_ranks"]

RANKS_NAME = "ranks.json"


@dataclass(frozen=True)
class RankBeat:
    """One rank's newest heartbeat."""

    rank: int
    world: int | None
    local_rank: int | None
    node: int | None
    host: str
    pid: int | None
    device: str
    step: int
    restart: int
    wall: float | None  # unix time of the beat

    def age(self, now: float) -> float | None:
        """Seconds since the beat (None: the beat has no time)."""
        return None if self.wall is None else max(0.0, now - self.wall)


@dataclass(frozen=True)
class Ranks:
    """A run's ranks as last written, and how many times torchrun restarted its workers."""

    restart: int
    ranks: tuple[RankBeat, ...]
    error: str = ""  # the file could not be read or understood

    @property
    def nodes(self) -> int:
        return len({r.node for r in self.ranks})

    @property
    def world(self) -> int | None:
        """The world size the ranks report (None: none reported)."""
        return next((r.world for r in self.ranks if r.world is not None), None)


def read_ranks(folder: str | Path) -> Ranks | None:
    """The ranks of the run folder ``folder``; None when it has no ``ranks.json``. Blocking
    (call off the GUI thread); never raises: a file that cannot be read or parsed gives a
    :class:`Ranks` with ``error`` set."""
    path = Path(folder) / RANKS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Ranks(0, (), f"cannot read {RANKS_NAME}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
        entries = data["ranks"]
        if not isinstance(entries, list):
            raise TypeError("ranks is not a list")
        beats = tuple(sorted((_beat(e) for e in entries), key=lambda b: (b.node or 0, b.rank)))
        return Ranks(_int(data.get("restart")) or 0, beats)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Ranks(0, (), f"{RANKS_NAME} is not understood: {exc}")


def _beat(entry: dict[str, Any]) -> RankBeat:
    if not isinstance(entry, dict):
        raise TypeError(f"a rank entry is {type(entry).__name__}, not an object")
    rank = _int(entry.get("rank"))
    if rank is None:
        raise ValueError("a rank entry without its rank")
    return RankBeat(
        rank=rank,
        world=_int(entry.get("world")),
        local_rank=_int(entry.get("local_rank")),
        node=_int(entry.get("node")),
        host=str(entry.get("host") or ""),
        pid=_int(entry.get("pid")),
        device=str(entry.get("device") or ""),
        step=_int(entry.get("step")) or 0,
        restart=_int(entry.get("restart")) or 0,
        wall=_float(entry.get("wall")),
    )


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
