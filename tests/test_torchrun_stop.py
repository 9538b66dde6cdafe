"""torchrun runs stop whole: no worker outlives `trainer stop`, Ctrl-C or a killed trainer.

torchrun starts each worker in a session of its own, out of reach of the trainer's process
group; these tests start real torchrun with 2 CPU ranks and check every process of the tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT, cli, spawn, wait_until
from trainer.journal import JournalReader

# With the other torchrun and chaos tests on one xdist worker: two torchruns of two ranks
# each at once, beside the rest of the suite, starve a 2-core machine.
pytestmark = pytest.mark.xdist_group("heavy")

QUICK = ["spirals", "--env", "quick", "--set", "threads=1", "--set", "max_steps=1000000",
         "--quiet"]  # fmt: skip
STUBBORN = ROOT / "tests" / "scripts" / "stubborn_rank.py"
DEADLINE = 4.0  # $TRAINDESK_STOP_DEADLINE for these runs


def tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def workers(pid: int, marker: str) -> list[psutil.Process]:
    found = []
    for proc in tree(pid):
        try:
            line = " ".join(proc.cmdline())
            if marker in line and "torch.distributed.run" not in line:  # not torchrun itself
                found.append(proc)
        except psutil.Error:
            continue
    return found


def status(folder: Path) -> str:
    with JournalReader(folder) as reader:
        return reader.run_info().status


@pytest.fixture
def started() -> Iterator[list[psutil.Process]]:
    """Every process a test saw; whatever is left at the end is killed (and fails it)."""
    seen: list[psutil.Process] = []
    yield seen
    left = running(seen)
    for proc in left:
        proc.kill()
    psutil.wait_procs(left, timeout=10)
    assert not left, f"processes outlived the test: {[p.pid for p in left]}"


def start_recipe(
    name: str, seen: list[psutil.Process]
) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    proc = spawn("run", *QUICK, "--name", name, "--nproc-per-node", "2",
                 TRAINDESK_STOP_DEADLINE=str(DEADLINE))  # fmt: skip
    seen.append(psutil.Process(proc.pid))
    ranks = wait_until(lambda: len(w := workers(proc.pid, "trainer.distributed")) == 2 and w,
                       180, "2 ranks started")  # fmt: skip
    seen += tree(proc.pid)
    assert len(running(seen)) >= 4  # trainer, torchrun, 2 ranks
    return proc, ranks


def test_trainer_stop_ends_every_rank(runs_dir: Path, started: list[psutil.Process]) -> None:
    proc, _ = start_recipe("stop", started)
    wait_until(lambda: (runs_dir / "stop" / "ranks.json").exists(), 120, "ranks' heartbeat")
    assert cli("stop", "stop").returncode == 0
    proc.communicate(timeout=120)
    assert running(started) == []  # none outlives the trainer
    assert status(runs_dir / "stop") == "stopped"


def test_ctrl_c_ends_every_rank(runs_dir: Path, started: list[psutil.Process]) -> None:
    proc, _ = start_recipe("ctrlc", started)
    wait_until(lambda: (runs_dir / "ctrlc" / "ranks.json").exists(), 120, "ranks' heartbeat")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends
    proc.communicate(timeout=120)
    assert running(started) == []
    assert status(runs_dir / "ctrlc") == "stopped"


def test_ranks_die_with_a_killed_trainer(runs_dir: Path, started: list[psutil.Process]) -> None:
    proc, ranks = start_recipe("killed", started)
    wait_until(lambda: (runs_dir / "killed" / "ranks.json").exists(), 120, "ranks' heartbeat")
    os.kill(proc.pid, signal.SIGKILL)  # the app's last resort
    proc.communicate(timeout=30)
    _gone, alive = psutil.wait_procs(ranks, timeout=30)
    assert not alive  # torchrun died with the trainer, and each rank with torchrun


def test_workers_that_ignore_sigterm_are_killed_within_the_deadline(
    runs_dir: Path, started: list[psutil.Process]
) -> None:
    proc = spawn("run", "--name", "stubborn", "--quiet", "--", sys.executable, "-m",
                 "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                 str(STUBBORN), TRAINDESK_STOP_DEADLINE=str(DEADLINE))  # fmt: skip
    started.append(psutil.Process(proc.pid))
    wait_until(lambda: len(workers(proc.pid, "stubborn_rank.py")) == 2, 180, "2 workers")
    started += tree(proc.pid)
    asked = time.monotonic()
    assert cli("stop", "stubborn").returncode == 0
    proc.communicate(timeout=120)
    took = time.monotonic() - asked
    assert running(started) == []
    assert status(runs_dir / "stubborn") == "stopped"
    # Killed at 0.8 x the deadline after SIGTERM, then recorded: not after torchrun's own 30 s.
    assert took < DEADLINE + 10, took
