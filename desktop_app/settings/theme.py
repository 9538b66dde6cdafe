"""Light and dark: the Qt palette, pyqtgraph's colours, and following the desktop's choice.

``apply_theme(app, settings)`` decides light or dark (``settings.theme``, where "system" asks
``QStyleHints.colorScheme()``, Qt 6.5+), asks Qt for that scheme where it can
(``setColorScheme``, Qt 6.8+), falls back to a Fusion palette when the platform did not switch,
and sets pyqtgraph's default background and foreground for plots made afterwards. Existing plots
are restyled with :func:`style_plot`. :class:`ThemeFollower` re-applies the theme when the
desktop switches while ``theme = "system"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from desktop_app.settings.model import AppSettings

#: The application property that marks a palette set by :func:`apply_theme`.
_OWN_PALETTE = "traindeskPalette"


@dataclass(frozen=True)
class Theme:
    """The colours that widgets painting themselves need."""

    dark: bool
    background: str  # plot background
    foreground: str  # axes, ticks, titles
    axis: str  # axis lines
    muted: str  # secondary text
    warning_bg: str  # the "simulated" banner and other warnings
    warning_fg: str


LIGHT = Theme(False, "#ffffff", "#111827", "#374151", "#6b7280", "#fef3c7", "#78350f")
DARK = Theme(True, "#111827", "#e5e7eb", "#9ca3af", "#9ca3af", "#78350f", "#fef3c7")


def system_prefers_dark(app: QGuiApplication) -> bool:
    """True when the desktop asks for dark (Qt 6.5+); otherwise judged by the palette."""
    scheme = getattr(app.styleHints(), "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value != Qt.ColorScheme.Unknown:
            return bool(value == Qt.ColorScheme.Dark)
    return palette_is_dark(app.palette())


def palette_is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def resolve_theme(app: QGuiApplication, choice: str) -> Theme:
    """The theme for a settings choice: "light", "dark" or "system"."""
    if choice == "system":
        return DARK if system_prefers_dark(app) else LIGHT
    return DARK if choice == "dark" else LIGHT


def apply_theme(app: QApplication, settings: AppSettings) -> Theme:
    """Make the app light or dark as ``settings.theme`` says; returns the theme applied."""
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8+: ask the platform for the scheme
        if settings.theme == "system":
            hints.unsetColorScheme()
        else:
            wanted = Qt.ColorScheme.Dark if settings.theme == "dark" else Qt.ColorScheme.Light
            hints.setColorScheme(wanted)
    theme = resolve_theme(app, settings.theme)
    if bool(app.property(_OWN_PALETTE)):
        app.setPalette(app.style().standardPalette())  # undo ours before judging the platform's
        app.setProperty(_OWN_PALETTE, False)
    if palette_is_dark(app.palette()) != theme.dark:
        # The platform did not switch (offscreen, older Qt, some Linux desktops): Fusion does.
        app.setStyle("Fusion")
        app.setPalette(dark_palette() if theme.dark else app.style().standardPalette())
        app.setProperty(_OWN_PALETTE, True)
    pg.setConfigOptions(background=theme.background, foreground=theme.foreground)
    return theme


def dark_palette() -> QPalette:
    """A dark Fusion palette with readable disabled text and links."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1f2937",
        QPalette.ColorRole.WindowText: "#e5e7eb",
        QPalette.ColorRole.Base: "#111827",
        QPalette.ColorRole.AlternateBase: "#1f2937",
        QPalette.ColorRole.ToolTipBase: "#111827",
        QPalette.ColorRole.ToolTipText: "#e5e7eb",
        QPalette.ColorRole.PlaceholderText: "#9ca3af",
        QPalette.ColorRole.Text: "#e5e7eb",
        QPalette.ColorRole.Button: "#374151",
        QPalette.ColorRole.ButtonText: "#e5e7eb",
        QPalette.ColorRole.BrightText: "#f87171",
        QPalette.ColorRole.Light: "#4b5563",
        QPalette.ColorRole.Midlight: "#374151",
        QPalette.ColorRole.Mid: "#4b5563",
        QPalette.ColorRole.Dark: "#0b1220",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#2563eb",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#60a5fa",
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7280"))
    return palette


def style_plot(plot: pg.PlotWidget, theme: Theme) -> None:
    """Restyle an existing plot: background, axes, tick labels and title colour."""
    plot.setBackground(theme.background)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getPlotItem().getAxis(name)
        axis.setPen(pg.mkPen(theme.axis))
        axis.setTextPen(pg.mkPen(theme.foreground))
    title = plot.getPlotItem().titleLabel
    if title.text:
        title.setText(title.text, color=theme.foreground)


class ThemeFollower(QObject):
    """Re-applies the theme when the desktop switches light/dark and the setting is "system".

    Emits :attr:`themeChanged` with the theme applied (by :meth:`apply` too).
    """

    themeChanged = Signal(object)

    def __init__(self, app: QApplication, settings: AppSettings) -> None:
        super().__init__(app)
        self._app = app
        self._settings = settings
        self.theme = LIGHT
        self._applying = False
        changed = getattr(app.styleHints(), "colorSchemeChanged", None)
        if changed is not None:
            changed.connect(self._on_scheme_changed)

    def apply(self, settings: AppSettings | None = None) -> Theme:
        """Apply ``settings`` (or the last ones) and emit :attr:`themeChanged`."""
        if settings is not None:
            self._settings = settings
        self._applying = True  # unsetColorScheme() may report a change while we apply
        try:
            self.theme = apply_theme(self._app, self._settings)
        finally:
            self._applying = False
        self.themeChanged.emit(self.theme)
        return self.theme

    def _on_scheme_changed(self, _scheme: object) -> None:
        if self._applying or self._settings.theme != "system":
            return
        if resolve_theme(self._app, "system") != self.theme:
            self.apply()
