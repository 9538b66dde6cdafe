"""Shared test helpers: run the real CLI in a child process, wait on conditions."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "scripts" / "tiny_train.py"
#: A training loop without torch (no checkpoints): for runs that only need to fail (at step
#: ``fail_at``), be killed or be alive and stepping.
NOTORCH = ROOT / "tests" / "scripts" / "notorch_train.py"
#: Python 3.12 and 3.13 run the torch-free tests without torch (`make test-pythons`); there,
#: a test skips where it would start a training process (`trainer run` or `resume`).
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def needs_torch(why: str = "it trains") -> None:
    """Skip the calling test where torch is not installed."""
    if not HAVE_TORCH:
        import pytest

        pytest.skip(f"needs torch ({why}); this interpreter has none")


def trainer_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(
    *args: str, timeout: float = 120, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trainer ARGS`` to completion and capture its output."""
    if args[:1] in (("run",), ("resume",)):
        needs_torch(f"trainer {args[0]}")
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=trainer_env(**env),
        cwd=cwd,
    )


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    """Start ``python -m trainer ARGS`` in its own process group."""
    if args[:1] in (("run",), ("resume",)):
        needs_torch(f"trainer {args[0]}")
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=trainer_env(**env),
        start_new_session=True,
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def visible_points(folder: Path) -> dict[str, dict[int, float]]:
    """Every visible point committed now, by key ({} while the journal cannot be read)."""
    from trainer.errors import JournalError
    from trainer.journal import JournalReader

    try:
        with JournalReader(folder) as reader:
            out = {}
            for key in reader.keys():  # noqa: SIM118 (a method, not a dict)
                s = reader.series(key)
                out[key] = dict(zip(s.steps.tolist(), s.values.tolist(), strict=True))
            return out
    except JournalError:
        return {}


def integrity(folder: Path) -> str:
    """SQLite's integrity_check of the run's journal ("ok" when sound)."""
    import sqlite3

    conn = sqlite3.connect(folder / "journal.sqlite")
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def assert_same_points(
    final: dict[str, dict[int, float]], expected: dict[str, dict[int, float]]
) -> None:
    """The same steps for every expected key, and the same values to 1e-6."""
    import numpy as np

    for key, points in expected.items():
        assert sorted(final[key]) == sorted(points), key
        np.testing.assert_allclose(
            [final[key][s] for s in sorted(points)], [points[s] for s in sorted(points)],
            atol=1e-6, rtol=0,
        )  # fmt: skip


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything below it, sessions of their own included (torchrun's
    workers): the whole tree is listed first, so no grandchild is orphaned and missed."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(procs, timeout=10)
