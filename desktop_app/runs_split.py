"""The split between the runs table and the run view below it (charts, config → result).

Comparing a sweep wants its runs in sight: the table first gets the height its rows need, as
far as the run view keeps :data:`RUN_VIEW_HEIGHT` (at 1280x800 that is the old fixed height of
a few rows; a taller window lists a dozen runs or more). Once the user drags the split, their
table height wins, now and at the next start: it is kept in ``layout.json`` beside the
settings file (a missing or bad file gives the first rule).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QSplitter, QTableView, QWidget

from desktop_app.settings.model import settings_path
from trainer.paths import make_private_dir, write_private_text

log = logging.getLogger(__name__)

LAYOUT_NAME = "layout.json"
#: What the run view keeps at least when the table is first sized (a dragged split may
#: give it less, down to :data:`MIN_RUN_VIEW`).
RUN_VIEW_HEIGHT = 546
MIN_RUN_VIEW = 120
#: The table shows at least this many rows, listed or not.
MIN_ROWS = 3
#: A dragged split is written this long after the drag stops.
SAVE_DELAY_MS = 500


def layout_path() -> Path:
    """``layout.json`` next to the settings file."""
    return settings_path().with_name(LAYOUT_NAME)


def load_table_height(path: Path | None = None) -> int | None:
    """The table height the user dragged to, or None (none saved, or unreadable)."""
    path = layout_path() if path is None else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s): the runs table takes its first height", path, exc)
        return None
    height = data.get("runs_table_height") if isinstance(data, dict) else None
    if isinstance(height, bool) or not isinstance(height, int) or height <= 0:
        return None
    return height


def save_table_height(height: int, path: Path | None = None) -> Path:
    """Write the dragged table height atomically to a private file; returns the path."""
    path = layout_path() if path is None else path
    make_private_dir(path.parent)
    write_private_text(path, json.dumps({"runs_table_height": int(height)}) + "\n")
    return path


def compact_rows(table: QTableView) -> int:
    """Rows one line of text high (the style's default is far taller); returns the height."""
    height = max(table.fontMetrics().height() + 8, 20)
    header = table.verticalHeader()
    header.setMinimumSectionSize(height)
    header.setDefaultSectionSize(height)
    table.setWordWrap(False)
    return height


def first_height(total: int, chrome: int, rows: int, row_height: int) -> int:
    """The table's height (its panel's, ``chrome`` being all of it but the rows) in a split of
    ``total`` pixels: every row, at least :data:`MIN_ROWS`, as far as the run view keeps
    :data:`RUN_VIEW_HEIGHT`; whole rows only."""
    fits = (total - RUN_VIEW_HEIGHT - chrome) // max(row_height, 1)  # whole rows only
    return chrome + max(MIN_ROWS, min(rows, fits)) * row_height


class RunsSplit(QObject):
    """Keeps ``splitter``'s first part (the panel holding ``table``) sized for the listed rows
    until the user drags it; then keeps and saves the user's height."""

    def __init__(
        self,
        splitter: QSplitter,
        table: QTableView,
        rows: Callable[[], int],
        *,
        path: Path | None = None,
    ) -> None:
        super().__init__(splitter)
        self.splitter = splitter
        self.table = table
        self._rows = rows
        self._path = path
        #: The height the user dragged the table to (saved), or None: the first rule.
        self.user_height = load_table_height(path)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)
        splitter.splitterMoved.connect(self._on_moved)
        splitter.installEventFilter(self)

    @property
    def panel(self) -> QWidget:
        widget = self.splitter.widget(0)
        assert widget is not None
        return widget

    def fit(self) -> None:
        """Size the table: the user's height if they chose one, else its rows'."""
        total = sum(self.splitter.sizes())
        if total <= 0:
            return
        if self.user_height is not None:
            height = min(self.user_height, max(total - MIN_RUN_VIEW, 0))
        else:
            chrome = max(self.panel.height() - self.table.viewport().height(), 0)
            row_height = self.table.verticalHeader().defaultSectionSize()
            height = first_height(total, chrome, self._rows(), row_height)
        if self.splitter.sizes()[0] != height:
            self.splitter.setSizes([height, total - height])

    def save(self) -> None:
        """Write the user's height now (a drag writes it shortly after it stops)."""
        self._save_timer.stop()
        if self.user_height is None:
            return
        try:
            save_table_height(self.user_height, self._path)
        except OSError as exc:
            log.warning("cannot save the runs table's height: %s", exc)

    def flush(self) -> None:
        """Write a drag not yet written (the window is closing)."""
        if self._save_timer.isActive():
            self.save()

    def _on_moved(self, _pos: int, _index: int) -> None:
        self.user_height = self.splitter.sizes()[0]
        self._save_timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.splitter and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self, self.fit)  # once the panel is laid out
        return super().eventFilter(watched, event)
