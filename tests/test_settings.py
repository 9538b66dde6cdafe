"""The app's settings file: defaults, round trip, bad values. No Qt."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.settings import AppSettings, SettingsError, load_settings, save_settings
from desktop_app.settings.model import settings_path


def test_settings_live_in_the_user_config_dir(tmp_path: Path) -> None:
    # The autouse fixture points XDG_CONFIG_HOME into tmp_path.
    assert settings_path() == tmp_path / "xdg-config" / "traindesk" / "settings.toml"


def test_no_file_gives_the_defaults_without_warnings() -> None:
    assert load_settings() == (AppSettings(), [])
    assert not settings_path().exists()  # loading never writes


def test_the_model_imports_no_qt() -> None:
    code = (
        "import sys, desktop_app.settings; print(sorted(m for m in sys.modules if 'PySide' in m))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_round_trip(tmp_path: Path) -> None:
    settings = AppSettings(
        runs_dir=str(tmp_path / 'odd "name" \\ with ünïcode\tand tab'),
        refresh_ms=2500,
        smoothing_kind="moving",
        smoothing_value=50,
        theme="dark",
        confirm_delete=False,
        system_poll_s=2.5,
    )
    path = save_settings(settings)
    assert path == settings_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded, warnings = load_settings()
    assert warnings == []
    assert loaded == settings
    assert isinstance(loaded.refresh_ms, int) and isinstance(loaded.smoothing_value, float)


def test_bad_values_give_defaults_and_one_line_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    text = (
        "# my settings\n"
        'runs_dir = "/data/runs"\n'
        'refresh_ms = "fast"\n'
        'smoothing_kind = "ema"\n'
        "smoothing_value = 5\n"
        'theme = "purple"\n'
        'confirm_delete = "yes"\n'
        "system_poll_s = 0.1\n"
        "refersh_ms = 10\n"
    )
    path.write_text(text, encoding="utf-8")
    before = os.stat(path)
    with caplog.at_level(logging.WARNING):
        settings, warnings = load_settings()
    defaults = AppSettings()
    assert settings == dataclasses.replace(defaults, runs_dir="/data/runs")
    assert len(warnings) == 6
    assert all("\n" not in w for w in warnings)
    joined = "\n".join(warnings)
    for piece in (
        'refresh_ms = "fast" is not allowed (must be a number); using 1000',
        "smoothing_value = 5 is not allowed (an EMA weight must be at least 0 and below 1)",
        'theme = "purple" is not allowed (must be one of "system", "light", "dark")',
        'confirm_delete = "yes" is not allowed (must be true or false); using true',
        "system_poll_s = 0.1 is not allowed (must be between 1 s and 60 s)",
        "unknown setting 'refersh_ms' ignored (did you mean 'refresh_ms'?)",
    ):
        assert piece in joined
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == warnings
    # The user's file is left exactly as it was.
    assert path.read_text(encoding="utf-8") == text
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_smoothing_value_follows_its_kind() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('smoothing_kind = "moving"\n', encoding="utf-8")
    assert load_settings() == (AppSettings(smoothing_kind="moving", smoothing_value=20.0), [])
    path.write_text('smoothing_kind = "moving"\nsmoothing_value = 2.5\n', encoding="utf-8")
    settings, warnings = load_settings()
    assert settings.smoothing_value == 20.0
    assert len(warnings) == 1 and "whole number" in warnings[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"refresh_ms = = 3\n", "is not valid TOML"),
        (b"\xff\xfe not utf-8", "cannot read"),
    ],
)
def test_unreadable_files_give_defaults(content: bytes, expected: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    settings, warnings = load_settings()
    assert settings == AppSettings()
    assert len(warnings) == 1 and expected in warnings[0] and "using the defaults" in warnings[0]
    assert path.read_bytes() == content


def test_a_folder_in_the_files_place_gives_defaults() -> None:
    settings_path().mkdir(parents=True)
    settings, warnings = load_settings()
    assert settings == AppSettings() and len(warnings) == 1


def test_replace_checks_values() -> None:
    base = AppSettings()
    assert base.replace(theme="light").theme == "light"
    assert base.replace(refresh_ms=500.0).refresh_ms == 500
    with pytest.raises(SettingsError, match="refresh_ms: must be between 200 ms and 60000 ms"):
        base.replace(refresh_ms=50)
    with pytest.raises(ValueError, match="smoothing_value"):
        base.replace(smoothing_kind="moving")  # 0.6 is no window
    assert base.replace(smoothing_kind="moving", smoothing_value=5).smoothing_value == 5.0
    with pytest.raises(SettingsError, match="unknown setting") as info:
        base.replace(colour="red")
    assert info.value.key == "colour"


def test_save_refuses_bad_settings_and_writes_nothing() -> None:
    bad = dataclasses.replace(AppSettings(), theme="neon")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="theme"):
        save_settings(bad)
    assert not settings_path().exists()


def test_runs_dir_resolution(tmp_path: Path) -> None:
    assert AppSettings().resolved_runs_dir() == tmp_path / "runs"  # $TRAINDESK_HOME
    mine = AppSettings(runs_dir=str(tmp_path / "mine"))
    assert mine.resolved_runs_dir() == tmp_path / "mine"
    assert mine.resolved_runs_dir(str(tmp_path / "cli")) == tmp_path / "cli"
