"""torchrun with 2 processes on the CPU (gloo): ranks, DDP equivalence, elastic restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.helpers import cli, kill_tree, trainer_env, wait_until
from trainer.export import read_series
from trainer.journal import JournalReader

QUICK = ["spirals", "--env", "quick", "--set", "threads=1", "--quiet"]
# Two ranks each: with the chaos suite on one pytest-xdist worker, one after another.
pytestmark = pytest.mark.xdist_group("heavy")


def events(folder: Path) -> list[tuple[str, str, object]]:
    with JournalReader(folder) as reader:
        return [(e.kind, e.message, e.data) for e in reader.events()]


def test_two_ranks_train_like_one_process_on_the_same_global_batch(runs_dir: Path) -> None:
    single = cli("run", *QUICK, "--name", "single")
    assert single.returncode == 0, single.stderr
    done = cli("run", *QUICK, "--name", "ddp", "--nproc-per-node", "2", timeout=300)
    assert done.returncode == 0, done.stderr
    ranks = json.loads((runs_dir / "ddp" / "ranks.json").read_text())["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    assert all(r["pid"] and r["host"] and r["device"] == "cpu" for r in ranks)
    kinds = [k for k, _, _ in events(runs_dir / "ddp")]
    assert kinds.count("rank") == 2 and kinds[-1] == "finished"
    one, two = read_series(runs_dir / "single"), read_series(runs_dir / "ddp")
    for key in ("train/loss", "val/loss", "val/acc"):
        assert one[key].steps.tolist() == two[key].steps.tolist(), key
        np.testing.assert_allclose(two[key].values, one[key].values, rtol=1e-3, atol=1e-4)
    with JournalReader(runs_dir / "ddp") as reader:
        info = reader.run_info()
    assert (info.status, info.step, info.kind) == ("finished", 200, "distributed")


# Each wait below is a liveness deadline, not a speed claim, and together they stay inside
# this test's own timeout, so a failure reports which wait ran out and the finally: clause
# kills the trainer, torchrun and its workers (each worker in a session of its own).
# The restarted ranks used to fail to connect now and then on a loaded machine (Gloo
# connectFullMesh: connection refused, torchrun out of restarts): they shared torchrun's
# rendezvous store with the previous attempt's keys in it (see CommandDriver._env).
@pytest.mark.timeout(600)
def test_a_killed_rank_is_restarted_by_torchrun_and_the_journal_records_it(
    runs_dir: Path, tmp_path: Path
) -> None:
    folder = runs_dir / "elastic"
    # The step budget only has to outlast the kill: the run is stopped once it has made a
    # checkpoint after the restart, whatever the machine's speed. Its output goes to a file:
    # a pipe nobody reads while it runs could fill up and block it.
    output = tmp_path / "output.txt"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainer", "run", *QUICK, "--name", "elastic",
             "--nproc-per-node", "2", "--set", "max_steps=100000",
             "--set", "checkpoint_every=50"],
            stdout=out, stderr=subprocess.STDOUT, env=trainer_env(), start_new_session=True,
        )  # fmt: skip
    ranks_file = folder / "ranks.json"

    def rank1_running() -> int | None:
        try:
            ranks = json.loads(ranks_file.read_text())["ranks"]
        except (OSError, ValueError, KeyError):
            return None
        found = [r for r in ranks if r["rank"] == 1 and r["step"] >= 150]
        return found[0]["pid"] if found else None

    def checkpointed_after_restart() -> bool:
        found = events(folder)
        restarted = [i for i, (kind, _, _) in enumerate(found) if kind == "elastic_restart"]
        return bool(restarted) and any(k == "checkpoint" for k, _, _ in found[restarted[0] :])

    try:
        pid = wait_until(rank1_running, 150, "rank 1 past step 150")
        # Each attempt gets a rendezvous store of its own (torchrun passes its environment on).
        assert psutil.Process(pid).environ().get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") == "1"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: proc.poll() is not None or checkpointed_after_restart(), 240,
                   "a checkpoint after the restart")  # fmt: skip
        assert proc.poll() is None, f"the run ended early:\n{output.read_text()[-4000:]}"
        stop = cli("stop", "elastic")
        assert stop.returncode == 0, stop.stderr
        proc.wait(timeout=120)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    assert proc.returncode == 0, output.read_text()[-4000:]
    found = events(folder)
    restarts = [data for kind, _, data in found if kind == "elastic_restart"]
    # torchrun restarts every worker; on a loaded machine a restarted worker can fail again
    # before its first beat, so the first restart journaled may be the second one.
    assert restarts and isinstance(restarts[0], dict) and restarts[0]["restart"] >= 1
    ranks = sum(1 for kind, _, _ in found if kind == "rank")
    assert ranks >= 4 and ranks % 2 == 0  # both ranks, before and after each restart seen
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert info.status == "stopped" and 150 < info.step < 100000
    loss = read_series(folder)["train/loss"]
    assert loss.steps[-1] <= info.step and np.all(np.diff(loss.steps) > 0)


def test_distributed_mistakes_get_one_line_errors(runs_dir: Path) -> None:
    done = cli("run", "spirals", "--nproc-per-node", "2", "--nnodes", "2")
    assert done.returncode == 2 and "needs --rdzv-endpoint" in done.stderr
    done = cli("run", "spirals", "--nproc-per-node", "0")
    assert done.returncode == 2 and "must be 1 or more" in done.stderr
