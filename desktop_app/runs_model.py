"""The runs panel's model: the summaries of every run in a runs directory. Qt-free.

Widgets subscribe with :meth:`RunsModel.add_listener`; listeners are called only when the
list of summaries actually changed, never on a refresh that found nothing new, and
:attr:`RunsModel.last_change` says which rows were added, changed or removed.

:class:`RunsScanner` keeps the listing up to date at any number of run folders, reading as
little as it can (see its docstring): the table fills progressively, a new folder is found
from the runs directory's own modification time, and a journal is read again only when its
files changed on disk.

Why over 400 lines: the model and its scanner share the incremental listing (modification times,
progressive fill, change sets) that keeps a thousand run folders cheap; the table widget is
runs_table.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from trainer.journal.status import ALIVE, LIVE
from trainer.paths import JOURNAL_NAME, write_private_text
from trainer.runs import RunSummary, summarize, summarize_all

Listener = Callable[[], None]

#: The key whose last value the runs table shows.
LOSS_KEY = "train/loss"


def fetch_runs(runs_dir: Path) -> list[RunSummary]:
    """Summaries of ``runs_dir``'s runs, newest first (unreadable ones last, by name).

    Blocking (opens every journal): call it off the GUI thread. A runs directory that is
    gone raises FileNotFoundError with the fix.
    """
    if not runs_dir.is_dir():
        raise FileNotFoundError(
            f"the runs folder {runs_dir} does not exist (any more): recreate it, or choose "
            "another in File → Settings"
        )
    return sort_runs(summarize_all(runs_dir))


def sort_runs(runs: Sequence[RunSummary]) -> list[RunSummary]:
    """A stable order that does not move rows as runs write: by creation time, newest first."""
    return sorted(runs, key=_sort_key)


def _sort_key(r: RunSummary) -> tuple[bool, float, str, str]:
    return (r.created is None, -(r.created or 0.0), r.name, r.path)


#: A journal's files as last seen: (inode, size, mtime ns) of journal.sqlite, then (size,
#: mtime ns) of its -wal ((0, 0) when there is none or it is empty). A commit, a checkpoint or
#: a replaced file changes it.
Mark = tuple[int, int, int, int, int]


def file_mark(folder: str | Path) -> Mark | None:
    """The :data:`Mark` of ``folder``'s journal; None when it has none."""
    journal = os.path.join(folder, JOURNAL_NAME)
    try:
        st = os.stat(journal)
    except OSError:
        return None
    try:
        wal = os.stat(journal + "-wal")
        # An empty -wal holds nothing: the first reader of a journal makes one.
        wal_mark = (wal.st_size, wal.st_mtime_ns) if wal.st_size else (0, 0)
    except OSError:
        wal_mark = (0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns, *wal_mark)


@dataclass
class ScanResult:
    """What one :meth:`RunsScanner.scan` found: new or changed summaries, folders gone, and
    whether every run folder known has its summary yet (False: scan again soon)."""

    changed: list[RunSummary] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    complete: bool = True
    known: int = 0


#: Statuses a journal keeps until someone writes it again (its summary can be cached).
_SETTLED = frozenset({"finished", "stopped", "failed", "crashed"})
#: New folders read per thread in one go while the first listing fills.
FILL_BATCH = 8


