"""The app as a real process: it never imports torch, and it starts, draws and exits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from trainer.journal.writer import JournalWriter

MakeRun = Callable[..., JournalWriter]  # the make_run fixture (conftest.py)


REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python args``; on timeout the child is killed (subprocess.run does it) and we fail."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_app_never_imports_torch() -> None:
    code = (
        "import desktop_app.main, desktop_app.main_window, desktop_app.runs_model; "
        "import sys; print('torch' in sys.modules)"
    )
    result = _run(["-c", code], _env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.gui
def test_app_process_takes_a_screenshot_and_exits(
    tmp_path: Path, runs_dir: Path, make_run: MakeRun
) -> None:
    make_run("first", losses=[1.0 / (i + 1) for i in range(200)], status="finished")
    make_run("second", losses=[2.0 / (i + 1) for i in range(100)], status="failed")
    (runs_dir / "garbage").mkdir()
    (runs_dir / "garbage" / "journal.sqlite").write_bytes(b"garbage" * 50)
    shot = tmp_path / "shots" / "window.png"
    args = ["-m", "desktop_app", "--runs-dir", str(runs_dir), "--screenshot", str(shot)]
    result = _run([*args, "--quit-after", "3"], _env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000


@pytest.mark.gui
def test_app_process_with_no_runs_still_screenshots_before_quitting(
    tmp_path: Path, runs_dir: Path
) -> None:
    shot = tmp_path / "empty.png"
    args = ["-m", "desktop_app", "--runs-dir", str(runs_dir), "--screenshot", str(shot)]
    result = _run([*args, "--quit-after", "0.2"], _env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes().startswith(PNG_MAGIC)
