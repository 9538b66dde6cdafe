"""Any command as a run: scripts for W&B, TensorBoard or print-only, unchanged, captured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.helpers import ROOT, cli, spawn, wait_until
from trainer.capture.printed import parser_for
from trainer.errors import UsageError
from trainer.export import read_series
from trainer.journal import JournalReader

SCRIPTS = ROOT / "tests" / "scripts" / "capture"
PY = sys.executable


def status(folder: Path) -> str:
    with JournalReader(folder) as reader:
        return reader.run_info().status


def test_a_wandb_script_runs_unchanged_under_capture_wandb(runs_dir: Path) -> None:
    done = cli("run", "--name", "wb", "--quiet", "--capture", "wandb", "--",
               PY, str(SCRIPTS / "wandb_script.py"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    series = read_series(runs_dir / "wb")
    loss = series["train/loss"]
    assert loss.steps.tolist() == list(range(20))
    np.testing.assert_allclose(loss.values, [1.0 / (s + 1) for s in range(20)])
    val = series["val/acc"]  # define_metric: plotted against its own step metric
    assert val.steps.tolist() == [1, 2, 3, 4] and val.values.tolist() == [0.25, 0.5, 0.75, 1.0]
    with JournalReader(runs_dir / "wb") as reader:
        events = {e.kind: e for e in reader.events()}
        assert reader.run_info().status == "finished"
    assert events["summary"].data["best_acc"] == 1.0
    assert events["config"].data == {"lr": 0.1, "epochs": 4}


def test_without_the_option_wandb_is_not_shadowed(runs_dir: Path) -> None:
    done = cli("run", "--name", "plain", "--quiet", "--", PY, "-c",
               "import wandb, sys; print(getattr(wandb, '__version__', '?'))")  # fmt: skip
    has_real = done.returncode == 0
    if has_real:
        assert "traindesk" not in done.stdout
    else:
        assert "No module named 'wandb'" in (runs_dir / "plain" / "logs" / "stderr.log").read_text()
        assert status(runs_dir / "plain") == "failed"


def test_tensorboard_logs_are_read_live_as_they_grow(runs_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch.utils.tensorboard")
    done = cli("run", "--name", "tb", "--quiet", "--capture", "tensorboard=tb", "--",
               PY, str(SCRIPTS / "tb_script.py"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    series = read_series(runs_dir / "tb")
    assert series["train/loss"].steps.tolist() == list(range(1, 31))
    np.testing.assert_allclose(series["train/loss"].values,
                               [np.float32(1.0 / s) for s in range(1, 31)])  # fmt: skip
    np.testing.assert_allclose(series["train/acc"].values[-1], 1.0)


def test_a_print_only_script_is_charted_from_its_lines(runs_dir: Path) -> None:
    done = cli("run", "--name", "pr", "--quiet", "--capture", "print:kv", "--",
               PY, str(SCRIPTS / "print_script.py"), "12")  # fmt: skip
    assert done.returncode == 0, done.stderr
    series = read_series(runs_dir / "pr")
    assert sorted(series) == ["acc", "loss"]
    assert series["loss"].steps.tolist() == list(range(1, 13))
    np.testing.assert_allclose(series["loss"].values, [round(1 / s, 6) for s in range(1, 13)])
    log = (runs_dir / "pr" / "logs" / "stdout.log").read_text()
    assert "training done" in log and "step 12 | loss=" in log  # the console is kept too
    regex = cli("run", "--name", "rx", "--quiet", "--capture",
                r"print:step (?P<step>\d+) \| loss=(?P<loss>[\d.]+)", "--",
                PY, str(SCRIPTS / "print_script.py"), "5")  # fmt: skip
    assert regex.returncode == 0, regex.stderr
    assert list(read_series(runs_dir / "rx")) == ["loss"]


def test_printed_line_presets() -> None:
    kv = parser_for("kv")
    assert kv("step 3 loss=0.5 acc: 0.25 lr=1e-4") == (3, {"loss": 0.5, "acc": 0.25, "lr": 1e-4})
    assert kv("loading data...") is None
    hf = parser_for("dict")
    assert hf("{'loss': 0.5, 'learning_rate': 5e-05, 'epoch': 0.1}") == (
        None, {"loss": 0.5, "learning_rate": 5e-05, "epoch": 0.1})  # fmt: skip
    with pytest.raises(UsageError, match="no named group for a metric"):
        parser_for(r"step (?P<step>\d+)")
    with pytest.raises(UsageError, match="not a valid regex"):
        parser_for("(")


def test_our_api_in_a_command_stops_checkpoints_and_resumes(runs_dir: Path) -> None:
    folder = runs_dir / "api"
    proc = spawn("run", "--name", "api", "--quiet", "--set", "step_sleep=0.05", "--",
                 PY, str(SCRIPTS / "api_script.py"))  # fmt: skip
    wait_until(lambda: (folder / "journal.sqlite").exists() and _step(folder) >= 8, 120, "step 8")
    assert cli("stop", "api").returncode == 0
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert status(folder) == "stopped"
    stopped_at = _step(folder)
    done = cli("resume", "api", "--quiet")
    assert done.returncode == 0, done.stderr
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert (info.status, info.attempt, info.step) == ("finished", 2, 40)
    total = read_series(folder)["train/total"]
    assert total.steps.tolist() == list(range(1, 41))
    np.testing.assert_allclose(total.values, np.cumsum(np.arange(1, 41)))
    assert stopped_at < 40


def test_a_killed_command_is_restarted_by_the_supervisor(runs_dir: Path) -> None:
    folder = runs_dir / "cmd"
    parent = spawn("run", "--name", "cmd", "--quiet", "--set", "step_sleep=0.05",
                   "--max-restarts", "2", "--backoff", "0.1", "--",
                   PY, str(SCRIPTS / "api_script.py"))  # fmt: skip
    wait_until(lambda: (folder / "journal.sqlite").exists() and _step(folder) >= 6, 120, "step 6")
    command = _command_child(parent)
    os.kill(command.pid, signal.SIGKILL)  # the user's command dies, not our trainer
    _, err = parent.communicate(timeout=300)
    assert parent.returncode == 0, err
    assert "restarting from its last checkpoint" in err
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert (info.status, info.attempt, info.step) == ("finished", 2, 40)
    np.testing.assert_allclose(read_series(folder)["train/total"].values[-1], 820.0)


def test_command_mistakes_get_one_line_errors(runs_dir: Path) -> None:
    done = cli("run", "--name", "x", "--", "no-such-command-here")
    assert done.returncode == 2 and "command 'no-such-command-here' not found" in done.stderr
    done = cli("run", "spirals", "--capture", "wandb")
    assert done.returncode == 2 and "--capture is for commands" in done.stderr
    done = cli("run", "--capture", "print:(", "--", PY, "-c", "pass")
    assert done.returncode == 2 and "not a valid regex" in done.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def _step(folder: Path) -> int:
    with JournalReader(folder) as reader:
        return reader.run_info().step


def _command_child(parent: subprocess.Popen[str]) -> psutil.Process:
    """The user's command under ``parent`` (a `trainer run`). Only its own process tree: the
    other test here runs the same script, maybe at the same time on the other worker, and
    killing that one's command made both tests fail."""
    for proc in psutil.Process(parent.pid).children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if any(part.endswith("api_script.py") for part in cmdline) and "-m" not in cmdline:
            return proc
    raise AssertionError(f"no command process under pid {parent.pid}")


def test_a_command_resumes_in_its_own_folder_with_its_arguments(
    runs_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "p.py").write_text((SCRIPTS / "print_script.py").read_text())
    done = cli("run", "--name", "rel", "--quiet", "--capture", "print:kv", "--",
               PY, "p.py", "4", "--", "ignored-by-the-script", cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with JournalReader(runs_dir / "rel") as reader:
        assert reader.run_info().entry.endswith("p.py 4 -- ignored-by-the-script")
    again = cli("resume", "rel", "--max-steps", "100", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with JournalReader(runs_dir / "rel") as reader:
        info = reader.run_info()
    assert (info.status, info.attempt) == ("finished", 2)
