"""torchrun with 2 processes on the CPU (gloo): ranks, DDP equivalence, elastic restarts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np

from tests.helpers import cli, spawn, wait_until
from trainer.export import read_series
from trainer.journal import JournalReader

QUICK = ["spirals", "--env", "quick", "--set", "threads=1", "--quiet"]


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


def test_a_killed_rank_is_restarted_by_torchrun_and_the_journal_records_it(
    runs_dir: Path,
) -> None:
    folder = runs_dir / "elastic"
    proc = spawn("run", *QUICK, "--name", "elastic", "--nproc-per-node", "2",
                 "--set", "max_steps=4000", "--set", "checkpoint_every=100")  # fmt: skip
    ranks_file = folder / "ranks.json"

    def rank1_running() -> int | None:
        try:
            ranks = json.loads(ranks_file.read_text())["ranks"]
        except (OSError, ValueError, KeyError):
            return None
        found = [r for r in ranks if r["rank"] == 1 and r["step"] >= 150]
        return found[0]["pid"] if found else None

    pid = wait_until(rank1_running, 180, "rank 1 past step 150")
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    found = events(folder)
    restarts = [data for kind, _, data in found if kind == "elastic_restart"]
    # torchrun restarts every worker; on a loaded machine a restarted worker can fail again
    # before its first beat, so the first restart journaled may be the second one.
    assert restarts and isinstance(restarts[0], dict) and restarts[0]["restart"] >= 1
    ranks = sum(1 for kind, _, _ in found if kind == "rank")
    assert ranks >= 4 and ranks % 2 == 0  # both ranks, before and after each restart seen
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert (info.status, info.step) == ("finished", 4000)
    loss = read_series(folder)["train/loss"]
    assert loss.steps[-1] == 4000 and np.all(np.diff(loss.steps) > 0)


def test_distributed_mistakes_get_one_line_errors(runs_dir: Path) -> None:
    done = cli("run", "spirals", "--nproc-per-node", "2", "--nnodes", "2")
    assert done.returncode == 2 and "needs --rdzv-endpoint" in done.stderr
    done = cli("run", "spirals", "--nproc-per-node", "0")
    assert done.returncode == 2 and "must be 1 or more" in done.stderr
