"""The system panel's small widgets: a labelled gauge and one GPU's card."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from desktop_app.system.formatting import (
    NA,
    fmt_bytes,
    fmt_percent,
    fmt_power,
    fmt_temperature,
    fmt_used_total,
    fraction,
)
from trainer.resources.gpus import GpuReading

#: Fill colours by level: calm, getting full, nearly full.
LEVELS = ((0.75, "#3b82f6"), (0.9, "#f59e0b"), (1.01, "#ef4444"))
SIMULATED_COLOR = "#b45309"


class _Bar(QWidget):
    """A painted horizontal bar: a track and a fill coloured by level; empty when unknown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fraction: float | None = None
        self.setMinimumWidth(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(160, 12)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        palette = self.palette()
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, 3, 3)
        if self.fraction is not None and self.fraction > 0:
            color = next(c for limit, c in LEVELS if self.fraction < limit)
            fill = QRectF(rect.x(), rect.y(), max(rect.width() * self.fraction, 3), rect.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(color))
            painter.drawRoundedRect(fill, 3, 3)
        painter.end()


class Gauge(QWidget):
    """``caption [bar] value``: a fraction drawn as a bar and a text; None shows "n/a"."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(caption)
        self.caption.setMinimumWidth(56)
        self.bar = _Bar()
        self.value = QLabel(NA)
        self.value.setMinimumWidth(150)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.value)

    def set_value(self, share: float | None, text: str) -> None:
        """Show ``share`` (0..1, None: unknown) and ``text``."""
        if share != self.bar.fraction:
            self.bar.fraction = share
            self.bar.update()
        if text != self.value.text():
            self.value.setText(text)

    def text(self) -> str:
        return self.value.text()

    def fraction(self) -> float | None:
        return self.bar.fraction


class GpuCard(QFrame):
    """One GPU: its name, memory and utilisation gauges, temperature, power and processes."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(f"GPU {index}")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.simulated_tag = QLabel("SIMULATED")
        self.simulated_tag.setStyleSheet(
            f"color: white; background: {SIMULATED_COLOR}; border-radius: 3px; padding: 0 4px;"
        )
        self.simulated_tag.hide()
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.simulated_tag)
        self.memory = Gauge("Memory")
        self.util = Gauge("Util")
        self.details = QLabel()
        self.processes = QLabel()
        self.processes.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(3)
        layout.addLayout(header)
        layout.addWidget(self.memory)
        layout.addWidget(self.util)
        layout.addWidget(self.details)
        layout.addWidget(self.processes)

    def show_reading(self, reading: GpuReading, owners: Mapping[int, str]) -> None:
        """Show ``reading``; ``owners`` maps the pids of our runs' processes to run names."""
        name = reading.name or "name n/a"
        _set_text(self.title, f"GPU {reading.index} · {name}")
        self.simulated_tag.setVisible(reading.simulated)
        self.memory.set_value(
            fraction(reading.mem_used, reading.mem_total),
            fmt_used_total(reading.mem_used, reading.mem_total),
        )
        util = None if reading.util is None else reading.util / 100.0
        self.util.set_value(util, fmt_percent(reading.util))
        _set_text(
            self.details,
            f"Temperature {fmt_temperature(reading.temperature)} · "
            f"Power {fmt_power(reading.power_w)}",
        )
        _set_text(self.processes, processes_text(reading, owners))


def processes_text(reading: GpuReading, owners: Mapping[int, str]) -> str:
    """``"Runs: demo (12.0 GiB) · 1 other process"``, "No processes", or "Processes: n/a"."""
    if reading.processes is None:
        return f"Processes: {NA}"
    if not reading.processes:
        return "No processes"
    ours: dict[str, int | None] = {}
    others = 0
    for pid, used in reading.processes:
        run = owners.get(pid)
        if run is None:
            others += 1
        elif used is None or ours.get(run, 0) is None:
            ours[run] = None
        else:
            ours[run] = (ours.get(run) or 0) + used
    parts = []
    if ours:
        runs = ", ".join(f"{run} ({fmt_bytes(used)})" for run, used in sorted(ours.items()))
        parts.append(f"Runs: {runs}")
    if others:
        noun = "process" if others == 1 else "processes"
        parts.append(f"{others} other {noun}" if ours else f"{others} {noun}, none of our runs")
    return " · ".join(parts)


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)
