"""A run's results for the runs table: the last, best and final value of chosen metrics. Qt-free.

Cheap at any run size: the last value of every key is in the runs listing already
(:attr:`~trainer.runs.RunSummary.latest`), and a key's lowest and highest values come from the
journal's coarsest summary rows (:meth:`~trainer.journal.reader.JournalReader.extent`: a few
rows, never the points). "Best" is the lowest or the highest value by the metric's name (a
loss or an error is best low, an accuracy high; :func:`best_direction`), which the user may
switch. "Final" is the last value of a run that has ended (none while it runs).

:class:`ResultsCache` keeps an ended run's results across starts, so that a start over a
thousand finished runs opens none of their journals again for the result columns.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from desktop_app.runs_model import file_mark
from trainer.annotations import ANNOTATIONS_NAME, Annotations, read_annotations
from trainer.errors import JournalError
from trainer.journal.reader import JournalReader
from trainer.journal.status import ALIVE
from trainer.paths import write_private_text
from trainer.runs import RunSummary

Direction = Literal["min", "max"]
#: Words in a metric's name that make a high value the best one; anything else is best low.
_HIGHER = re.compile(
    r"acc|accuracy|f1|precision|recall|auc|bleu|rouge|score|reward|return|iou|map\b|top\d|"
    r"psnr|ssim|r2\b|correct|hit|win|success"
)
#: Words that win over the above (``err``, ``loss``: "top1_err" is an error).
_LOWER = re.compile(r"loss|err|error|perplexity|ppl|mse|mae|rmse|nll|wer|cer|regret|time|lat")


def best_direction(key: str) -> Direction:
    """Whether the best value of metric ``key`` is its lowest or its highest, by its name."""
    leaf = key.lower().rsplit("/", 1)[-1]
    if _LOWER.search(leaf):
        return "min"
    return "max" if _HIGHER.search(leaf) else "min"


@dataclass(frozen=True)
class KeyResult:
    """What the journal's summaries say of one key: its lowest and highest finite values."""

    low: float
    high: float

    def best(self, direction: Direction) -> float:
        return self.low if direction == "min" else self.high


@dataclass(frozen=True)
class RunResults:
    """A run's summary results for the chosen keys and its annotations, as read together."""

    keys: dict[str, KeyResult]
    annotations: Annotations


def read_results(folder: Path, keys: tuple[str, ...]) -> RunResults:
    """The results of ``keys`` in the run at ``folder`` and its annotations (blocking: call
    it off the GUI thread). A key the run lacks is left out; an unreadable journal gives none."""
    found: dict[str, KeyResult] = {}
    if keys:
        try:
            with JournalReader(folder) as reader:
                for key in keys:
                    extent = reader.extent(key)
                    if extent is not None and math.isfinite(extent.y_min):
                        found[key] = KeyResult(extent.y_min, extent.y_max)
        except JournalError:
            found = {}
    return RunResults(found, read_annotations(folder))


def final_value(status: str, last: float | None) -> float | None:
    """The last value once the run has ended; None while it is alive."""
    return None if status in ALIVE else last


def number_text(value: float | None) -> str:
    """A result as the table shows it (4 significant digits; nan and inf as such)."""
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


#: Statuses whose journal stays as it is until someone writes it again (their results can be
#: kept across starts); a live run's results are read again each time its row changes.
_SETTLED = frozenset({"finished", "stopped", "failed", "crashed"})
#: Bumped whenever an entry changes meaning: an old cache is then ignored.
_CACHE_VERSION = 1


def _annotations_stamp(folder: Path) -> list[int] | None:
    """The annotations file as last seen (inode, size, mtime ns); None when there is none."""
    try:
        st = os.lstat(folder / ANNOTATIONS_NAME)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


class ResultsCache:
    """Runs' results kept between reads, and ended runs' between starts (a JSON file). Use it
    from one thread (the journal worker).

    Only the metrics a run has logged are read (its summary's ``latest``): a run with none
    of them costs its annotations, not a journal open. An entry holds while those metrics,
    the journal's files (:func:`file_mark`; not looked at when no metric is read) and the
    annotations file (inode, size, mtime) are those it was read with: a lookup costs a few
    ``stat`` calls where a read opens the journal (1-3 ms). :meth:`save` writes the ended
    runs' entries looked up since the last save (so runs gone from the listing are dropped).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        #: path -> (what the results were read from, the results, whether to save them)
        self._entries: dict[str, tuple[list[Any], RunResults, bool]] | None = None
        self._seen: set[str] = set()
        #: Entries to save changed since the last save (read from the GUI thread too).
        self.dirty = False
        #: Journals opened for results so far (for tests and the benchmark).
        self.reads = 0

    def results(self, folder: Path, keys: tuple[str, ...], run: RunSummary) -> RunResults:
        """The results of ``keys`` in the run at ``folder`` (``run``: its summary): those kept
        if nothing they came from changed, else read."""
        if self._entries is None:
            self._entries = self._load()
        path = str(folder)
        self._seen.add(path)
        keys = tuple(k for k in keys if k in run.latest)
        mark = file_mark(folder) if keys else None
        stamp = [list(keys), list(mark) if mark else None, _annotations_stamp(folder)]
        kept = self._entries.get(path)
        if kept is not None and kept[0] == stamp and (mark is not None or not keys):
            return kept[1]
        if keys:
            self.reads += 1
            found = read_results(folder, keys)
        else:
            found = RunResults({}, read_annotations(folder))
        settled = run.status in _SETTLED
        self._entries[path] = (stamp, found, settled)
        self.dirty = self.dirty or settled or (kept is not None and kept[2])
        return found

    def save(self) -> None:
        """Write the entries looked up since the last save, if any changed (errors are
        ignored: it is a cache)."""
        if not self.dirty or self.path is None or self._entries is None:
            return
        self.dirty = False
        runs = {
            path: {
                "stamp": stamp,
                "keys": {k: [r.low, r.high] for k, r in found.keys.items()},
                "tags": list(found.annotations.tags),
                "note": found.annotations.note,
            }
            for path, (stamp, found, keep) in self._entries.items()
            if keep and path in self._seen
        }
        self._seen.clear()
        with contextlib.suppress(OSError):  # a cache: lost, it is rebuilt
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": _CACHE_VERSION, "runs": runs})
            write_private_text(self.path, text, durable=False)

    def _load(self) -> dict[str, tuple[list[Any], RunResults, bool]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text("utf-8"))
            if data.get("version") != _CACHE_VERSION:
                return {}
            out: dict[str, tuple[list[Any], RunResults, bool]] = {}
            for path, entry in data["runs"].items():
                keys = {k: KeyResult(float(lo), float(hi)) for k, (lo, hi) in entry["keys"].items()}
                notes = Annotations(tuple(str(t) for t in entry["tags"]), str(entry["note"]))
                out[str(path)] = (list(entry["stamp"]), RunResults(keys, notes), True)
            return out
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}
