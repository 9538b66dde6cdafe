"""Status colours that read on light and dark themes, and drawn status icons.

The icons are painted shapes (a triangle for running, two bars for paused, a square for
stopped, a tick, a cross, ...), so they never depend on a font having a symbol (U+23F8 and
U+23F9, the pause and stop symbols, render as empty boxes in common fonts). Each shape is
drawn in the status colour. :func:`swatch_icon` is a run's own colour (its chart lines).
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPainterPath, QPen, QPixmap

#: Text colours of each status on a light background (4.5:1 or better on white).
LIGHT_COLORS: dict[str, str] = {
    "queued": "#6b7280",
    "starting": "#2563eb",
    "running": "#2563eb",
    "paused": "#b45309",
    "stopping": "#b45309",
    "unresponsive": "#c2410c",
    "stalled": "#a16207",
    "finished": "#15803d",
    "stopped": "#6b7280",
    "failed": "#dc2626",
    "crashed": "#dc2626",
    "unreadable": "#991b1b",
}
#: The same on a dark background (#111827 to #1f2937: 4.5:1 or better).
DARK_COLORS: dict[str, str] = {
    "queued": "#9ca3af",
    "starting": "#60a5fa",
    "running": "#60a5fa",
    "paused": "#fbbf24",
    "stopping": "#fbbf24",
    "unresponsive": "#fb923c",
    "stalled": "#facc15",
    "finished": "#4ade80",
    "stopped": "#9ca3af",
    "failed": "#f87171",
    "crashed": "#f87171",
    "unreadable": "#fca5a5",
}
#: Tints behind the statuses that need a look, on a dark background (the light ones are
#: the runs table's STATUS_BACKGROUNDS).
DARK_BACKGROUNDS: dict[str, str] = {
    "unresponsive": "#7c2d12",
    "stalled": "#713f12",
    "unreadable": "#7f1d1d",
}
_OTHER = {"light": "#374151", "dark": "#d1d5db"}


def dark_theme() -> bool:
    """True when the application's palette is dark (its window colour)."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    return QGuiApplication.palette().window().color().lightness() < 128


def status_color(status: str, dark: bool | None = None) -> QColor:
    """The text colour of ``status`` on the current theme (or on a ``dark`` one)."""
    dark = dark_theme() if dark is None else dark
    colors = DARK_COLORS if dark else LIGHT_COLORS
    return QColor(colors.get(status, _OTHER["dark" if dark else "light"]))


def status_icon(status: str, dark: bool | None = None, size: int = 16) -> QIcon:
    """A drawn icon for ``status`` in its colour (cached)."""
    dark = dark_theme() if dark is None else dark
    return _icon(status, status_color(status, dark).name(), size)


@lru_cache(maxsize=128)
def _icon(status: str, color: str, size: int) -> QIcon:
    icon = QIcon()
    for scale in (1, 2):  # crisp on high-DPI screens too
        icon.addPixmap(_draw(status, QColor(color), size * scale))
    return icon


def _draw(status: str, color: QColor, size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    m = s * 0.15  # margin
    box = QRectF(m, m, s - 2 * m, s - 2 * m)
    pen = QPen(color, max(1.5, s / 8), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)  # fmt: skip
    if status in ("starting", "running"):
        _fill(p, color, [QPointF(box.left() + s * 0.08, box.top()), box.bottomLeft() +
                         QPointF(s * 0.08, 0), QPointF(box.right(), box.center().y())])  # fmt: skip
    elif status == "paused":
        w = box.width() * 0.32
        p.fillRect(QRectF(box.left(), box.top(), w, box.height()), color)
        p.fillRect(QRectF(box.right() - w, box.top(), w, box.height()), color)
    elif status in ("stopping", "stopped"):
        inner = box.adjusted(s * 0.05, s * 0.05, -s * 0.05, -s * 0.05)
        if status == "stopped":
            p.fillRect(inner, color)
        else:  # on its way: an outline
            p.setPen(pen)
            p.drawRect(inner)
    elif status == "finished":
        p.setPen(pen)
        p.drawPolyline([QPointF(box.left(), box.center().y()),
                        QPointF(box.left() + box.width() * 0.38, box.bottom()),
                        QPointF(box.right(), box.top())])  # fmt: skip
    elif status in ("failed", "crashed"):
        p.setPen(pen)
        p.drawLine(box.topLeft(), box.bottomRight())
        p.drawLine(box.topRight(), box.bottomLeft())
    elif status in ("unresponsive", "unreadable"):
        _fill(p, color, [QPointF(box.center().x(), box.top()), box.bottomRight(),
                         box.bottomLeft()])  # fmt: skip
    elif status == "stalled":
        p.setPen(pen)
        p.drawEllipse(box)
        c = box.center()
        p.drawPolyline([QPointF(c.x(), box.top() + s * 0.2), c,
                        QPointF(box.right() - s * 0.2, c.y())])  # fmt: skip
    else:  # queued, and anything else: a ring
        p.setPen(pen)
        p.drawEllipse(box.adjusted(s * 0.05, s * 0.05, -s * 0.05, -s * 0.05))
    p.end()
    return pixmap


def _fill(p: QPainter, color: QColor, points: list[QPointF]) -> None:
    path = QPainterPath(points[0])
    for point in points[1:]:
        path.lineTo(point)
    path.closeSubpath()
    p.fillPath(path, color)


@lru_cache(maxsize=64)
def swatch_icon(color: str, size: int = 14) -> QIcon:
    """A filled rounded square of ``color``: a run's own colour (the charts' line colour)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(color).darker(130), 1))
    painter.setBrush(QColor(color))
    painter.drawRoundedRect(QRectF(1.5, 1.5, size - 3, size - 3), 2.5, 2.5)
    painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)  # not tinted: the colour must stay true
    return icon
