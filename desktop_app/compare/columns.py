"""The runs table's comparing columns: config keys, results, tags and note. Qt-free.

:class:`CompareColumns` decides which columns the table adds after its own (the config keys
that differ between the listed runs, unless hidden, plus any the user added; the last and best
value of the chosen metrics; the tags) and what each cell holds. It keeps each run's flattened
config (flattened again only when the config changed) and the results read off the GUI thread
(:func:`~desktop_app.compare.results.read_results`), and knows which runs need reading again.
The user's choices are a :class:`ComparePrefs`, saved by the app (``settings/table_prefs.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from desktop_app.compare.config_diff import Scalar, all_keys, differing_keys, flatten, value_text
from desktop_app.compare.results import (
    Direction,
    RunResults,
    best_direction,
    final_value,
    number_text,
)
from desktop_app.runs_model import elapsed_seconds
from trainer.annotations import Annotations
from trainer.runs import RunSummary

ColumnKind = Literal["config", "last", "best", "final", "tags", "note"]
RESULT_KINDS: tuple[ColumnKind, ...] = ("last", "best", "final")
#: Result columns shown for a chosen metric unless the user says otherwise.
DEFAULT_RESULTS: tuple[ColumnKind, ...] = ("last", "best")
#: Metrics compared when the user chose none: the first two of these that some run has.
PREFERRED_METRICS = ("val/loss", "eval/loss", "val/acc", "val/accuracy", "eval/accuracy",
                     "test/loss", "train/loss", "loss")  # fmt: skip
AUTO_METRICS = 2


@dataclass(frozen=True)
class Column:
    """One comparing column: a config key, a metric's result, the tags or the note."""

    kind: ColumnKind
    key: str = ""

    @property
    def id(self) -> str:
        """Its name in the preferences: ``config:lr``, ``best:val/loss``, ``tags``."""
        return f"{self.kind}:{self.key}" if self.key else self.kind

    @classmethod
    def from_id(cls, text: str) -> Column | None:
        kind, _, key = text.partition(":")
        if kind in ("tags", "note") and not key:
            return cls(kind)  # type: ignore[arg-type]
        if kind in ("config", *RESULT_KINDS) and key:
            return cls(kind, key)
        return None

    @property
    def numeric(self) -> bool:
        return self.kind in RESULT_KINDS


@dataclass(frozen=True)
class ComparePrefs:
    """What the user chose: the metrics to compare (none: automatic), best-low or best-high
    per metric where the name's guess was wrong, columns added and columns hidden (by id)."""

    metrics: tuple[str, ...] = ()
    directions: dict[str, Direction] = field(default_factory=dict)
    shown: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()


