"""The charts' legend: one swatch and name per run (or group), wrapped between entries, at most
:data:`MAX_LINES` lines high; more scroll. A dozen runs with long names would otherwise push
a row of charts off a 1280x800 window (the table's swatches and the crosshair name them too).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QWidget

MAX_LINES = 2
_PADDING = 2  # pixels above and below the text, as the label's style sheet says


class Legend(QScrollArea):
    """A word-wrapped rich-text label in a scroll area no taller than :data:`MAX_LINES`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setStyleSheet(f"padding: {_PADDING}px 8px;")
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def text(self) -> str:
        return self.label.text()

    def setText(self, text: str) -> None:
        self.label.setText(text)
        self._fit()

    def max_height(self) -> int:
        return MAX_LINES * self.label.fontMetrics().lineSpacing() + 2 * _PADDING + 2

    def _fit(self) -> None:
        """As tall as the wrapped text, up to :meth:`max_height` (a scroll bar then shows)."""
        bar = self.verticalScrollBar().sizeHint().width()
        width = max(self.width() - bar, 50)
        self.setFixedHeight(min(self.label.heightForWidth(width), self.max_height()))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit()
