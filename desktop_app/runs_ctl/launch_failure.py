"""The cause of a launch that failed before its run existed, shown where runs are shown.

A launch refused by the trainer (a bad ``--set`` value, an unwritable runs directory, a
missing script) leaves no run folder, so there is no row to select and no run console to
read. This panel, above the charts and the console, says which launch failed, the trainer's
one-line message, and the last lines of its console, until it is dismissed or the next launch
starts.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

#: Console lines shown at most (the newest).
TAIL_LINES = 12


class LaunchFailurePanel(QFrame):
    """Says why the last launch failed; hidden until :meth:`show_failure`."""

    #: The user asked to see the full console of the failed launch (its run folder).
    consoleRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("launch-failure")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.folder = ""
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        error_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        icon.setPixmap(error_icon.pixmap(size, size))
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tail = QPlainTextEdit()
        self.tail.setReadOnly(True)
        self.tail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.tail.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.console_button = QPushButton("Show console")
        self.console_button.clicked.connect(lambda: self.consoleRequested.emit(self.folder))
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.clicked.connect(self.hide)

        head = QHBoxLayout()
        head.addWidget(icon)
        head.addWidget(self.title, 1)
        head.addWidget(self.console_button)
        head.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(head)
        layout.addWidget(self.message)
        layout.addWidget(self.tail)
        self._tint()
        self.hide()

    def _tint(self) -> None:
        """A red edge that reads on light and dark palettes alike."""
        self.setStyleSheet("#launch-failure { border: 1px solid #dc2626; border-radius: 4px; }")
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)

    def show_failure(self, folder: str, name: str, message: str, tail: list[str]) -> None:
        """Show the failed launch of ``name``: ``message`` (one line) and its console's tail."""
        self.folder = folder
        self.title.setText(f"Launch of {name} failed: it never started")
        self.message.setText(message)
        self.message.setToolTip(message)
        lines = [line for line in tail if line.strip()][-TAIL_LINES:]
        self.tail.setPlainText("\n".join(lines) if lines else "(it printed nothing)")
        rows = max(1, len(lines))
        margin = self.tail.document().documentMargin()
        frame = 2 * self.tail.frameWidth() + round(2 * margin) + 6
        self.tail.setFixedHeight(self.tail.fontMetrics().lineSpacing() * rows + frame)
        self.show()
