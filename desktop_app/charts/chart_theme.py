"""The charts' colours for the light and the dark theme, and restyling a chart in place.

A chart takes the colours of the theme it was made in (judged from the application palette,
which :func:`desktop_app.settings.theme.apply_theme` sets); :func:`style_chart` switches an
existing one without rebuilding it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtGui import QColor, QGuiApplication

from desktop_app.settings.theme import DARK, LIGHT, Theme, palette_is_dark


@dataclass(frozen=True)
class ChartTheme:
    """What a chart paints besides its curves."""

    dark: bool
    background: str
    text: str  # title and tick labels
    axis: str  # axis lines, crosshair
    grid: str  # opaque: a translucent grid costs ~10 ms a paint
    muted: str  # secondary text in the readout and the title
    box: str  # readout and legend background (drawn with some transparency)
    border: str  # readout and legend border


LIGHT_CHARTS = ChartTheme(
    False, LIGHT.background, LIGHT.foreground, "#6b7280", "#eff0f3", "#6b7280", "#ffffff", "#d1d5db"
)
DARK_CHARTS = ChartTheme(
    True, DARK.background, DARK.foreground, "#9ca3af", "#263041", "#9ca3af", "#1f2937", "#4b5563"
)


def chart_theme(theme: Theme) -> ChartTheme:
    """The chart colours of an app theme."""
    return DARK_CHARTS if theme.dark else LIGHT_CHARTS


def current_chart_theme() -> ChartTheme:
    """The chart colours that match the application's palette now (light without an app)."""
    app = QGuiApplication.instance()
    dark = isinstance(app, QGuiApplication) and palette_is_dark(app.palette())
    return DARK_CHARTS if dark else LIGHT_CHARTS


def box_brush(colours: ChartTheme, alpha: int) -> pg.QtGui.QBrush:
    """The readout's or legend's background, ``alpha`` of 255 opaque."""
    colour = QColor(colours.box)
    colour.setAlpha(alpha)
    return pg.mkBrush(colour)


def style_chart(plot: pg.PlotWidget, colours: ChartTheme) -> None:
    """Background, axes, ticks and grid of a chart in ``colours`` (the title is the chart's)."""
    plot.setBackground(colours.background)
    item = plot.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(colours.axis))
        axis.setTextPen(pg.mkPen(colours.text))
        axis.setTickPen(pg.mkPen(colours.grid))
