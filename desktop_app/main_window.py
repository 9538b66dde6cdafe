"""The main window: the runs table above the selected runs' charts; the System and Health
docks beside, the Queue dock below them; File, Run, View and Help menus.

A thin widget.

The window reads the runs directory on a worker thread once a second (:class:`BackgroundIO`);
the Qt-free :class:`RunsModel` decides whether anything changed. A second worker
(``traindesk-tasks``) does the slow jobs that hold no journal reader: the lease store (the
queue, the GPU picker's holders), the GPU inventory, the app's process figures, diagnostics.

Why over 400 lines: the window wires every dock, menu and worker together; each part's state and
logic are in their own Qt-free model or widget module, and what is left here is the wiring and
the actions that touch several parts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import (
    QFileSystemWatcher,
    QItemSelection,
    QItemSelectionModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.charts.panel import ChartsPanel
from desktop_app.compare.scatter_view import ConfigView
from desktop_app.compare.table_ui import CompareTable, RunsProxy
from desktop_app.follow.hub import FollowHub
from desktop_app.gpu_queue.view import QueueView
from desktop_app.health.model import folders_to_watch
from desktop_app.health.panel import HealthPanel
from desktop_app.help_menu import HelpActions
from desktop_app.runs_ctl.actions import RunController
from desktop_app.runs_ctl.close_prompt import CloseChoice, close_with_children
from desktop_app.runs_ctl.console import LogConsole
from desktop_app.runs_ctl.controls import Action
from desktop_app.runs_ctl.gpu_model import read_gpu_inventory
from desktop_app.runs_ctl.import_dialog import ImportDialog, ImportRequest
from desktop_app.runs_ctl.launch_failure import LaunchFailurePanel
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_ctl.supervisor import Supervisor
from desktop_app.runs_model import RunsModel, ScanResult, results_cache_path, summary_cache_path
from desktop_app.runs_split import RunsSplit, compact_rows
from desktop_app.runs_table import RowNote, RunsTableModel
from desktop_app.settings.dialog import SettingsDialog, changed_keys
from desktop_app.settings.model import AppSettings
from desktop_app.settings.table_prefs import load_prefs
from desktop_app.system.panel import SystemPanel
from trainer.errors import TrainDeskError
from trainer.imports.to_run import import_run
from trainer.journal.follower import Delta
from trainer.journal.reader import RunInfo
from trainer.journal.status import ALIVE
from trainer.paths import RunPaths
from trainer.resources.gpus import GpuBackend
from trainer.runs import PAUSE_EVENTS, RunSummary, pause_time, summary_from
from trainer.settings import LISTED_FILE

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 1000
#: The runs table's first height and the System dock's first width, in pixels: at 1280x800
#: the charts keep room for two rows of three.
RUNS_TABLE_HEIGHT = 180
SYSTEM_DOCK_WIDTH = 320
#: Rows measured when the runs table's columns are sized to their contents (once).
COLUMN_SIZE_ROWS = 100
#: A file the window writes the wall time to once the first listing is complete (benchmarks).
LISTED_ENV = LISTED_FILE.name
_REFRESH_TAG = "runs-refresh"
#: Seconds live children get to checkpoint and stop when the app closes, before SIGTERM.
STOP_TIMEOUT_S = 30.0
_SUPERVISION_KEYS = frozenset({"max_restarts", "restart_delay_s", "heartbeat_timeout_s",
                               "hang_grace_s"})  # fmt: skip
#: The docks, by the name ``traindesk --show-dock`` takes.
DOCKS = ("system", "health", "queue")


_HEALTH_TEXT = {
    "unresponsive": "run {name} is unresponsive: no heartbeat; it is killed and restarted if "
    "it stays so",
    "stalled": "run {name} is stalled: it beats, but no new step for much longer than usual",
}


class MainWindow(QMainWindow):
    """Lists the runs of ``runs_dir`` and charts the selected one."""

    #: Emitted once, after the window has shut down (timers stopped, readers closed).
    closed = Signal()
    #: Emitted once, when the first listing of the runs directory is complete.
    listed = Signal()
    #: Emitted with the new AppSettings when the user accepts the settings dialog.
    settingsChanged = Signal(object)

    def __init__(
        self,
        runs_dir: Path,
        parent: QWidget | None = None,
        *,
        settings: AppSettings | None = None,
        gpu_backend: GpuBackend | None = None,
        create_runs_dir: bool = True,
    ) -> None:
        """``create_runs_dir``: create ``runs_dir`` if it is missing (the default folder on a
        first start); False for one the user named (``--runs-dir``): a typo is said, not made."""
        super().__init__(parent)
        self.setWindowTitle(f"TrainDesk — {runs_dir}")
        self.resize(1280, 800)
        self._shut_down = False
        self._selected: str | None = None  # the primary (first) selected run
        self._selected_paths: list[str] = []
        self.settings = settings or AppSettings()
        self._runs_dir_error: str | None = None
        if not create_runs_dir and not runs_dir.is_dir():
            self._runs_dir_error = (
                f"the runs folder {runs_dir} does not exist: check --runs-dir for a typo (a run "
                "launched from here creates it)"
            )
        try:
            if create_runs_dir:
                runs_dir.mkdir(parents=True, exist_ok=True)  # a first start: nothing there yet
        except OSError as exc:
            self._runs_dir_error = f"cannot create the runs folder {runs_dir}: {exc.strerror}"
        self.io = BackgroundIO(self)
        self.tasks = BackgroundIO(self, name="traindesk-tasks", workers=2)
        self.runs = RunsModel(runs_dir, cache=summary_cache_path(runs_dir))
        self._columns_sized = False
        self._columns_sized_at = -1  # the rows there were then
        self._listed = False
        # Live runs' rows come from their followers (shared with the health panel), not
        # from reopening their journals on every scan.
        self._row_follows: dict[str, Callable[[], None]] = {}
        self._row_infos: dict[str, RunInfo] = {}
        self._row_latest: dict[str, dict[str, float]] = {}
        self._row_events: dict[str, list[tuple[str, float]]] = {}  # for pause_time

        self.table_model = RunsTableModel(self.runs, self, prefs=load_prefs())
        # Filter and sort through a proxy: the table model keeps the runs model's order.
        self.proxy = RunsProxy(self.table_model, self)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(
            "Filter: words, or lr>1e-3 status:finished name~bert tag:baseline"
        )
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.set_filter)
        #: Why the filter text is not understood (one line beside the box; empty if it is).
        self.filter_problem = QLabel()
        self.filter_problem.setStyleSheet("color: #dc2626; padding: 0 6px;")
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the model's order: newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Several runs may be selected to compare them on the charts.
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        # Sized to the contents once, when the first rows are in (_on_scan), not on every
        # change: ResizeToContents measures every cell of every row each time one changes.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # many comparing columns: scroll, not squeeze
        header.setResizeContentsPrecision(COLUMN_SIZE_ROWS)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table_model.modelReset.connect(self._restore_selection)
        self.table_model.rowsInserted.connect(lambda *_: self._restore_selection())

        self.supervisor = Supervisor(
            runs_dir, self, restart=self.settings.restart_policy(),
            health=self.settings.health_policy(),
        )  # fmt: skip
        self.controller = RunController(
            self.supervisor, self, selected=self.selected_run, io=self.io,
            selected_many=self.selected_runs, read_gpus=read_gpu_inventory, tasks=self.tasks,
        )  # fmt: skip
        self.console = LogConsole(is_piped=self.supervisor.is_running)
        self.supervisor.output.connect(self.console.append)
        self.supervisor.started.connect(self.console.prepare)
        self.supervisor.started.connect(lambda _folder: self.refresh())
        self.supervisor.finished.connect(lambda *_: self.refresh())
        self.supervisor.failed_to_start.connect(
            lambda name, message: self.show_error(f"{name}: {message}")
        )
        self.supervisor.health_changed.connect(self._on_health)
        self.supervisor.restarting.connect(self._on_restarting)
        self.supervisor.ended.connect(self._on_ended)
        self.supervisor.started.connect(lambda folder: self.table_model.set_note(folder, None))
        self.controller.message.connect(self.statusBar().showMessage)
        self.controller.error.connect(self.show_error)
        self.controller.launched.connect(self._on_launched)
        self.controller.deleted.connect(self._on_deleted)
        self._close_confirmed = False
        self._closing: asyncio.Future[None] | None = None
        self._quitting = False

        runs_panel = QWidget()
        runs_layout = QVBoxLayout(runs_panel)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.filter_problem)
        runs_layout.addLayout(filter_row)
        runs_layout.addWidget(self.table)
        self.compare = CompareTable(
            self.table, self.table_model, self.proxy, self.io, ready=lambda: self._listed,
            cache=results_cache_path(runs_dir), parent=self,
        )  # fmt: skip
        self.listed.connect(self.compare.read_results)
        self.compare.message.connect(self.statusBar().showMessage)
        self.compare.error.connect(self.show_error)
        # One follower per open run, shared by the panels; polled on one tick, read on io.
        self.follow = FollowHub(self.io, self)
        self.charts = ChartsPanel(self.io)
        self.charts.use_hub(self.follow)
        self.charts.colour_of = lambda folder: self.table_model.colours.colour(str(folder))
        kind = {"moving": "ma"}.get(self.settings.smoothing_kind, self.settings.smoothing_kind)
        try:
            self.charts.set_smoothing(kind, self.settings.smoothing_value)
        except ValueError as exc:
            log.warning("smoothing setting ignored: %s", exc)
        self.tabs = QTabWidget()
        self.config_view = ConfigView(
            self.table_model.compare, self.listed_runs, self.table_model.colours.colour
        )
        self.config_view.runClicked.connect(self.select_run)
        for signal in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.dataChanged, self.proxy.layoutChanged):  # fmt: skip
            signal.connect(lambda *_: self.config_view.schedule())
        self.tabs.addTab(self.charts, "Charts")
        self.tabs.addTab(self.config_view, "Config → result")
        self.tabs.addTab(self.console, "Console")
        # A launch that failed before its run existed has no row: its cause shows here.
        self.launch_failure = LaunchFailurePanel()
        self.launch_failure.consoleRequested.connect(self._show_failed_console)
        self.supervisor.launch_failed.connect(self._on_launch_failed)
        run_view = QWidget()
        run_layout = QVBoxLayout(run_view)
        run_layout.setContentsMargins(0, 0, 0, 0)
        run_layout.addWidget(self.launch_failure)
        run_layout.addWidget(self.tabs, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(runs_panel)
        splitter.addWidget(run_view)
        # The charts get the height: the table shows a few rows (more by dragging), and
        # growing the window grows the charts only.
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([RUNS_TABLE_HEIGHT, 800 - RUNS_TABLE_HEIGHT])
        self.splitter = splitter
        # The table's rows one line high; the split fits them, or keeps the user's drag.
        compact_rows(self.table)
        self.runs_split = RunsSplit(splitter, self.table, self.proxy.rowCount)
        self.listed.connect(self.runs_split.fit)
        self.setCentralWidget(splitter)

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b91c1c;")
        self.statusBar().showMessage(f"Runs in {runs_dir}")
        self.statusBar().addPermanentWidget(self.error_label)
        if self._runs_dir_error:
            self.show_error(self._runs_dir_error)

        self.system = SystemPanel(
            self.io, gpu_backend, interval_s=self.settings.system_poll_s, hub=self.follow
        )
        system_dock = QDockWidget("System", self)
        system_dock.setObjectName("system-dock")
        system_dock.setWidget(self.system)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, system_dock)

        self.health = HealthPanel(
            self.io,
            self.tasks,
            restarts=self._restart_count,
            drawn=lambda: self.charts.drawn_walls,
            redraw_times=lambda: self.charts.redraw_ms,
            hub=self.follow,
        )
        self.health.set_heartbeat_timeout(self.settings.heartbeat_timeout_s)
        health_dock = QDockWidget("Health", self)
        health_dock.setObjectName("health-dock")
        health_dock.setWidget(self.health)

        self.queue = QueueView(self.tasks)
        self.queue.message.connect(self.statusBar().showMessage)
        self.queue.error.connect(self.show_error)
        self.queue.runActivated.connect(lambda folder: self.open_folder(Path(folder)))
        queue_dock = QDockWidget("Queue", self)
        queue_dock.setObjectName("queue-dock")
        queue_dock.setWidget(self.queue)
        # The queue below System and Health (split first: a tabbed dock cannot be split).
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, queue_dock)
        self.splitDockWidget(system_dock, queue_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(system_dock, health_dock)
        system_dock.raise_()
        queue_dock.hide()  # Run → Queue shows it
        queue_dock.visibilityChanged.connect(self._on_queue_shown)
        self._queue_sized = False
        self.docks = {"system": system_dock, "health": health_dock, "queue": queue_dock}
        self._front_dock = "system"  # raised once the window is up (raise_ before is lost)
        self._front_raised = False
        self.resizeDocks([system_dock], [SYSTEM_DOCK_WIDTH], Qt.Orientation.Horizontal)

        self.help = HelpActions(self, runs_dir, self.tasks)
        self.help.message.connect(self.statusBar().showMessage)
        self.help.error.connect(self.show_error)
        self._settings_dialog: SettingsDialog | None = None
        self.import_dialog: ImportDialog | None = None

        self.setAcceptDrops(True)
        self._build_menus()

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(self.settings.refresh_ms or REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._refresh_timer.timeout.connect(self.table_model.tick)  # restart countdowns
        self._refresh_timer.start()
        # A run folder made or removed changes the runs folder itself: scan at once (one
        # inotify watch, on the runs folder only; the timer's scan catches the rest).
        self._dir_watcher = QFileSystemWatcher(self)
        if runs_dir.is_dir():
            self._dir_watcher.addPath(str(runs_dir))
        self._dir_watcher.directoryChanged.connect(lambda _path: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ menus, open, drop
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open run folder…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._ask_open_folder)
        file_menu.addAction(open_action)
        self.import_action = QAction("&Import…", self)
        self.import_action.setShortcut(QKeySequence("Ctrl+I"))
        self.import_action.setStatusTip(
            "A CSV, a JSON file or a TensorBoard log folder as a new run"
        )
        self.import_action.triggered.connect(self.ask_import)
        file_menu.addAction(self.import_action)
        self.png_menu = file_menu.addMenu("Export chart as &PNG")
        self.png_menu.aboutToShow.connect(self._fill_png_menu)
        settings_action = QAction("&Settings…", self)
        settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(settings_action)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        self.open_action = open_action
        run_menu = self.menuBar().addMenu("&Run")
        toolbar = self.addToolBar("Runs")
        toolbar.setObjectName("runs-toolbar")
        for action, qaction in self.controller.actions.items():
            run_menu.addAction(qaction)
            if action != Action.OPEN_FOLDER:
                toolbar.addAction(qaction)
        run_menu.addSeparator()
        self.queue_action = self.docks["queue"].toggleViewAction()
        self.queue_action.setText("&Queue")
        self.queue_action.setToolTip("Runs waiting for GPUs: reorder or cancel them")
        run_menu.addAction(self.queue_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        for qaction in self.help.actions:
            help_menu.addAction(qaction)

    def _fill_png_menu(self) -> None:
        self.png_menu.clear()
        keys = sorted(self.charts.plots)
        if not keys:
            self.png_menu.addAction("(no charts yet)").setEnabled(False)
            return
        self.png_menu.addAction("All charts…").triggered.connect(lambda: self.ask_export_png(None))
        self.png_menu.addSeparator()
        for key in keys:
            self.png_menu.addAction(f"{key}…").triggered.connect(
                lambda _checked=False, k=key: self.ask_export_png(k)
            )

    def ask_export_png(self, key: str | None) -> QFileDialog:
        """Ask where to save a PNG of one chart (``key``) or of all charts (non-modal)."""
        stem = (key or "charts").replace("/", "_")
        dialog = QFileDialog(self, "Export chart as PNG", f"{stem}.png", "PNG images (*.png)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("png")
        dialog.fileSelected.connect(lambda path: self.export_png(Path(path), key))
        dialog.open()
        return dialog

    def export_png(self, path: Path, key: str | None = None) -> bool:
        """Save a PNG of one chart or all of them; errors are shown, not raised."""
        try:
            saved = self.charts.export_png(path, key)
        except (OSError, KeyError) as exc:
            self.show_error(f"cannot export {key or 'the charts'} to {path}: {exc}")
            return False
        self.statusBar().showMessage(f"saved {saved}")
        return True

    def open_settings(self) -> SettingsDialog:
        """Show the (non-modal) settings dialog; changes apply when it is accepted."""
        if self._settings_dialog is None:
            self._settings_dialog = SettingsDialog(self.settings, self)
            self._settings_dialog.settingsAccepted.connect(self.apply_settings)
        else:
            self._settings_dialog.set_settings(self.settings)
        self._settings_dialog.show()
        return self._settings_dialog

    def apply_settings(self, settings: AppSettings) -> None:
        """Take new settings: refresh rate and polling now; a new runs dir after a restart."""
        old, self.settings = self.settings, settings
        changed = changed_keys(old, settings)
        if "refresh_ms" in changed:
            self._refresh_timer.setInterval(settings.refresh_ms)
        if "system_poll_s" in changed:
            self.system.set_interval(settings.system_poll_s)
        if "runs_dir" in changed:
            self.statusBar().showMessage("The new runs folder is used from the next start.")
        if _SUPERVISION_KEYS & set(changed):
            self.supervisor.set_policies(settings.restart_policy(), settings.health_policy())
            self.health.set_heartbeat_timeout(settings.heartbeat_timeout_s)
        self.settingsChanged.emit(settings)

    def _ask_open_folder(self) -> None:
        # Non-modal: a modal dialog would run a nested event loop under qasync.
        dialog = QFileDialog(self, "Open a run folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.open_folder(Path(path)))
        dialog.open()

    def ask_import(self) -> ImportDialog:
        """File → Import…: ask what to import (non-modal); :meth:`start_import` does it."""
        dialog = ImportDialog(self.runs.runs_dir, self)
        dialog.chosen.connect(self.start_import)
        dialog.finished.connect(dialog.deleteLater)
        self.import_dialog = dialog
        dialog.open()
        return dialog

    def start_import(self, request: ImportRequest) -> bool:
        """Import ``request`` as a new finished run on the tasks worker, then select it; an
        error is shown in one line. False if the same source is being imported already."""
        job = partial(import_run, request.source, self.runs.runs_dir, fmt=request.fmt,
                      name=request.name, run=request.run)  # fmt: skip

        def done(result: tuple[RunPaths, int, int]) -> None:
            paths, points, keys = result
            log.info("imported", extra={"run": paths.name,
                                        "fields": {"source": str(request.source)}})  # fmt: skip
            self.open_folder(paths.root)
            self.statusBar().showMessage(
                f"imported {points} points of {keys} keys into run {paths.name}"
            )

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, TrainDeskError | OSError):
                log.error("import of %s failed", request.source, exc_info=exc)
            self.show_error(f"cannot import {request.source.name}: {exc}")

        submitted = self.tasks.submit(f"import-{request.source}", job, done, failed)
        if submitted:
            self.statusBar().showMessage(f"importing {request.source}…")
        else:
            self.show_error(f"{request.source} is being imported already")
        return submitted

    def open_folder(self, folder: Path, *, add: bool = False) -> bool:
        """Show (and select) a run folder from anywhere; shows the reason if it is not one.

        ``add``: select it along with the runs selected now (``--open A --open B``)."""
        error = self.runs.add_folder(folder)
        if error:
            self.show_error(error)
            return False
        resolved = folder.resolve()
        inside = resolved.parent == self.runs.runs_dir.resolve()
        # The path as the runs model lists it, so that the row is found and selected.
        path = str(self.runs.runs_dir / resolved.name) if inside else str(resolved)
        if add and self._selected_paths:
            if path not in self._selected_paths:
                self._selected_paths = [*self._selected_paths, path]
        else:
            self._selected = path
            self._selected_paths = [path]
        self._restore_selection()  # now if it is listed already, else when it appears
        self.refresh()
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_folder(Path(url.toLocalFile()))
        event.acceptProposedAction()

    # ------------------------------------------------------------------ public
    def refresh(self) -> None:
        """Scan the runs directory for changes in the background (skipped while a scan is
        running); a listing not complete yet is scanned again at once."""
        if not self._shut_down:
            self.io.submit(_REFRESH_TAG, self.runs.scan, self._on_scan, self._on_refresh_error)
            self._rederive_rows()

    def selected_run(self) -> RunSummary | None:
        row = self.runs.index_of(self._selected)
        return None if row is None else self.table_model.run_at(row)

    def selected_runs(self) -> list[RunSummary]:
        """Every selected run, in table order."""
        runs = []
        for index in self.table.selectionModel().selectedRows():
            run = self.table_model.run_at(self.proxy.mapToSource(index).row())
            if run is not None:
                runs.append(run)
        return runs

    def _on_queue_shown(self, visible: bool) -> None:
        if not visible:
            return
        self.queue.refresh()
        if not self._queue_sized:  # the first time: a strip below System and Health
            self._queue_sized = True
            docks = [self.docks["system"], self.docks["queue"]]
            self.resizeDocks(docks, [3 * self.height() // 4, self.height() // 4],
                             Qt.Orientation.Vertical)  # fmt: skip

    def show_dock(self, name: str) -> None:
        """Show and raise a dock: "system", "health" or "queue"."""
        dock = self.docks[name]
        dock.show()
        dock.raise_()
        if name != "queue":
            self._front_dock = name

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._front_raised:
            # The tab in front of System/Health: only the shown window keeps a raise_(), and
            # Health behind its tab costs nothing (its plots are made when it is first seen).
            self._front_raised = True
            QTimer.singleShot(0, lambda: self.docks[self._front_dock].raise_())

    def show_error(self, message: str) -> None:
        """Show an error in the status bar (full text as its tooltip)."""
        first_line = message.strip().splitlines()[-1] if message.strip() else "error"
        self.error_label.setText(f"Error: {first_line[:160]}")
        self.error_label.setToolTip(message)

    def listed_runs(self) -> list[RunSummary]:
        """The runs the table lists now (the filter applied), in its order."""
        rows = (self.proxy.mapToSource(self.proxy.index(r, 0)).row()
                for r in range(self.proxy.rowCount()))  # fmt: skip
        return [run for run in map(self.table_model.run_at, rows) if run is not None]

    def select_run(self, path: str) -> None:
        """Select the run at ``path`` in the table (and so in the charts), if listed."""
        row = self.runs.index_of(path)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.table_model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    def set_filter(self, text: str) -> None:
        """Filter the runs table by ``text`` (:mod:`desktop_app.compare.filter`); a problem
        with it shows beside the box."""
        problem = self.proxy.set_filter_text(text)
        self.filter_problem.setText(problem)
        self.filter_problem.setToolTip(problem)

    def shutdown(self) -> None:
        """Stop timers, stop the worker, close readers. Idempotent; emits :attr:`closed`."""
        if self._shut_down:
            return
        self._shut_down = True
        self._refresh_timer.stop()
        self.runs_split.flush()
        self.compare.stop()
        self.config_view.stop()
        self.supervisor.cancel_restarts("restart cancelled: the app is closing")
        self.queue.shutdown()
        self.io.close()
        self.runs.scanner.save_cache()  # no scan runs any more
        self.runs.scanner.close()
        self.tasks.close()  # waits for a running job (the diagnostics take seconds)
        self.system.shutdown()  # after io.close(): NVML shuts down on its own thread
        self.charts.shutdown()
        self.health.shutdown()
        for path in list(self._row_follows):
            self._unfollow_row(path)
        self.follow.shutdown()  # after the panels let go of their runs
        self.table_model.detach()
        self.closed.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.supervisor.running() and not self._close_confirmed:
            # Runs started here are alive: ask whether to stop them or leave them running,
            # without a nested event loop; the window closes when that is done.
            event.ignore()
            if self._closing is None:
                self._closing = asyncio.ensure_future(self._close_with_children())
            return
        self.shutdown()
        super().closeEvent(event)

    async def _close_with_children(self) -> None:
        choice = None if self.settings.on_quit == "ask" else CloseChoice(self.settings.on_quit)
        try:
            confirmed = await close_with_children(
                self, self.supervisor, timeout=STOP_TIMEOUT_S, choice=choice
            )
        finally:
            self._closing = None
        if confirmed:
            self._close_confirmed = True
            self.close()

    async def close_unattended(self, reason: str) -> None:
        """Close without asking anyone (a signal, a logout): live runs started here are
        stopped, each with a checkpoint (SIGTERM, then SIGKILL of its group after a deadline),
        or left running if the "on quit" setting says so ("ask" stops them: nobody is there
        to answer). A close prompt already open is withdrawn."""
        if self._quitting:
            return
        self._quitting = True
        leave = self.settings.on_quit == "leave"
        live = len(self.supervisor.running())
        what = "leaving" if leave else "stopping"
        log.warning("%s: closing, %s %d live run(s)", reason, what, live)
        self.statusBar().showMessage(f"{reason}: closing, {what} {live} live run(s)…")
        if self._closing is not None:
            self._closing.cancel()  # the prompt goes; its stop (if it began) is taken over
            with contextlib.suppress(asyncio.CancelledError):
                await self._closing
        await self.supervisor.shutdown(stop_children=not leave, timeout=STOP_TIMEOUT_S)
        self._close_confirmed = True
        self.close()

    async def close_leaving_runs(self) -> None:
        """Close without asking, leaving live runs training (they need no app)."""
        await self.supervisor.shutdown(stop_children=False)
        self._close_confirmed = True
        self.close()

    def launch(self, spec: LaunchSpec) -> str | None:
        """Start a run as a child of the app and select it; returns its folder."""
        folder = self.supervisor.start(spec)
        if folder is not None:
            self._on_launched(folder)
        return folder

    # ------------------------------------------------------------------ supervision
    def _restart_count(self, folder: str) -> int | None:
        """Restarts the supervisor made of a run it supervises now (None: not supervised)."""
        supervision = self.supervisor.supervision(folder)
        return None if supervision is None else supervision.tracker.total

    def _on_health(self, folder: str, health: str, message: str) -> None:
        name = Path(folder).name
        fields = {"message": message}
        log.info("run %s is %s", name, health, extra={"run": name, "fields": fields})
        if health in ("unresponsive", "stalled"):
            text = message or _HEALTH_TEXT[health].format(name=name)
            self.table_model.set_note(folder, RowNote(status=health, message=text))
            self.statusBar().showMessage(text)
        else:
            self.table_model.set_note(folder, None)
        if message:  # killed as hung
            self.show_error(f"run {name} {message}")

    def _on_restarting(self, folder: str, delay: float, message: str) -> None:
        name = Path(folder).name
        fields = {"delay_s": delay, "message": message}
        log.info("restart scheduled", extra={"run": name, "fields": fields})
        due = None if delay < 0 else time.monotonic() + delay
        note = RowNote(restart_at=due, waiting_for_space=delay < 0, message=message)
        self.table_model.set_note(folder, note)
        self.statusBar().showMessage(message)
        self.refresh()

    def _on_ended(self, folder: str, state: str, message: str) -> None:
        name = Path(folder).name
        fields = {"state": state, "message": message}
        log.info("supervision ended", extra={"run": name, "fields": fields})
        self.table_model.set_note(folder, None)
        if state in ("failed", "crashed"):
            self.show_error(message)
        elif message:
            self.statusBar().showMessage(message)
        self.controller.update()
        self.refresh()

    # ------------------------------------------------------------------ internals
    def _on_scan(self, result: ScanResult) -> None:
        if self.error_label.text().startswith("Error: the runs folder"):
            # It is back, or exists now (a run launched from here made a missing one).
            self.error_label.setText("")
            self.error_label.setToolTip("")
            self._runs_dir_error = None
        if not result.complete:
            QTimer.singleShot(0, self.refresh)  # the first listing: fill on
        # A big change of rows resets the table model, which restores the selection.
        self._apply_rows(result)
        ready = result.complete or len(self.runs) >= COLUMN_SIZE_ROWS
        # Sized once (the first rows); while it is empty, not again at every scan.
        if not self._columns_sized and ready and self._columns_sized_at != len(self.runs):
            self._columns_sized_at = len(self.runs)
            self._columns_sized = bool(len(self.runs))
            self.table.resizeColumnsToContents()
        if result.complete and not self._listed:
            self._listed = True
            self.listed.emit()
            marker = LISTED_FILE.raw()  # bench/many_runs.py
            if marker:
                Path(marker).write_text(repr(time.time()), encoding="utf-8")

    def _apply_rows(self, result: ScanResult) -> None:
        if self.runs.apply(result):
            if self.runs.last_change.statuses:
                self._on_runs(self.runs.runs)
            else:  # a live run's new step: its row only, nothing to follow anew
                self.controller.update()

    def _follow_rows(self) -> None:
        """Follow the live runs' rows through the app's followers; the scanner leaves them."""
        live = {r.path for r in self.runs.runs if r.status in ALIVE}
        for path in [p for p in self._row_follows if p not in live]:
            self._unfollow_row(path)
        for path in sorted(live - self._row_follows.keys()):
            self._row_follows[path] = self.follow.follow(
                Path(path), self.runs, partial(self._on_row_delta, path)
            )
        self.runs.scanner.followed = frozenset(self._row_follows)

    def _unfollow_row(self, path: str) -> None:
        stop = self._row_follows.pop(path, None)
        if stop is not None:
            stop()
        self._row_infos.pop(path, None)
        self._row_latest.pop(path, None)
        self._row_events.pop(path, None)
        self.runs.scanner.followed = frozenset(self._row_follows)

    def _on_row_delta(self, path: str, delta: Delta) -> None:
        """Keep a followed live run's newest run row and values, from the same delta the
        other panels get; its row is made from them on the next refresh."""
        if self._shut_down or path not in self._row_follows:
            return
        if delta.batch is None:
            self._unfollow_row(path)  # unreadable now: the scanner says so
            return
        self._row_infos[path] = delta.batch.run
        events = self._row_events.setdefault(path, [])
        if delta.first or delta.replay:
            events.clear()
        events += [(e.kind, e.wall) for e in delta.batch.events if e.kind in PAUSE_EVENTS]
        latest = self._row_latest.setdefault(path, {})
        for key, series in delta.batch.points.items():
            if len(series):
                latest[key] = float(series.values[-1])

    def _rederive_rows(self) -> None:
        """The followed runs' rows, from their newest run rows and values, once a refresh:
        their status also changes with no write (the process died, the heartbeat went
        stale), so it is derived again each time (one process check a live run)."""
        changed = []
        runs = self.runs.runs
        for path, info in self._row_infos.items():
            row = self.runs.index_of(path)
            if row is not None:
                old = runs[row]
                latest = {**old.latest, **self._row_latest[path]}
                pauses = pause_time(self._row_events.get(path, []))
                new = summary_from(info, Path(path), latest, pauses)
                if new != old:
                    changed.append(new)
        if changed:
            self._apply_rows(ScanResult(changed=changed))

    def _on_runs(self, runs: list[RunSummary]) -> None:
        self._follow_rows()
        self.system.set_runs(runs)
        self._watch_health()
        self.controller.update()

    def _watch_health(self) -> None:
        """The health panel follows the live runs, the selected ones and recent ones."""
        runs = ((r.path, r.name, r.status, r.updated) for r in self.runs.runs)
        self.health.set_runs(folders_to_watch(runs, self._selected_paths))

    def _on_refresh_error(self, exc: BaseException) -> None:
        missing = isinstance(exc, FileNotFoundError)
        if missing and self._runs_dir_error and not self.runs.runs_dir.exists():
            return  # a --runs-dir that never existed: said once, at the start
        log.warning("cannot list the runs: %s", exc)
        if missing:
            self.show_error(str(exc))  # the runs listed so far stay, as last seen
        else:
            self.show_error(f"cannot list the runs in {self.runs.runs_dir}: {exc}")

    def _restore_selection(self) -> None:
        """After the rows changed, select again what was selected (or the newest run)."""
        rows = [r for r in (self.runs.index_of(p) for p in self._selected_paths) if r is not None]
        if not rows and not self._selected_paths and len(self.runs):
            rows = [0]
        if not rows:
            if not len(self.runs):
                self.charts.set_runs([])
            return
        selection = QItemSelection()
        for row in rows:
            index = self.proxy.mapFromSource(self.table_model.index(row, 0))
            if index.isValid():
                selection.select(index, index)
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.selectionModel().select(selection, flags)

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        run = runs[0]
        self._selected = run.path
        self._selected_paths = [r.path for r in runs]
        self.system.set_selected_run(Path(run.path), run.name)
        self.charts.set_runs([(Path(r.path), r.name) for r in runs])
        self.config_view.set_selected(self._selected_paths)
        self.console.show_run(run.path)
        self.controller.update()
        self._watch_health()

    def _on_launch_failed(self, folder: str, name: str, message: str, tail: list[str]) -> None:
        log.warning("launch failed", extra={"run": name, "fields": {"message": message}})
        self.launch_failure.show_failure(folder, name, message, tail)
        self.console.show_run(folder)

    def _show_failed_console(self, folder: str) -> None:
        self.console.show_run(folder)
        self.tabs.setCurrentWidget(self.console)

    def _on_launched(self, folder: str) -> None:
        log.info("run launched", extra={"run": Path(folder).name, "fields": {"folder": folder}})
        self.launch_failure.hide()  # a new launch: the last one's failure is old news
        self._selected = folder
        self._selected_paths = [folder]
        self.console.show_run(folder)
        self.refresh()

    def _on_deleted(self, folder: str) -> None:
        self.console.forget(folder)
        self._selected_paths = [p for p in self._selected_paths if p != folder]
        self.refresh()
