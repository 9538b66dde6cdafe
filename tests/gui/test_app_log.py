"""The app's own log: JSON lines in the user log folder, the run where known, the level from
the settings or $TRAINDESK_LOG_LEVEL, rotation by size, and the app writing it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.app_log import ENV_LOG_DIR, ENV_LOG_LEVEL, LOG_NAME, AppLog, log_path
from tests.helpers import ROOT, trainer_env

pytestmark = pytest.mark.gui


@pytest.fixture
def app_log(tmp_path: Path) -> Iterator[AppLog]:
    log = AppLog(tmp_path / "log" / LOG_NAME)
    yield log
    log.close()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_with_run_and_fields(app_log: AppLog) -> None:
    assert app_log.install("info") is None
    log = logging.getLogger("desktop_app.some.part")
    log.info("run launched", extra={"run": "r1", "fields": {"folder": "/runs/r1"}})
    log.debug("not at info")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    app_log.close()
    records = lines(app_log.path)
    assert records[0]["event"] == "app log started" and records[0]["run"] is None
    launched = records[1]
    assert {k: launched[k] for k in ("level", "component", "run", "event", "folder")} == {
        "level": "info", "component": "desktop_app.some.part", "run": "r1",
        "event": "run launched", "folder": "/runs/r1",
    }  # fmt: skip
    assert isinstance(launched["time"], float) and "T" in str(launched["iso"])
    assert all(r["event"] != "not at info" for r in records)
    assert "ValueError: boom" in str(records[-1]["traceback"])
    assert (app_log.path.stat().st_mode & 0o777) == 0o600


def test_level_from_settings_and_env(app_log: AppLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LOG_LEVEL, "debug")
    app_log.install("warning")  # the environment wins
    logging.getLogger("desktop_app.x").debug("a debug line")
    app_log.set_level("error")  # a settings change: the env still wins
    logging.getLogger("desktop_app.x").debug("still there")
    monkeypatch.setenv(ENV_LOG_LEVEL, "loud")
    app_log.set_level("error")  # a bad env value: the setting applies
    logging.getLogger("desktop_app.x").warning("not at error")
    app_log.close()
    events = [r["event"] for r in lines(app_log.path)]
    assert "a debug line" in events and "still there" in events
    assert "not at error" not in events


def test_bad_env_level_is_said(app_log: AppLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LOG_LEVEL, "loud")
    warning = app_log.install("info")
    assert warning is not None and ENV_LOG_LEVEL in warning


def test_rotates_by_size(app_log: AppLog) -> None:
    app_log.install("info")
    assert app_log.handler is not None
    app_log.handler.maxBytes = 4000
    for n in range(200):
        logging.getLogger("desktop_app.x").info("line %d", n)
    app_log.close()
    rotated = sorted(p.name for p in app_log.path.parent.iterdir())
    assert rotated == [LOG_NAME, f"{LOG_NAME}.1", f"{LOG_NAME}.2", f"{LOG_NAME}.3"]


def test_default_folder_is_the_user_log_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(ENV_LOG_DIR, raising=False)
    assert log_path() == tmp_path / "state" / "traindesk" / "log" / LOG_NAME
    monkeypatch.setenv(ENV_LOG_DIR, str(tmp_path / "mine"))
    assert log_path() == tmp_path / "mine" / LOG_NAME


def test_the_app_writes_its_log(runs_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "applog"
    env = trainer_env(QT_QPA_PLATFORM="offscreen", **{ENV_LOG_DIR: str(folder)})
    proc = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--runs-dir", str(runs_dir), "--quit-after", "1"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = lines(folder / LOG_NAME)
    assert records[0]["event"] == "app log started"
    assert records[0]["component"] == "desktop_app.app_log"


def test_settings_dialog_sets_the_level(qtbot: QtBot, tmp_path: Path) -> None:
    from desktop_app.settings.dialog import SettingsDialog
    from desktop_app.settings.model import AppSettings, load_settings

    path = tmp_path / "conf" / "settings.toml"
    dialog = SettingsDialog(AppSettings(), path=path)
    qtbot.addWidget(dialog)
    dialog.log_level.setCurrentIndex(dialog.log_level.findData("debug"))
    with qtbot.waitSignal(dialog.settingsAccepted) as blocker:
        dialog.accept()
    assert blocker.args[0].log_level == "debug"
    assert load_settings(path)[0].log_level == "debug"