class CompareColumns:
    """The comparing columns of a runs listing, and their cells."""

    def __init__(self, prefs: ComparePrefs | None = None) -> None:
        self.prefs = prefs or ComparePrefs()
        self.columns: list[Column] = []
        self._runs: list[RunSummary] = []
        self._flat: dict[str, tuple[dict[str, Any], dict[str, Scalar]]] = {}
        self._results: dict[str, RunResults] = {}
        #: Annotations written here that no read has seen in the run folder yet.
        self._written: dict[str, Annotations] = {}
        self._read_for: dict[str, tuple[tuple[str, ...], RunSummary]] = {}
        self._differing: list[str] = []
        self._keys: list[str] = []
        self._metric_keys: list[str] = []
        self._aliases: dict[str, str] = {}  # a config key's last part -> the key, if unique
        # Kept so that a live run's new step costs its own row, not a pass over every run:
        self._pos: dict[str, int] = {}  # path -> its place in _runs
        self._key_counts: Counter[str] = Counter()  # metric key -> runs that have it
        self._stale: set[str] = set()  # see stale()

    # ------------------------------------------------------------------ the listing
    def set_runs(self, runs: Sequence[RunSummary]) -> bool:
        """Take the listing; True if the columns changed."""
        self._runs = list(runs)
        self._pos = {r.path: n for n, r in enumerate(self._runs)}
        paths = self._pos.keys()
        configs_changed = paths != self._flat.keys()
        for path in [p for p in self._flat if p not in paths]:
            del self._flat[path]
        for run in runs:
            cached = self._flat.get(run.path)
            if cached is None or cached[0] != run.config:
                self._flat[run.path] = (run.config, flatten(run.config))
                configs_changed = True
        for path in [p for p in self._results if p not in paths]:
            del self._results[path]
            self._read_for.pop(path, None)
        self._key_counts = Counter(k for r in runs for k in r.latest)
        if configs_changed:
            flats = [self._flat[r.path][1] for r in runs if r.status != "unreadable"]
            self._differing = differing_keys(flats)
            self._keys = all_keys(flats)
            leaves: dict[str, list[str]] = {}
            for key in self._keys:
                leaves.setdefault(key.rsplit(".", 1)[-1], []).append(key)
            self._aliases = {leaf: keys[0] for leaf, keys in leaves.items()
                             if len(keys) == 1 and leaf != keys[0]}  # fmt: skip
        self._metric_keys = sorted(self._key_counts)
        self._restale()
        return self._update_columns()

    def update_runs(self, changed: Sequence[RunSummary]) -> bool:
        """Take rows changed in place (the same runs in the same order, a live run's new step
        or status); True if the columns changed. Costs the changed rows, not the listing."""
        if any(run.path not in self._pos for run in changed):
            raise ValueError("update_runs takes listed runs only; use set_runs")
        if any(self._flat[run.path][0] != run.config for run in changed):
            runs = list(self._runs)
            for run in changed:
                runs[self._pos[run.path]] = run
            return self.set_runs(runs)  # a config changed: which keys differ, again
        metrics = self.metrics()
        for run in changed:
            place = self._pos[run.path]
            old = self._runs[place]
            if old.latest.keys() != run.latest.keys():
                self._key_counts.subtract(old.latest.keys())
                self._key_counts.update(run.latest.keys())
                self._key_counts = +self._key_counts  # drop keys no run has any more
            self._runs[place] = run
        self._metric_keys = sorted(self._key_counts)
        if self.metrics() != metrics:
            self._restale()
        else:
            for run in changed:
                self._check_stale(run, metrics)
        return self._update_columns()

    def set_prefs(self, prefs: ComparePrefs) -> bool:
        """Take new preferences; True if the columns changed."""
        self.prefs = prefs
        self._restale()
        return self._update_columns()

    def _update_columns(self) -> bool:
        hidden = set(self.prefs.hidden)
        wanted = [Column("config", k) for k in self._differing]
        wanted += [c for c in map(Column.from_id, self.prefs.shown) if c is not None]
        for metric in self.metrics():
            wanted += [Column(kind, metric) for kind in RESULT_KINDS]
        wanted += [Column("tags"), Column("note")]
        columns: list[Column] = []
        for column in wanted:
            if column in columns:
                continue
            default_off = column.kind == "note" or column.kind == "final"
            if column.id in hidden or (default_off and column.id not in self.prefs.shown):
                continue
            columns.append(column)
        # Config columns first, in key order; then results by metric; then tags and note.
        order = {"config": 0, "last": 1, "best": 1, "final": 1, "tags": 2, "note": 3}
        metric_pos = {m: n for n, m in enumerate(self.metrics())}
        columns.sort(key=lambda c: (order[c.kind], c.key if c.kind == "config" else "",
                                    metric_pos.get(c.key, 0), RESULT_KINDS.index(c.kind)
                                    if c.kind in RESULT_KINDS else 0))  # fmt: skip
        changed = columns != self.columns
        self.columns = columns
        return changed

    # ------------------------------------------------------------------ what is known
    @property
    def config_keys(self) -> list[str]:
        """Every flattened config key of the listed runs."""
        return list(self._keys)

    @property
    def differing(self) -> list[str]:
        """The config keys whose values differ between the listed runs."""
        return list(self._differing)

    @property
    def metric_keys(self) -> list[str]:
        """Every metric key some listed run has logged."""
        return list(self._metric_keys)

    def metrics(self) -> tuple[str, ...]:
        """The metrics compared: the user's, else up to two likely ones the runs have."""
        if self.prefs.metrics:
            return self.prefs.metrics
        have = set(self._metric_keys)
        found = [m for m in PREFERRED_METRICS if m in have]
        if not found:
            found = [m for m in self._metric_keys if "loss" in m.lower()]
        return tuple(found[:AUTO_METRICS])

    def direction(self, metric: str) -> Direction:
        return self.prefs.directions.get(metric) or best_direction(metric)

    def config(self, run: RunSummary) -> dict[str, Scalar]:
        cached = self._flat.get(run.path)
        return cached[1] if cached else flatten(run.config)

    def annotations(self, path: str) -> Annotations:
        results = self._results.get(path)
        return results.annotations if results else Annotations()

    # ------------------------------------------------------------------ results
    def stale(self) -> list[str]:
        """Runs whose results must be read (new, changed since their last read, or read for
        other metrics), newest first."""
        if not self._stale:
            return []
        return [r.path for r in self._runs if r.path in self._stale]

    def _restale(self) -> None:
        self._stale.clear()
        metrics = self.metrics()
        for run in self._runs:
            self._check_stale(run, metrics)

    def _check_stale(self, run: RunSummary, metrics: tuple[str, ...]) -> None:
        if run.status != "unreadable" and self._read_for.get(run.path) != (metrics, run):
            self._stale.add(run.path)
        else:
            self._stale.discard(run.path)

    def mark_read(self, path: str) -> RunSummary | None:
        """Note that ``path``'s results are being read for its current summary; returns that
        summary (None: not listed)."""
        place = self._pos.get(path)
        if place is None:
            return None
        run = self._runs[place]
        self._read_for[path] = (self.metrics(), run)
        self._stale.discard(path)
        return run

    def set_results(self, path: str, results: RunResults) -> bool:
        """Take ``path``'s results as read; True if they differ from those shown."""
        written = self._written.get(path)
        if written is not None:
            if results.annotations == written:
                del self._written[path]  # the read saw the file as written
            else:  # a read that started before the write: its annotations are old
                results = replace(results, annotations=written)
        changed = self._results.get(path) != results
        self._results[path] = results
        return changed

    def set_annotations(self, path: str, annotations: Annotations) -> None:
        """Show annotations just written (before the next read brings them back); a read
        already in flight does not put the old ones back."""
        old = self._results.get(path, RunResults({}, Annotations()))
        self._results[path] = replace(old, annotations=annotations)
        self._written[path] = annotations

    # ------------------------------------------------------------------ cells
    def value(self, run: RunSummary, column: Column) -> Any:
        """The cell's value: a config :data:`Scalar`, a float, a list of tags or the note."""
        if column.kind == "config":
            return self.config(run).get(column.key)
        if column.kind == "tags":
            return list(self.annotations(run.path).tags)
        if column.kind == "note":
            return self.annotations(run.path).note
        last = run.latest.get(column.key)
        if column.kind == "last":
            return last
        if column.kind == "final":
            return final_value(run.status, last)
        results = self._results.get(run.path)
        found = results.keys.get(column.key) if results else None
        return found.best(self.direction(column.key)) if found else None

    def text(self, run: RunSummary, column: Column) -> str:
        value = self.value(run, column)
        if column.kind == "config":
            return value_text(value)
        if column.kind == "tags":
            return ", ".join(value)
        if column.kind == "note":
            return " ".join(str(value).split())
        return number_text(value)

    def sort_key(self, run: RunSummary, column: Column) -> tuple[int, float, str]:
        """Numbers before text, missing values last."""
        value = self.value(run, column)
        if value is None or value == [] or value == "":
            return (2, 0.0, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, self.text(run, column).lower())

    def title(self, column: Column) -> str:
        if column.kind == "config":
            return column.key
        if column.kind in ("tags", "note"):
            return column.kind.capitalize()
        if column.kind == "best":
            return f"{column.key} best ({self.direction(column.key)})"
        return f"{column.key} {column.kind}"

    def fields(self, run: RunSummary) -> dict[str, Any]:
        """What the filter sees of ``run``: its columns, config keys and results by name."""
        annotations = self.annotations(run.path)
        out: dict[str, Any] = {
            "name": run.name, "status": run.status, "entry": run.entry.rsplit("/", 1)[-1],
            "step": run.step, "attempt": run.attempt, "elapsed": elapsed_seconds(run),
            "reason": run.exit_reason or "", "tags": list(annotations.tags),
            "note": annotations.note, "id": run.id,
        }  # fmt: skip
        config = self.config(run)
        for key, value in config.items():
            out.setdefault(key, value)
        for leaf, key in self._aliases.items():  # ``lr`` for ``optim.lr``, before a metric
            out.setdefault(leaf, config.get(key))
        results = self._results.get(run.path)
        for key, last in run.latest.items():
            out.setdefault(key, last)
            out[f"{key}.last"] = last
            out[f"{key}.final"] = final_value(run.status, last)
        if results:
            for key, found in results.keys.items():
                out[f"{key}.best"] = found.best(self.direction(key))
                out[f"{key}.min"], out[f"{key}.max"] = found.low, found.high
        return out

    def field_names(self) -> Iterable[str]:
        """Every field name the filter may meet in some run (for its "unknown field" check)."""
        yield from ("name", "status", "entry", "step", "attempt", "elapsed", "reason", "tags",
                    "note", "id")  # fmt: skip
        yield from self._keys
        yield from self._aliases
        for key in self._metric_keys:
            yield key
            for suffix in ("last", "final", "best", "min", "max"):
                yield f"{key}.{suffix}"
