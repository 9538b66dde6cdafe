"""The log console: one run's console output at a time, coloured, searchable and bounded.

Lines of runs the app launched come from :attr:`Supervisor.output` (connect it to
:meth:`LogConsole.append`). A run seen for the first time otherwise (started elsewhere, or
before the app restarted) is read from its ``logs/stdout.log`` and ``logs/stderr.log``: the
last ~200 KB, then whatever the files grow by while no supervisor output comes in.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.runs_ctl.logtail import MAX_LINES, TAIL_BYTES, RunLog, line_level

#: Colours of the console's levels (readable on light and dark backgrounds).
LEVEL_COLORS = {"error": "#dc2626", "warning": "#d97706"}
MATCH_BACKGROUND = "#fde68a"
MATCH_FOREGROUND = "#111827"
#: Without an ``is_piped`` callable, a run whose last supervisor line is older than this is
#: followed through its log files.
PIPE_QUIET_S = 3.0
POLL_MS = 500
FLUSH_MS = 50
FILTER_DELAY_MS = 150
MAX_RUNS = 32


class LogConsole(QWidget):
    """Shows the console of one run; keeps the last ``max_lines`` lines of up to
    ``max_runs`` runs in memory.

    ``is_piped(run_folder)`` tells whether a run's lines currently arrive through
    :meth:`append` (pass ``Supervisor.is_running``); without it, a run counts as piped for
    :data:`PIPE_QUIET_S` seconds after its last appended line.
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        max_lines: int = MAX_LINES,
        tail_bytes: int = TAIL_BYTES,
        poll_ms: int = POLL_MS,
        max_runs: int = MAX_RUNS,
        is_piped: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.max_lines = max_lines
        self.tail_bytes = tail_bytes
        self.max_runs = max_runs
        self._is_piped = is_piped
        self._logs: OrderedDict[str, RunLog] = OrderedDict()
        self._current: str | None = None
        self._pending: list[tuple[str, str]] = []
        self._filter = ""
        self._shown = 0  # lines in the view

        self.title = QLabel("No run selected")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter lines (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMaximumWidth(260)
        self.only_matching = QCheckBox("Only matching")
        self.only_matching.setChecked(True)
        self.only_matching.setToolTip("Hide the lines without a match (else highlight matches)")
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: palette(mid);")

        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(max_lines)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.view.setPlaceholderText("No output yet")

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.count_label)
        header.addWidget(self.filter_edit)
        header.addWidget(self.only_matching)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)

        self._formats = _formats()
        self._flush_timer = _timer(self, FLUSH_MS, self._flush, single=True)
        self._filter_timer = _timer(self, FILTER_DELAY_MS, self._apply_filter, single=True)
        self._poll_timer = _timer(self, poll_ms, self.poll)
        self.filter_edit.textChanged.connect(lambda _t: self._filter_timer.start())
        self.only_matching.toggled.connect(lambda _on: self._rebuild())
        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.filter_edit.setFocus)

    # ------------------------------------------------------------------ public
    @property
    def current(self) -> str | None:
        """The run folder shown, or None."""
        return self._current

    def show_run(self, run_folder: str | Path | None) -> None:
        """Show ``run_folder``'s console (None: nothing); reads its log files if new to us."""
        folder = None if run_folder is None else str(run_folder)
        if folder == self._current:
            return
        self._current = folder
        self._pending.clear()
        if folder is None:
            self._poll_timer.stop()
            self.title.setText("No run selected")
            self._rebuild()
            return
        log = self._logs.get(folder)
        if log is None:
            log = self._log(folder)
            if self._piped(log):
                log.piped = True
                log.skip_files()
            else:
                log.load_tail(self.tail_bytes)
        self._logs.move_to_end(folder)
        self.title.setText(f"<b>{Path(folder).name}</b>")
        self.title.setToolTip(folder)
        self._rebuild()
        self._poll_timer.start()

    def append(self, run_folder: str, line: str, stream: str) -> None:
        """Add one console line of a run (a slot for ``Supervisor.output``)."""
        log = self._logs.get(run_folder) or self._log(run_folder)
        log.piped = True
        log.last_append = time.monotonic()
        item = log.add(line, stream)
        if run_folder == self._current:
            self._pending.append(item)
            if not self._flush_timer.isActive():
                self._flush_timer.start()

    def prepare(self, run_folder: str) -> None:
        """A child for this run just started (a slot for ``Supervisor.started``): keep what
        its log files hold so far (a restarted run's earlier attempts), then take its lines
        from :meth:`append` only."""
        log = self._logs.get(run_folder)
        if log is None:
            log = self._log(run_folder)
            log.load_tail(self.tail_bytes)
        elif not log.piped:
            log.follow()
        log.piped = True
        log.last_append = time.monotonic()
        if run_folder == self._current:
            self._rebuild()

    def forget(self, run_folder: str | Path) -> None:
        """Drop a run's lines (a deleted run); shows nothing if it was shown."""
        if str(run_folder) == self._current:
            self.show_run(None)
        self._logs.pop(str(run_folder), None)

    def set_filter(self, text: str) -> None:
        """Filter (or highlight, see :attr:`only_matching`) lines containing ``text``."""
        self.filter_edit.setText(text)
        self._apply_filter()

    def line_count(self, run_folder: str | Path) -> int:
        """Lines kept in memory for a run."""
        log = self._logs.get(str(run_folder))
        return 0 if log is None else len(log)

    def visible_text(self) -> str:
        """The text in the view (with the filter applied), flushing pending lines first."""
        self._flush()
        return self.view.toPlainText()

    def poll(self) -> None:
        """Read what the shown run's log files gained, unless its lines come piped."""
        log = self._logs.get(self._current) if self._current else None
        if log is None:
            return
        if self._piped(log):
            log.piped = True
            log.skip_files()  # the same lines come (or came) through append()
            return
        if log.piped:  # the child ended: everything in the files came through the pipe
            log.piped = False
            log.skip_files()
        added = log.follow()
        if added:
            self._pending.extend(added)
            self._flush()

    # ------------------------------------------------------------------ internals
    def _log(self, folder: str) -> RunLog:
        log = RunLog(folder, max_lines=self.max_lines)
        self._logs[folder] = log
        while len(self._logs) > self.max_runs:
            oldest = next(iter(self._logs))
            if oldest in (self._current, folder):
                self._logs.move_to_end(oldest)
                continue
            del self._logs[oldest]
        return log

    def _piped(self, log: RunLog) -> bool:
        if self._is_piped is not None:
            return self._is_piped(log.folder)
        return log.piped and time.monotonic() - log.last_append < PIPE_QUIET_S

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        text = self.filter_edit.text()
        if text != self._filter:
            self._filter = text
            self._rebuild()

    def _rebuild(self) -> None:
        self._flush_timer.stop()
        self._pending.clear()
        self.view.clear()
        self._shown = 0
        log = self._logs.get(self._current) if self._current else None
        if log is not None:
            self._write(list(log))
        self._update_count()

    def _flush(self) -> None:
        self._flush_timer.stop()
        if self._pending:
            items, self._pending = self._pending, []
            self._write(items)
            self._update_count()

    def _write(self, items: list[tuple[str, str]]) -> None:
        needle = self._filter.casefold()
        if needle and self.only_matching.isChecked():
            items = [it for it in items if needle in it[0].casefold()]
        if not items:
            return
        bar = self.view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.view.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        for line, stream in items:
            if self._shown:
                cursor.insertBlock()
            self._insert_line(cursor, line, self._formats[line_level(line, stream)], needle)
            self._shown += 1
        cursor.endEditBlock()
        self._shown = min(self._shown, self.max_lines)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _insert_line(
        self, cursor: QTextCursor, line: str, fmt: QTextCharFormat, needle: str
    ) -> None:
        if not needle:
            cursor.insertText(line, fmt)
            return
        start = 0
        for match in re.finditer(re.escape(needle), line, re.IGNORECASE):
            cursor.insertText(line[start : match.start()], fmt)
            cursor.insertText(line[match.start() : match.end()], self._formats["match"])
            start = match.end()
        cursor.insertText(line[start:], fmt)

    def _update_count(self) -> None:
        log = self._logs.get(self._current) if self._current else None
        total = 0 if log is None else len(log)
        if self._filter and self.only_matching.isChecked():
            self.count_label.setText(f"{self._shown} of {total} lines")
            self.view.setPlaceholderText(f"No line contains {self._filter!r}")
        else:
            self.view.setPlaceholderText("No output yet")
            self.count_label.setText(f"{total} lines" if log is not None else "")


def _formats() -> dict[str, QTextCharFormat]:
    formats = {"info": QTextCharFormat()}
    for level, color in LEVEL_COLORS.items():
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(color))
        formats[level] = fmt
    match = QTextCharFormat()
    match.setBackground(QColor(MATCH_BACKGROUND))
    match.setForeground(QColor(MATCH_FOREGROUND))
    formats["match"] = match
    return formats


def _timer(parent: QWidget, ms: int, slot: Callable[[], None], single: bool = False) -> QTimer:
    timer = QTimer(parent)
    timer.setInterval(ms)
    timer.setSingleShot(single)
    timer.timeout.connect(slot)
    return timer