class RunsScanner:
    """Keeps a runs directory's listing up to date, reading as little as it can. Use it from
    one thread (the app's journal worker).

    * The directory is listed again only when its own modification time changed (a run
      folder made or removed); a folder made without its journal yet is looked at on each
      scan until the journal appears.
    * A journal is read again only when its files changed (:func:`file_mark`). The runs that
      are live (or unresponsive, stalled) are read on each scan: their status is derived from
      the process and the heartbeat's age, which change without a write. Ended runs are
      looked at in turns, ``recheck`` folders a scan (a ``stat`` each: two for a finished run
      every few seconds, whatever the number of folders).
    * The first listing fills progressively: each scan reads new folders, newest journal
      first, for at most ``budget_s`` seconds and says whether it is ``complete`` (with
      ``workers`` threads, ended once it is: call :meth:`close` if it may not be).
    * Summaries of ended runs are kept in a cache file (``cache``) with their journal's mark,
      so the next start shows a big runs directory without opening every journal.
    """

    def __init__(
        self,
        runs_dir: Path,
        *,
        budget_s: float = 0.1,
        recheck: int = 50,
        cache: Path | None = None,
        summarize_one: Callable[[Path], RunSummary] = summarize,
        workers: int = 3,
    ) -> None:
        self.runs_dir = runs_dir
        #: Threads that read new folders while the first listing fills (1: the caller only).
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self.budget_s = budget_s
        self.recheck = recheck
        self.cache = cache
        self._summarize = summarize_one
        self._dir_mtime: int | None = None
        self._marks: dict[str, Mark] = {}
        self._summaries: dict[str, RunSummary] = {}
        self._pending: list[str] = []  # known folders without a summary yet, next first
        self._candidates: set[str] = set()  # folders in runs_dir without a journal (yet)
        self._extra: set[str] = set()
        self._turn = 0
        # What _split() last worked out, and the change count and followed set it was for.
        self._changes = 0
        self._split_key: tuple[int, frozenset[str]] | None = None
        self._split_value: tuple[list[str], list[str]] = ([], [])
        self._cached: dict[str, tuple[Mark, RunSummary]] | None = None
        self._cache_dirty = False
        #: Journals read so far (for tests and the benchmark).
        self.reads = 0
        #: Folders whose rows come from the app's followers (live runs): not read here while
        #: they are (set from the GUI thread; a frozenset is swapped whole).
        self.followed: frozenset[str] = frozenset()

    def scan(self, extra: Iterable[Path] = ()) -> ScanResult:
        """What changed since the last scan (blocking). FileNotFoundError with the fix when
        the runs directory is gone."""
        result = ScanResult()
        try:
            mtime = os.stat(self.runs_dir).st_mtime_ns
        except OSError:
            raise FileNotFoundError(
                f"the runs folder {self.runs_dir} does not exist (any more): recreate it, or "
                "choose another in File → Settings"
            ) from None
        if self._cached is None:
            self._cached = _load_cache(self.cache)
        if mtime != self._dir_mtime:
            self._dir_mtime = mtime
            self._list(result)
        for folder in [str(Path(f)) for f in extra]:
            if folder not in self._marks and folder not in self._extra:
                self._extra.add(folder)
                self._candidates.add(folder)
        self._look_at_candidates()
        self._recheck(result)
        self._fill(result)
        result.complete = not self._pending
        result.known = len(self._marks)
        if result.complete:
            self.save_cache()
        return result

    @property
    def summaries(self) -> dict[str, RunSummary]:
        return dict(self._summaries)

    # ------------------------------------------------------------------ steps
    def _list(self, result: ScanResult) -> None:
        present: dict[str, Mark] = {}
        with contextlib.suppress(OSError), os.scandir(self.runs_dir) as entries:
            for entry in entries:
                if not entry.is_dir():
                    continue
                mark = file_mark(entry.path)
                if mark is None:
                    self._candidates.add(entry.path)
                else:
                    present[entry.path] = mark
        for folder in [f for f in self._marks if f not in present and f not in self._extra]:
            self._forget(folder, result)
        for folder in [f for f in self._candidates if f not in self._extra]:
            if not os.path.isdir(folder):
                self._candidates.discard(folder)
        new = [f for f in present if f not in self._marks]
        # Newest journal first: the top of the table (newest first) fills first.
        new.sort(key=lambda f: present[f][2], reverse=True)
        for folder in new:
            self._add(folder, present[folder])

    def _add(self, folder: str, mark: Mark) -> None:
        self._candidates.discard(folder)
        self._marks[folder] = mark
        self._pending.append(folder)

    def _forget(self, folder: str, result: ScanResult) -> None:
        self._changes += 1
        self._marks.pop(folder, None)
        if self._summaries.pop(folder, None) is not None:
            result.removed.append(folder)
        if folder in self._pending:
            self._pending.remove(folder)
        self._extra.discard(folder)
        if self._cached is not None and self._cached.pop(folder, None) is not None:
            self._cache_dirty = True

    def _look_at_candidates(self) -> None:
        for folder in list(self._candidates):
            mark = file_mark(folder)
            if mark is not None:
                self._add(folder, mark)
            elif folder not in self._extra and not os.path.isdir(folder):
                self._candidates.discard(folder)

    def _recheck(self, result: ScanResult) -> None:
        """Read again the live runs, and the ended ones (in turns) whose journal changed."""
        live, settled = self._split()
        turn: list[str] = []
        if settled:
            start = self._turn % len(settled)
            end = start + self.recheck
            turn = settled[start:end] + settled[: max(0, min(start, end - len(settled)))]
            self._turn = start + len(turn)
        for folder in [*live, *turn]:
            mark = file_mark(folder)
            if mark is None:
                if not os.path.isdir(folder) or folder in self._extra:
                    self._forget(folder, result)
                continue
            if folder in live or mark != self._marks[folder]:
                self._marks[folder] = mark
                self._read(folder, result)

    def _split(self) -> tuple[list[str], list[str]]:
        """The folders read so far and not followed: the live ones, the ended ones. Worked
        out again only when a summary or the followed set changed, not on every scan (a
        thousand folders)."""
        key = (self._changes, self.followed)
        if self._split_key != key:
            done = [f for f in self._marks if f in self._summaries and f not in self.followed]
            live = [f for f in done if self._summaries[f].status in ALIVE]
            settled = [f for f in done if self._summaries[f].status not in ALIVE]
            self._split_key, self._split_value = key, (live, settled)
        return self._split_value

    def _fill(self, result: ScanResult) -> None:
        deadline = time.monotonic() + self.budget_s
        while self._pending and (time.monotonic() < deadline or not result.changed):
            batch: list[str] = []
            while self._pending and len(batch) < FILL_BATCH * self.workers:
                folder = self._pending.pop(0)
                cached = (self._cached or {}).get(folder)
                if cached is not None and cached[0] == self._marks[folder]:
                    self._set(folder, cached[1], result)
                else:
                    batch.append(folder)
            if len(batch) > 1 and self.workers > 1:
                # Opening a journal is mostly SQLite and the file system, which let go of
                # the GIL: a few threads list a cold folder of thousands faster.
                self.reads += len(batch)
                summaries = self._fill_pool().map(self._summarize, map(Path, batch))
                for folder, summary in zip(batch, summaries, strict=True):
                    self._take(folder, summary, result)
            else:
                for folder in batch:
                    self._read(folder, result)
        if not self._pending:
            self.close()

    def _fill_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="traindesk-io-fill")
        return self._pool

    def close(self) -> None:
        """End the first listing's reading threads (they end once it is complete anyway)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _read(self, folder: str, result: ScanResult) -> None:
        self.reads += 1
        self._take(folder, self._summarize(Path(folder)), result)

    def _take(self, folder: str, summary: RunSummary, result: ScanResult) -> None:
        mark = self._marks[folder]
        self._set(folder, summary, result)
        if self._cached is not None and summary.status in _SETTLED:
            self._cached[folder] = (mark, summary)
            self._cache_dirty = True

    def _set(self, folder: str, summary: RunSummary, result: ScanResult) -> None:
        if self._summaries.get(folder) != summary:
            self._changes += 1
            self._summaries[folder] = summary
            result.changed.append(summary)

    # ------------------------------------------------------------------ the cache
    def save_cache(self) -> None:
        """Write the ended runs' summaries to the cache file if they changed since the last
        save (errors are ignored: it is a cache). Call it from the scanning thread, or once
        no scan can run."""
        if not self._cache_dirty or self.cache is None or self._cached is None:
            return
        self._cache_dirty = False
        entries = [
            {"mark": list(mark), "summary": summary.to_json()}
            for folder, (mark, summary) in self._cached.items()
            if folder in self._marks
        ]
        with contextlib.suppress(OSError):  # a cache: lost, it is rebuilt
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": _CACHE_VERSION, "runs": entries})
            write_private_text(self.cache, text, durable=False)


#: Bumped whenever RunSummary or the mark changes meaning: an old cache is then ignored.
_CACHE_VERSION = 2


def summary_cache_path(runs_dir: Path) -> Path:
    """The summary cache of ``runs_dir``, in the user cache folder (one file per runs dir)."""
    import platformdirs

    digest = hashlib.sha1(str(runs_dir.resolve()).encode(), usedforsecurity=False).hexdigest()
    base = Path(platformdirs.user_cache_dir("traindesk", appauthor=False))
    return base / "runs-index" / f"{digest[:16]}.json"


def results_cache_path(runs_dir: Path) -> Path:
    """Where the runs table keeps ``runs_dir``'s ended runs' results (beside its summaries)."""
    summaries = summary_cache_path(runs_dir)
    return summaries.with_name(f"{summaries.stem}-results.json")


def _load_cache(path: Path | None) -> dict[str, tuple[Mark, RunSummary]]:
    """The cached summaries by folder; {} when there is no cache or it cannot be read."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("version") != _CACHE_VERSION:
            return {}
        out: dict[str, tuple[Mark, RunSummary]] = {}
        for entry in data["runs"]:
            summary = RunSummary(**entry["summary"])
            mark = tuple(int(x) for x in entry["mark"])
            if len(mark) == 5:
                out[summary.path] = (mark, summary)
        return out
    except (OSError, ValueError, TypeError, KeyError):
        return {}


