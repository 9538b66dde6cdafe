"""The settings dialog and the light/dark theme, offscreen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from pytestqt.qtbot import QtBot

from desktop_app.settings import AppSettings, load_settings
from desktop_app.settings.dialog import SettingsDialog, changed_keys
from desktop_app.settings.theme import (
    DARK,
    LIGHT,
    ThemeFollower,
    apply_theme,
    palette_is_dark,
    resolve_theme,
    style_plot,
)

pytestmark = pytest.mark.gui


@pytest.fixture
def dialog(qtbot: QtBot, tmp_path: Path) -> SettingsDialog:
    dlg = SettingsDialog(AppSettings(), path=tmp_path / "conf" / "settings.toml")
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def save_button(dlg: SettingsDialog) -> Any:
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Save)


def test_the_dialog_is_not_modal_and_shows_the_settings(qtbot: QtBot, tmp_path: Path) -> None:
    settings = AppSettings(
        refresh_ms=1500, smoothing_kind="moving", smoothing_value=7, theme="dark"
    )
    dlg = SettingsDialog(settings, save=False)
    qtbot.addWidget(dlg)
    assert not dlg.isModal()
    assert dlg.values()["refresh_ms"] == 1500
    assert dlg.values()["smoothing_kind"] == "moving"
    assert dlg.values()["smoothing_value"] == 7
    assert dlg.values()["theme"] == "dark"
    assert dlg.validate() == settings


def test_save_writes_the_file_and_emits(qtbot: QtBot, dialog: SettingsDialog, tmp_path: Path):
    dialog.refresh_ms.setValue(3000)
    dialog.smoothing_kind.setCurrentIndex(dialog.smoothing_kind.findData("moving"))
    assert dialog.smoothing_value.value() == 20  # the moving window's default
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    dialog.confirm_delete.setChecked(False)
    dialog.runs_dir.setText(str(tmp_path / "runs-elsewhere"))
    with qtbot.waitSignal(dialog.settingsAccepted, timeout=5000) as blocker:
        save_button(dialog).click()
    saved = blocker.args[0]
    assert isinstance(saved, AppSettings)
    assert changed_keys(AppSettings(), saved) == [
        "runs_dir",
        "refresh_ms",
        "smoothing_kind",
        "smoothing_value",
        "theme",
        "confirm_delete",
    ]
    assert load_settings(tmp_path / "conf" / "settings.toml") == (saved, [])
    assert not dialog.isVisible()


def test_a_bad_value_disables_save_and_writes_nothing(
    qtbot: QtBot, dialog: SettingsDialog, tmp_path: Path
) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    dialog.runs_dir.setText(str(a_file))
    assert dialog.error_label.isVisible()
    assert "is a file, not a folder" in dialog.error_label.text()
    assert not save_button(dialog).isEnabled()
    dialog.accept()  # e.g. Enter pressed: still refused
    assert dialog.isVisible()
    assert not (tmp_path / "conf" / "settings.toml").exists()
    dialog.runs_dir.setText("")
    assert save_button(dialog).isEnabled() and not dialog.error_label.isVisible()


def test_restore_defaults(dialog: SettingsDialog) -> None:
    dialog.refresh_ms.setValue(9000)
    dialog.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).click()
    assert dialog.validate() == AppSettings()


@pytest.fixture
def app_theme(qapp: QApplication) -> Iterator[QApplication]:
    """Put the application's look and pyqtgraph's colours back after the test."""
    style, palette = qapp.style().name(), qapp.palette()
    options = {k: pg.getConfigOption(k) for k in ("background", "foreground")}
    yield qapp
    apply_theme(qapp, AppSettings(theme="system"))
    qapp.setStyle(style)
    qapp.setPalette(palette)
    pg.setConfigOptions(**options)


def test_apply_theme_dark_light_and_system(qtbot: QtBot, app_theme: QApplication) -> None:
    theme = apply_theme(app_theme, AppSettings(theme="dark"))
    assert theme == DARK and palette_is_dark(app_theme.palette())
    assert pg.getConfigOption("background") == DARK.background
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.setTitle("loss")
    style_plot(plot, theme)

    theme = apply_theme(app_theme, AppSettings(theme="light"))
    assert theme == LIGHT and not palette_is_dark(app_theme.palette())
    assert pg.getConfigOption("foreground") == LIGHT.foreground

    theme = apply_theme(app_theme, AppSettings(theme="system"))
    assert theme == resolve_theme(app_theme, "system")
    assert palette_is_dark(app_theme.palette()) == theme.dark


def test_theme_follower_emits(qtbot: QtBot, app_theme: QApplication) -> None:
    follower = ThemeFollower(app_theme, AppSettings(theme="dark"))
    with qtbot.waitSignal(follower.themeChanged, timeout=5000) as blocker:
        follower.apply()
    assert blocker.args == [DARK]
    assert follower.apply(AppSettings(theme="light")) == LIGHT
    follower.deleteLater()
