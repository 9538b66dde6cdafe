"""Smoke tests of the PyInstaller bundle: the frozen trainer and the frozen app, as users run
them. ``make bundle-test`` builds the bundle and runs these; elsewhere they are skipped unless
``TRAINDESK_BUNDLE`` names the bundle's executable (``dist/traindesk/traindesk``).

The bundle runs from a scratch folder with no PYTHONPATH, so it can only use what it carries.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import psutil
import pytest

from tests.helpers import wait_until
from trainer.journal import JournalReader
from trainer.journal.reader import RunInfo

BUNDLE = os.environ.get("TRAINDESK_BUNDLE", "")

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(
        not BUNDLE, reason="no bundle: run `make bundle-test`, or set TRAINDESK_BUNDLE"
    ),
]

#: A spirals run for the app to launch: about 10 s here, so it outlives the app (--quit-after).
APP_RUN = ["max_steps=1000", "n_points=800", "batch_size=64", "eval_every=100"]
APP_SECONDS = "6"


def bundle_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_bundle(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUNDLE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env if env is not None else bundle_env(),
        stdin=subprocess.DEVNULL,
    )


def run_info(folder: Path) -> RunInfo | None:
    """The run's journal row, or None while its journal does not exist yet."""
    if not (folder / "journal.sqlite").is_file():
        return None
    with JournalReader(folder) as reader:
        return reader.run_info()


def processes_using(runs: Path) -> list[str]:
    """Live processes whose command line names ``runs`` (the app's runs get --runs-dir)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(runs) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.info['pid']} {cmdline}")
    return found


def test_bundled_trainer_runs_a_recipe(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = run_bundle(
        "trainer", "run", "spirals", "--env", "quick", "--runs-dir", str(runs), "--name", "b1",
        "--quiet", cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = run_info(runs / "b1")
    assert info is not None
    assert (info.status, info.entry, info.step) == ("finished", "spirals", 200)


def test_bundled_app_launches_a_run_that_finishes(tmp_path: Path) -> None:
    """The app launches ``<bundle> trainer run`` (frozen: no python), and quits while the run
    may still train; the run goes on to the end and no process is left behind."""
    runs = tmp_path / "runs"
    state = tmp_path / "state.json"
    sets = [arg for value in APP_RUN for arg in ("--set", value)]
    app = run_bundle(
        "--runs-dir", str(runs), "--launch", "spirals", *sets, "--name", "b2",
        "--quit-after", APP_SECONDS, "--dump-state", str(state),
        cwd=tmp_path, timeout=120, env=bundle_env(QT_QPA_PLATFORM="offscreen"),
    )  # fmt: skip
    assert app.returncode == 0, app.stdout + app.stderr
    assert f"starting run b2: {BUNDLE} trainer run spirals" in app.stderr, app.stderr
    shown = json.loads(state.read_text(encoding="utf-8"))
    assert [run["name"] for run in shown["runs"]] == ["b2"], shown
    assert shown["error"] == "", shown

    def finished() -> RunInfo | None:
        info = run_info(runs / "b2")
        return info if info is not None and info.status == "finished" else None

    info = wait_until(finished, timeout=180, what="run b2 to finish")
    assert info.step == 1000
    assert info.entry == "spirals"
    wait_until(lambda: not processes_using(runs), timeout=30, what="the run's process to end")
    if info.pid is not None:
        assert not psutil.pid_exists(info.pid) or (
            psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
        )


def test_bundled_trainer_help_and_version(tmp_path: Path) -> None:
    proc = run_bundle("trainer", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: trainer"), proc.stdout
    proc = run_bundle("trainer", "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"trainer {version('traindesk')}"


def test_bundled_app_without_a_display_says_so(tmp_path: Path) -> None:
    env = bundle_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    proc = run_bundle(cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr
    assert "trainer run spirals" in proc.stderr
