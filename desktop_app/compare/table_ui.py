"""The runs table's comparing side: the filter, the header and row menus, results read off the
GUI thread, the tags-and-note dialog. Thin Qt over :mod:`desktop_app.compare.columns`.

:class:`RunsProxy` sorts any column (numbers as numbers, missing values last) and filters rows
with :mod:`desktop_app.compare.filter`. :class:`CompareTable` wires a table view to it: the
header's context menu adds or hides config columns, picks the compared metrics and whether
their best is the lowest or the highest (saved in ``table.json``); a run's context menu edits
its tags and note (``annotations.json`` in its folder). Results are read on the journal worker
in chunks, only for runs whose summary changed since their last read; an ended run's are kept
across starts (:class:`~desktop_app.compare.results.ResultsCache`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.compare.columns import RESULT_KINDS, Column, ComparePrefs
from desktop_app.compare.filter import FilterError, RunFilter, parse
from desktop_app.compare.results import ResultsCache, RunResults
from desktop_app.runs_table import COLUMNS, SORT_ROLE, STATUS_COLUMN, RunsTableModel
from desktop_app.settings.table_prefs import save_prefs
from trainer.annotations import (
    AnnotationError,
    Annotations,
    parse_tags,
    write_annotations,
)
from trainer.runs import RunSummary

log = logging.getLogger(__name__)

#: Runs whose results one job on the journal worker reads (a chart read waits at most that).
RESULTS_CHUNK = 32
RESULTS_INTERVAL_MS = 1000
#: Where the comparing columns start on screen: after Name and Status.
FIRST_COMPARE_VISUAL = STATUS_COLUMN + 1
_RESULTS_TAG = "compare-results"
_CACHE_TAG = "compare-results-cache"
_Index = QModelIndex | QPersistentModelIndex


class RunsProxy(QSortFilterProxyModel):
    """Sorts by :data:`SORT_ROLE` with Python's ordering and filters with a :class:`RunFilter`."""

    def __init__(self, source: RunsTableModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._filter = RunFilter()
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_filter_text(self, text: str) -> str:
        """Filter by ``text``; returns a one-line problem ("" when it is understood). Bad
        text keeps the previous filter."""
        try:
            parsed = parse(text)
        except FilterError as exc:
            return str(exc)
        self.beginFilterChange()
        self._filter = parsed
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        return parsed.unknown(self._source.compare.field_names())

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._filter.terms:
            return True
        run = self._source.run_at(source_row)
        return run is not None and self._filter.matches(self._source.compare.fields(run))

    def lessThan(self, left: _Index, right: _Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)


class AnnotationDialog(QDialog):
    """Tags and a note for one run; emits :attr:`saved` with the new annotations."""

    saved = Signal(object)

    def __init__(self, run: RunSummary, current: Annotations, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Tags and note — {run.name}")
        self.tags = QLineEdit(" ".join(current.tags))
        self.tags.setPlaceholderText("baseline, lr-sweep (commas or spaces)")
        self.note = QPlainTextEdit(current.note)
        self.note.setPlaceholderText("What this run tried, what came of it…")
        self.error = QLabel()
        self.error.setStyleSheet("color: #dc2626;")
        self.error.hide()
        form = QFormLayout()
        form.addRow("Tags", self.tags)
        form.addRow("Note", self.note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(460, 260)

    def _save(self) -> None:
        try:
            tags = parse_tags(self.tags.text())
            annotations = Annotations(tags, self.note.toPlainText().strip())
        except AnnotationError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.saved.emit(annotations)
        self.accept()


class CompareTable(QObject):
    """Wires the runs table's comparing columns: menus, filter, results, annotations."""

    #: A one-line message for the status bar, and an error for the window.
    message = Signal(str)
    error = Signal(str)

    def __init__(
        self,
        table: QTableView,
        model: RunsTableModel,
        proxy: RunsProxy,
        io: BackgroundIO,
        *,
        save: Callable[[ComparePrefs], object] = save_prefs,
        ready: Callable[[], bool] = lambda: True,
        cache: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``ready``: False while results must wait (the window's first listing: reading
        every run's results beside it would slow the listing down). ``cache``: the file that
        keeps ended runs' results between starts (None: none)."""
        super().__init__(parent)
        self._ready = ready
        #: Used on the journal worker only (its reads and its saves).
        self.cache = ResultsCache(cache)
        self.table = table
        self.model = model
        self.proxy = proxy
        self.io = io
        self._save = save
        self.dialog: AnnotationDialog | None = None
        header = table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._row_menu)
        self._timer = QTimer(self)
        self._timer.setInterval(RESULTS_INTERVAL_MS)
        self._timer.timeout.connect(self.read_results)
        self._timer.start()
        model.modelReset.connect(lambda: QTimer.singleShot(0, self.read_results))
        model.modelReset.connect(self.arrange_columns)
        self.arrange_columns()
        model.rowsInserted.connect(lambda *_: QTimer.singleShot(0, self.read_results))

    def stop(self) -> None:
        self._timer.stop()

    def arrange_columns(self) -> None:
        """Show the comparing columns right after Name and Status (the table's own columns
        follow), so that a sweep's differences are seen without scrolling."""
        header = self.table.horizontalHeader()
        first = len(COLUMNS)
        for n in range(self.model.columnCount() - first):
            header.moveSection(header.visualIndex(first + n), FIRST_COMPARE_VISUAL + n)

    # ------------------------------------------------------------------ results
    def read_results(self) -> bool:
        """Read on the journal worker the results of up to :data:`RESULTS_CHUNK` runs whose
        summary changed since their last read; False if nothing was submitted."""
        if self.io.busy(_RESULTS_TAG) or not self._ready():
            return False
        compare = self.model.compare
        stale = compare.stale()[:RESULTS_CHUNK]
        if not stale:
            return False
        metrics = compare.metrics()
        runs = [(path, run) for path, run in ((p, compare.mark_read(p)) for p in stale) if run]
        cache = self.cache

        def job() -> dict[str, RunResults]:
            return {path: cache.results(Path(path), metrics, run) for path, run in runs}

        def done(found: dict[str, RunResults]) -> None:
            self.model.set_results(found)
            if compare.stale():
                QTimer.singleShot(0, self.read_results)
            elif cache.dirty:  # every listed run looked at: keep what was read for next time
                self.io.submit(_CACHE_TAG, cache.save, lambda _: None,
                               lambda e: log.warning("results cache: %s", e))  # fmt: skip

        return self.io.submit(_RESULTS_TAG, job, done, lambda e: log.warning("results: %s", e))

    # ------------------------------------------------------------------ preferences
    def set_prefs(self, prefs: ComparePrefs) -> None:
        """Apply and save the column choices."""
        self.model.set_prefs(prefs)
        try:
            self._save(prefs)
        except OSError as exc:
            self.error.emit(f"cannot save the table's columns: {exc}")
        self.read_results()

    def toggle_config(self, key: str, on: bool) -> None:
        """Show (``on``) or hide the config column ``key``."""
        prefs = self.model.compare.prefs
        cid = Column("config", key).id
        shown = [c for c in prefs.shown if c != cid]
        hidden = [c for c in prefs.hidden if c != cid]
        if on and key not in self.model.compare.differing:
            shown.append(cid)
        if not on and key in self.model.compare.differing:
            hidden.append(cid)
        self.set_prefs(replace(prefs, shown=tuple(shown), hidden=tuple(hidden)))

    def toggle_column(self, column: Column, on: bool) -> None:
        """Show or hide a result, tags or note column."""
        prefs = self.model.compare.prefs
        shown = [c for c in prefs.shown if c != column.id]
        hidden = [c for c in prefs.hidden if c != column.id]
        (shown if on else hidden).append(column.id)
        self.set_prefs(replace(prefs, shown=tuple(shown), hidden=tuple(hidden)))

    def toggle_metric(self, key: str, on: bool) -> None:
        """Compare metric ``key`` (its result columns) or stop comparing it."""
        compare = self.model.compare
        metrics = [m for m in compare.metrics() if m != key] + ([key] if on else [])
        self.set_prefs(replace(compare.prefs, metrics=tuple(metrics)))

    def set_direction(self, key: str, direction: str) -> None:
        """Make the best value of ``key`` its lowest ("min") or highest ("max")."""
        prefs = self.model.compare.prefs
        directions = {**prefs.directions, key: direction}
        self.set_prefs(replace(prefs, directions=directions))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ menus
    def header_menu(self, section: int) -> QMenu:
        """The header's context menu for the column at ``section`` (logical index)."""
        compare = self.model.compare
        menu = QMenu(self.table)
        column = self.model.compare_column(section)
        if column is not None:
            title = compare.title(column)
            hide = menu.addAction(f"Hide “{title}”")
            if column.kind == "config":
                hide.triggered.connect(partial(self.toggle_config, column.key, False))
            else:
                hide.triggered.connect(partial(self.toggle_column, column, False))
            if column.kind == "best":
                for direction, text in (("min", "lowest"), ("max", "highest")):
                    action = menu.addAction(f"Best is the {text}")
                    action.setCheckable(True)
                    action.setChecked(compare.direction(column.key) == direction)
                    action.triggered.connect(partial(self.set_direction, column.key, direction))
            menu.addSeparator()
        shown = set(self.model.compare.columns)
        configs = menu.addMenu("Config columns")
        for key in compare.config_keys:
            self._check(configs, key, Column("config", key) in shown,
                        partial(self.toggle_config, key))  # fmt: skip
        if not compare.config_keys:
            configs.addAction("(no config keys)").setEnabled(False)
        metrics = menu.addMenu("Compared metrics")
        chosen = compare.metrics()
        for key in compare.metric_keys:
            self._check(metrics, key, key in chosen, partial(self.toggle_metric, key))
        if not compare.metric_keys:
            metrics.addAction("(no metrics yet)").setEnabled(False)
        results = menu.addMenu("Result columns")
        for key in chosen:
            for kind in RESULT_KINDS:
                each = Column(kind, key)
                self._check(results, compare.title(each), each in shown,
                            partial(self.toggle_column, each))  # fmt: skip
        for kind in ("tags", "note"):
            each = Column(kind)
            self._check(menu, compare.title(each), each in shown,
                        partial(self.toggle_column, each))  # fmt: skip
        menu.addSeparator()
        menu.addAction("Default columns").triggered.connect(lambda: self.set_prefs(ComparePrefs()))
        return menu

    @staticmethod
    def _check(menu: QMenu, text: str, checked: bool, toggled: Callable[[bool], None]) -> None:
        action = QAction(text, menu)
        action.setCheckable(True)
        action.setChecked(checked)
        action.toggled.connect(toggled)
        menu.addAction(action)

    def _header_menu(self, pos: QPoint) -> None:
        header = self.table.horizontalHeader()
        self.header_menu(header.logicalIndexAt(pos)).popup(header.mapToGlobal(pos))

    def _row_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        run = self._run_at(index)
        if run is None:
            return
        menu = QMenu(self.table)
        menu.addAction("Tags and note…").triggered.connect(lambda: self.edit_annotations(run))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _run_at(self, index: QModelIndex) -> RunSummary | None:
        if not index.isValid():
            return None
        return self.model.run_at(self.proxy.mapToSource(index).row())

    # ------------------------------------------------------------------ annotations
    def edit_annotations(self, run: RunSummary) -> AnnotationDialog:
        """Open the tags-and-note dialog of ``run`` (non-modal)."""
        if self.dialog is not None:
            self.dialog.close()
        current = self.model.compare.annotations(run.path)
        self.dialog = AnnotationDialog(run, current, self.table.window())
        self.dialog.saved.connect(partial(self.save_annotations, run.path))
        self.dialog.show()
        return self.dialog

    def save_annotations(self, path: str, annotations: Annotations) -> None:
        """Write ``annotations`` to the run folder at ``path`` (on the journal worker)."""
        self.model.compare.set_annotations(path, annotations)
        self.model.repaint(path)

        def failed(exc: BaseException) -> None:
            self.error.emit(f"cannot save the tags and note of {Path(path).name}: {exc}")

        def done(_written: Any) -> None:
            self.message.emit(f"saved the tags and note of {Path(path).name}")

        self.io.submit(
            f"annotate:{path}", lambda: write_annotations(Path(path), annotations), done, failed
        )