@dataclass(frozen=True)
class RunsChange:
    """Which rows the last change of a :class:`RunsModel` touched, by run folder path."""

    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    #: A changed row's status changed too (rows added or removed count as such).
    statuses: bool = True
    #: Only rows replaced where they were: every other row kept its place.
    in_place: bool = False


class RunsModel:
    """Holds the current list of :class:`RunSummary` and tells listeners when it changes.

    Two ways to feed it: :meth:`fetch` and :meth:`set_runs` (the whole listing at once), or
    :meth:`scan` (on the worker) and :meth:`apply` (the changes only; see
    :class:`RunsScanner`). ``cache``: the scanner's summary cache file (None: none).
    """

    def __init__(
        self,
        runs_dir: Path,
        fetch: Callable[[Path], list[RunSummary]] = fetch_runs,
        *,
        cache: Path | None = None,
    ) -> None:
        self.runs_dir = runs_dir
        self._fetch = fetch
        self._runs: list[RunSummary] = []
        self._rows: dict[str, int] = {}
        self._listeners: list[Listener] = []
        #: Run folders opened from elsewhere (the menu, drag and drop), shown with the rest.
        self.extra_folders: list[Path] = []
        self.scanner = RunsScanner(runs_dir, cache=cache)
        #: What the last notified change touched.
        self.last_change = RunsChange()

    def add_folder(self, folder: Path) -> str | None:
        """Show a run folder from outside the runs directory; returns an error message or None."""
        folder = folder.expanduser()
        if not folder.is_dir():
            return f"{folder} is not a folder: open a run folder (one holding {JOURNAL_NAME})"
        if not (folder / JOURNAL_NAME).is_file():
            return f"{folder} is not a run folder: it has no {JOURNAL_NAME}"
        resolved = folder.resolve()
        if resolved.parent != self.runs_dir.resolve() and resolved not in self.extra_folders:
            self.extra_folders.append(resolved)
        return None

    @property
    def runs(self) -> list[RunSummary]:
        """The current summaries (a copy)."""
        return list(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fetch(self) -> list[RunSummary]:
        """Read the runs directory and the extra folders (blocking; for a worker thread)."""
        found = self._fetch(self.runs_dir)
        extra = [summarize(folder) for folder in list(self.extra_folders)]
        return sort_runs([*found, *extra]) if extra else found

    def refresh(self) -> bool:
        """Fetch and apply in one go (blocking). True if anything changed."""
        return self.set_runs(self.fetch())

    def scan(self) -> ScanResult:
        """What changed in the runs directory and the extra folders (blocking; the worker)."""
        return self.scanner.scan(list(self.extra_folders))

    def apply(self, result: ScanResult) -> bool:
        """Take a scan's changes; notify listeners and return True only if rows changed."""
        if not result.changed and not result.removed:
            return False
        if not result.removed and (done := self._in_place(result.changed)) is not None:
            return done
        by_path = {run.path: run for run in self._runs}
        for path in result.removed:
            by_path.pop(path, None)
        for run in result.changed:
            by_path[run.path] = run
        return self.set_runs(sort_runs(list(by_path.values())))

    def _in_place(self, changed: list[RunSummary]) -> bool | None:
        """Replace rows that keep their place (same run, same sort key): a live run's new
        step or heartbeat costs its own row, not a sort of every run. Whether anything
        changed; None (nothing done) if a row would move or is new."""
        rows = []
        for run in changed:
            row = self._rows.get(run.path)
            if row is None or _sort_key(self._runs[row]) != _sort_key(run):
                return None
            rows.append(row)
        touched = [(row, run) for row, run in zip(rows, changed, strict=True)
                   if self._runs[row] != run]  # fmt: skip
        if not touched:
            return False
        statuses = any(self._runs[row].status != run.status for row, run in touched)
        for row, run in touched:
            self._runs[row] = run
        self.last_change = RunsChange(
            changed=frozenset(run.path for _row, run in touched), statuses=statuses, in_place=True
        )
        for listener in list(self._listeners):
            listener()
        return True

    def set_runs(self, runs: Sequence[RunSummary]) -> bool:
        """Replace the summaries; notify listeners and return True only if they differ."""
        new = list(runs)
        if new == self._runs:
            return False
        old = {run.path: run for run in self._runs}
        paths = {run.path for run in new}
        self.last_change = RunsChange(
            added=frozenset(paths - old.keys()),
            changed=frozenset(r.path for r in new if r.path in old and old[r.path] != r),
            removed=frozenset(old.keys() - paths),
        )
        self._runs = new
        self._rows = {run.path: row for row, run in enumerate(new)}
        for listener in list(self._listeners):
            listener()
        return True

    def index_of(self, path: str | None) -> int | None:
        """The row of the run at ``path``, or None."""
        return None if path is None else self._rows.get(path)


def step_text(run: RunSummary) -> str:
    """``"120 / 300"``, or just ``"120"`` when the run has no step budget."""
    if run.status == "unreadable":
        return ""
    return f"{run.step} / {run.max_steps}" if run.max_steps else str(run.step)


def loss_text(run: RunSummary) -> str:
    """The last ``train/loss`` value, formatted, or an empty string."""
    value = run.latest.get(LOSS_KEY)
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def elapsed_seconds(run: RunSummary, now: float | None = None) -> float | None:
    """Seconds the run has spent running: from its creation to now (to its last heartbeat
    once it has ended), less the time it was paused."""
    if run.created is None:
        return None
    end = (now or time.time()) if run.status in LIVE else (run.updated or run.created)
    paused = run.paused_s
    if run.paused_since is not None:
        paused += max(0.0, end - run.paused_since)
    return max(0.0, end - run.created - paused)


def duration_text(seconds: float | None) -> str:
    """``"42s"``, ``"3m 05s"``, ``"2h 07m"``; empty for None."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def elapsed_text(run: RunSummary, now: float | None = None) -> str:
    """Time spent running (:func:`elapsed_seconds`)."""
    return duration_text(elapsed_seconds(run, now))


def eta_seconds(run: RunSummary, now: float | None = None) -> float | None:
    """Time left at the average rate so far, for a live run with a step budget (none while
    it is paused: it is not on its way to anywhere)."""
    elapsed = elapsed_seconds(run, now)
    if run.status not in LIVE or run.status == "paused":
        return None
    if not run.max_steps or not run.step or not elapsed:
        return None
    return max(0.0, (run.max_steps - run.step) * elapsed / run.step)


def eta_text(run: RunSummary, now: float | None = None) -> str:
    return duration_text(eta_seconds(run, now))
