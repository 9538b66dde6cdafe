"""Finding runs: list a runs directory, resolve a RUN argument, summarise many runs at once.

Qt-free and torch-free: the CLI's ``ls``/``show`` and the desktop app's runs panel share it.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import JournalError, RunNotFoundError
from trainer.journal import listing_file
from trainer.journal.db import idle_mark
from trainer.journal.reader import JournalReader, Listing, RunInfo
from trainer.journal.status import derive_status
from trainer.paths import JOURNAL_NAME, RunPaths


def new_run_id() -> str:
    """A short, unique, roughly time-ordered id such as ``k3f9q2ab``."""
    return f"{int(time.time()) % 46656:03x}{secrets.token_hex(3)}"[-9:]


def default_run_name(entry: str) -> str:
    stem = Path(entry).stem if entry.endswith(".py") else entry
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def list_run_folders(runs_dir: Path) -> list[Path]:
    """Run folders (folders holding a journal) directly under ``runs_dir``, by name."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if (p / JOURNAL_NAME).is_file())


@dataclass(frozen=True)
class RunSummary:
    """What a runs listing shows of one run. ``error`` is set for an unreadable journal."""

    id: str
    name: str
    path: str
    status: str
    step: int
    max_steps: int | None
    attempt: int
    entry: str
    created: float | None
    updated: float | None
    exit_reason: str | None
    latest: dict[str, float]
    error: str | None = None
    #: The resolved config, as journaled (nested tables as dicts).
    config: dict[str, Any] = field(default_factory=dict)
    #: Seconds spent paused in pauses that ended, and the start of the current one (if any).
    paused_s: float = 0.0
    paused_since: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def pause_time(events: Iterable[tuple[str, float]]) -> tuple[float, float | None]:
    """From (kind, wall) events in journal order: the seconds of the pauses that ended, and
    the wall time the current pause began (None if the run is not paused)."""
    total = 0.0
    since: float | None = None
    for kind, wall in events:
        if kind == "paused" and since is None:
            since = wall
        elif kind in listing_file.PAUSE_ENDS and since is not None:
            total += max(0.0, wall - since)
            since = None
    return total, since


#: The events :func:`pause_time` looks at (kept in an ended run's listing file too).
PAUSE_EVENTS = listing_file.PAUSE_EVENTS


def summarize(folder: Path, *, with_latest: bool = True) -> RunSummary:
    """Summarise one run folder; an unreadable journal gives status "unreadable" and the reason.

    A listing of thousands of ended runs spends most of its time opening journals. So an
    ended run's journal with nothing in its WAL is not opened at all when the listing file
    its trainer left beside it still matches it (:mod:`trainer.journal.listing_file`: the
    same listing in about 0.1 ms instead of 1 ms); without one, such a journal is read without
    locks, and read again the usual way if it changed meanwhile (this halves an open)."""
    journal = folder / JOURNAL_NAME
    mark = idle_mark(journal)
    try:
        if mark is not None:
            kept = listing_file.read_listing(journal, mark)
            if kept is not None:
                return _summary_of(folder, kept, with_latest)
            with contextlib.suppress(JournalError):  # a change in the middle: read again
                found = _summary_parts(folder, with_latest, frozen=True)
                if idle_mark(journal) == mark:
                    return summary_from(*found)
        return summary_from(*_summary_parts(folder, with_latest, frozen=False))
    except JournalError as exc:
        return RunSummary(
            id="?", name=folder.name, path=str(folder), status="unreadable", step=0,
            max_steps=None, attempt=0, entry="?", created=None, updated=None,
            exit_reason=None, latest={}, error=str(exc),
        )  # fmt: skip


def _summary_parts(
    folder: Path, with_latest: bool, *, frozen: bool
) -> tuple[RunInfo, Path, dict[str, float], tuple[float, float | None]]:
    with JournalReader(folder, frozen=frozen) as reader:
        found = reader.listing(PAUSE_EVENTS, with_latest=with_latest)
    return _parts(folder, found)


def _summary_of(folder: Path, listing: Listing, with_latest: bool) -> RunSummary:
    info, newest, events = listing
    return summary_from(*_parts(folder, (info, newest if with_latest else {}, events)))


def _parts(
    folder: Path, listing: Listing
) -> tuple[RunInfo, Path, dict[str, float], tuple[float, float | None]]:
    info, newest, events = listing
    return info, folder, {k: v for k, (_, v) in newest.items()}, pause_time(events)


def summary_from(
    info: RunInfo,
    folder: Path,
    latest: dict[str, float],
    pauses: tuple[float, float | None] = (0.0, None),
) -> RunSummary:
    """The summary of a run from its run row (status derived now), newest values and
    :func:`pause_time`."""
    step = max(info.step, info.heartbeat_step or 0)
    return RunSummary(
        id=info.id,
        name=info.name,
        path=str(folder),
        status=derive_status(info),
        step=step,
        max_steps=info.max_steps,
        attempt=info.attempt,
        entry=info.entry,
        created=info.created,
        updated=info.heartbeat_wall or info.updated,
        exit_reason=info.exit_reason,
        latest=latest,
        config=info.config,
        paused_s=pauses[0],
        paused_since=pauses[1],
    )


def summarize_all(runs_dir: Path, *, with_latest: bool = True) -> list[RunSummary]:
    """Summaries of every run in ``runs_dir``, oldest first (unreadable ones last)."""
    found = [summarize(p, with_latest=with_latest) for p in list_run_folders(runs_dir)]
    return sorted(found, key=lambda s: (s.created is None, s.created or 0.0, s.name))


def resolve_run(spec: str, runs_dir: Path) -> RunPaths:
    """Find a run by folder path, name, id or unique id prefix; RunNotFoundError otherwise."""
    as_path = Path(spec).expanduser()
    if as_path.is_dir() and (as_path / JOURNAL_NAME).is_file():
        return RunPaths(as_path)
    if (as_path.is_dir() or "/" in spec) and not (runs_dir / spec).is_dir():
        if not as_path.exists():
            raise RunNotFoundError(f"run folder {spec} does not exist: check the path")
        raise RunNotFoundError(f"{spec} is not a run folder (it has no {JOURNAL_NAME})")
    by_name = runs_dir / spec
    if (by_name / JOURNAL_NAME).is_file():
        return RunPaths(by_name)
    matches: list[Path] = []
    for folder in list_run_folders(runs_dir):
        try:
            with JournalReader(folder) as reader:
                run_id = reader.run_info().id
        except JournalError:
            continue
        if run_id == spec:
            return RunPaths(folder)
        if run_id.startswith(spec):
            matches.append(folder)
    if len(matches) == 1:
        return RunPaths(matches[0])
    if len(matches) > 1:
        names = ", ".join(m.name for m in matches[:5])
        raise RunNotFoundError(f"{spec!r} matches several runs ({names}): give more of the id")
    raise RunNotFoundError(
        f"no run named {spec!r} in {runs_dir}: see `trainer ls`, or pass --runs-dir or a path"
    )
