"""Run folders from elsewhere: copied folders open, foreign checkpoints cannot run code."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import stat
from pathlib import Path

from tests.helpers import TINY, cli
from trainer.runs import summarize


class _Exploit:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_checkpoint_is_never_executed_on_resume(
    finished_tiny: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = finished_tiny / "checkpoints" / "ckpt-000000999.pt"
    hostile.write_bytes(pickle.dumps({"format": 1, "step": 999, "state": _Exploit(marker)}))
    proc = cli("resume", "tiny", "--max-steps", "25", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "unpickling the checkpoint executed code"
    assert "cannot be loaded" in proc.stderr  # skipped with a warning, and kept
    assert hostile.exists()
    info = summarize(finished_tiny)
    assert (info.status, info.step, info.attempt) == ("finished", 25, 2)


def test_a_copied_run_folder_opens_elsewhere(finished_tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "tiny-copy"
    shutil.copytree(finished_tiny, copy)
    shown = cli("show", str(copy), "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"status": "finished"' in shown.stdout
    # A run that was live on another machine when copied shows as crashed once its heartbeat
    # is stale, never as running.
    conn = sqlite3.connect(copy / "journal.sqlite")
    conn.execute("UPDATE run SET status = 'running', host = 'some-other-host'")
    conn.execute("UPDATE heartbeat SET wall = wall - 60")
    conn.commit()
    conn.close()
    assert summarize(copy).status == "crashed"


def test_run_folders_are_private(runs_dir: Path) -> None:
    assert cli("run", str(TINY), "--name", "p", "--set", "max_steps=12", "--quiet").returncode == 0
    folder = runs_dir / "p"
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        elif not path.name.endswith(("-wal", "-shm")):
            assert mode & 0o077 == 0, (path, oct(mode))


def test_piped_output_gets_plain_progress_lines(runs_dir: Path) -> None:
    proc = cli("run", str(TINY), "--name", "piped", "--set", "max_steps=700",
               "--set", "step_sleep=0.01", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[piped] step ")]
    assert lines, proc.stdout
    assert "\x1b[" not in proc.stdout  # no terminal control codes when piped
    # A line comes every 5 s from the start, so on a loaded machine the first may come while
    # the script still imports torch ("step 0/700 (0%) -- steps/s"). The 700 steps sleep 7 s
    # between them, so at least one line comes once the run has steps and metrics.
    stepped = [ln for ln in lines if not ln.startswith("[piped] step 0/")]
    assert stepped, lines
    assert all(ln.startswith("[piped] step 0/700 (0%) -- steps/s") for ln in lines[: -len(stepped)])
    assert "steps/s" in stepped[0] and "--" not in stepped[0] and "train/loss=" in stepped[0]
