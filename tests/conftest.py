"""Every test gets its own runs and settings dirs, and fails if it leaves a process behind."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("TRAINDESK_HOME", str(runs))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in ("TRAINDESK_RUN_DIR", "TRAINDESK_ENV", "TRAINDESK_ENTRY"):
        monkeypatch.delenv(name, raising=False)
    return runs


@pytest.fixture
def runs_dir(isolated_dirs: Path) -> Path:
    return isolated_dirs


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    leaked = [p for p in me.children(recursive=True) if p.pid not in before]
    alive = []
    for proc in leaked:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline()[:4])}")
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(leaked, timeout=5)
    assert not alive, f"test leaked processes: {alive}"
