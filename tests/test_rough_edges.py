"""The trainer's small things: pause and stop that wait and report, names, the runs directory,
progress lines for slow runs, a killed command, supervisors that leave config errors alone."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from tests.fsutil import read_only
from tests.helpers import TINY, cli, spawn, wait_until
from trainer.cli.console import Progress, RateMeter, rate_text
from trainer.errors import UsageError
from trainer.journal import JournalReader
from trainer.paths import validate_run_name
from trainer.runs import summarize


def status(folder: Path) -> str:
    return summarize(folder, with_latest=False).status


def events(folder: Path) -> list[tuple[str, str]]:
    with JournalReader(folder) as reader:
        return [(e.kind, e.message) for e in reader.events()]


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    return out, err


# ------------------------------------------------------------------ pause, resume, stop
def test_pause_returns_once_paused_so_pause_then_resume_works_with_slow_steps(
    runs_dir: Path,
) -> None:
    # Steps of 1.5 s: `pause` must wait for the next safe point, or `resume` finds the run
    # still running and refuses (the README's `trainer pause lm && trainer resume lm`).
    proc = spawn("run", str(TINY), "--name", "slow", "--quiet", "--set", "max_steps=1000",
                 "--set", "step_sleep=1.5", "--set", "checkpoint_every=1000")  # fmt: skip
    folder = runs_dir / "slow"
    wait_until(lambda: folder.exists() and status(folder) == "running", 120, "running")
    paused = cli("pause", "slow")
    assert paused.returncode == 0, paused.stderr
    assert status(folder) == "paused"  # it returned only once the run had paused
    assert re.search(r"slow is paused at step \d+", paused.stdout), paused.stdout
    resumed = cli("resume", "slow")
    assert resumed.returncode == 0, resumed.stderr
    wait_until(lambda: status(folder) == "running", 30, "running again")
    again = cli("pause", "slow", "--no-wait")  # the old behaviour, on request
    assert again.returncode == 0 and "acts at its next safe point" in again.stdout
    stopped = cli("stop", "slow")
    assert stopped.returncode == 0, stopped.stderr
    finish(proc)
    assert proc.returncode == 0


def test_stop_reports_the_step_of_the_checkpoint_it_wrote(runs_dir: Path) -> None:
    # log_every=7: a stop between two logged steps used to report the last logged step
    # while its checkpoint was at a later one.
    proc = spawn("run", "spirals", "--name", "lm", "--quiet", "--set", "max_steps=100000",
                 "--set", "log_every=7", "--set", "eval_every=1000",
                 "--set", "checkpoint_every=0")  # fmt: skip
    folder = runs_dir / "lm"
    wait_until(lambda: folder.exists() and summarize(folder).step >= 14, 120, "some steps")
    stopped = cli("stop", "lm")
    out, _ = finish(proc)
    assert stopped.returncode == 0, stopped.stderr
    match = re.search(r"lm stopped at step (\d+): its checkpoint at step (\d+) \((\S+)\)",
                      stopped.stdout)  # fmt: skip
    assert match, stopped.stdout
    step, ckpt_step, ckpt_file = int(match[1]), int(match[2]), match[3]
    assert step == ckpt_step
    assert ckpt_file == f"ckpt-{step:09d}.pt" and (folder / "checkpoints" / ckpt_file).is_file()
    assert summarize(folder).step == step
    assert f"run lm stopped at step {step}" in out  # the run's own terminal agrees


def test_pause_of_an_ended_run_says_so(finished_tiny: Path) -> None:
    paused = cli("pause", "tiny")
    assert paused.returncode == 2
    assert (
        paused.stderr.strip() == ("error: run tiny is not live (status: finished)")
        and "Traceback" not in paused.stderr
    )


# ------------------------------------------------------------------ a run killed outright
def test_a_command_killed_by_a_signal_is_crashed_with_the_signal_journaled(
    runs_dir: Path,
) -> None:
    code = "import time; print('ready', flush=True); time.sleep(600)"
    proc = spawn("run", "--name", "victim", "--quiet", "--", sys.executable, "-c", code)
    folder = runs_dir / "victim"
    log = folder / "logs" / "stdout.log"
    # The line alone: the first line of the log quotes the command, "ready" included.
    wait_until(lambda: log.is_file() and "ready" in log.read_text().splitlines(), 120, "ready")
    (child,) = psutil.Process(proc.pid).children()
    child.send_signal(signal.SIGKILL)
    _, err = finish(proc)
    assert proc.returncode == 128 + signal.SIGKILL  # as a shell says it: supervisors read it
    assert status(folder) == "crashed"
    kinds = events(folder)
    assert ("crashed", "the command was killed by SIGKILL") in kinds
    assert not [k for k, _ in kinds if k in ("error", "failed")]  # not a training error
    assert "crashed: the command was killed by SIGKILL" in err


# ------------------------------------------------------------------ supervisors
def test_a_config_error_is_not_restarted_by_the_supervisor(runs_dir: Path) -> None:
    started = time.monotonic()
    done = cli("run", "spirals", "--set", "lr=fast", "--max-restarts", "3", "--name", "bad")
    assert done.returncode == 2
    assert "error: config key 'lr': 'fast' is a string" in done.stderr
    assert "not restarted" in done.stderr and "Traceback" not in done.stderr
    assert "restart" not in done.stderr.replace("not restarted", "")
    assert time.monotonic() - started < 60  # no backoff waits


def test_a_read_only_runs_dir_is_explained_and_not_restarted(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        done = cli("run", str(TINY), "--runs-dir", str(locked), "--max-restarts", "2",
                   "--name", "r", "--set", "max_steps=3")  # fmt: skip
    assert done.returncode == 2
    assert "read-only" in done.stderr and "--runs-dir" in done.stderr
    assert "Traceback" not in done.stderr and "restart in" not in done.stderr
    assert not (locked / "r").exists()


def test_a_missing_runs_dir_is_an_error_not_created_silently(tmp_path: Path) -> None:
    typo = tmp_path / "rnus"
    listed = cli("ls", "--runs-dir", str(typo))
    assert listed.returncode == 2
    assert listed.stderr.strip() == (
        f"error: the runs directory {typo} does not exist: check --runs-dir for a typo "
        "(`trainer run` creates a new one)"
    )
    deep = tmp_path / "nope" / "runs"
    ran = cli("run", str(TINY), "--runs-dir", str(deep), "--set", "max_steps=3", "--quiet")
    assert ran.returncode == 2 and "nor does its parent" in ran.stderr
    assert not deep.parent.exists()
    fresh = tmp_path / "fresh"
    ran = cli("run", str(TINY), "--runs-dir", str(fresh), "--name", "a", "--set", "max_steps=3",
              "--quiet")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert f"note: created the runs directory {fresh}" in ran.stderr
    assert status(fresh / "a") == "finished"


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("name", ["my run", "Lauf ä-1", "モデル 2", "x..y", "a+b_c.d"])
def test_printable_run_names_are_accepted(name: str) -> None:
    assert validate_run_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a/b", "contains a path separator that a folder name cannot have (/)"),
        ("a:b", "contains a character that a folder name cannot have (:)"),
        ("..", "is not a folder name"),
        ("-x", "starts with '-'"),
        (" x", "starts with ' '"),
        ("x.", "ends with '.'"),
        ("tab\there", "contains a control or unprintable character"),
        ("NUL", "is a device name on Windows"),
        ("x" * 101, "is 101 characters long"),
    ],
)
def test_bad_run_names_say_exactly_what_is_accepted(name: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_run_name(name)
    message = str(caught.value)
    assert f"run name {name!r} {problem}: use any printable characters" in message
    assert '/ \\ : * ? " < > |' in message and "\n" not in message


def test_a_run_with_spaces_and_accents_in_its_name_runs_and_is_found(runs_dir: Path) -> None:
    name = "essai à 2"
    ran = cli("run", str(TINY), "--name", name, "--set", "max_steps=3", "--quiet")
    assert ran.returncode == 0, ran.stderr
    shown = cli("show", name)
    assert shown.returncode == 0 and shown.stdout.startswith(f"{name}  (")
    assert status(runs_dir / name) == "finished"


# ------------------------------------------------------------------ progress lines
def test_rate_text_shows_slow_runs_as_seconds_per_step() -> None:
    assert rate_text(None) == "-- steps/s"
    assert rate_text(250.0) == "250 steps/s"
    assert rate_text(3.14) == "3.1 steps/s"
    assert rate_text(1 / 42.0) == "42.0 s/step"


def test_rate_meter_counts_running_time_only_and_falls_back_for_slow_runs() -> None:
    meter = RateMeter(0, now=0.0)
    assert meter.update(0, 5.0) is None  # no step yet
    assert meter.update(1, 10.0) == pytest.approx(0.1)  # one step in 10 s: the average
    assert meter.update(1, 70.0, running=False) == pytest.approx(0.1)  # 60 s paused: not counted
    assert meter.update(11, 75.0) == pytest.approx(2.0)  # ten steps in the last 5 s


def test_a_paused_run_shows_no_rate_and_no_eta() -> None:
    run = SimpleNamespace(step=40, max_steps=100, state="paused", last_metrics={}, name="p")
    assert Progress(run)._line(2.0) == "step 40/100 (40%) paused"  # type: ignore[arg-type]
    run.state = "running"
    line = Progress(run)._line(2.0)  # type: ignore[arg-type]
    assert line == "step 40/100 (40%) 2.0 steps/s eta 30s"


def test_piped_runs_print_progress_lines_also_for_slow_steps(runs_dir: Path) -> None:
    # Not --quiet and not a terminal: as the desktop app starts a run. 2.5 s a step.
    ran = cli("run", str(TINY), "--name", "crawl", "--set", "max_steps=5",
              "--set", "step_sleep=2.5", timeout=180)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = [line for line in ran.stdout.splitlines() if line.startswith("[crawl] step ")]
    assert lines, ran.stdout
    assert all(re.fullmatch(r"\[crawl\] step \d/5 \(\d+%\) (-- steps/s|\d+\.\d s/step( eta \d+s)?)"
                            r"( train/loss=\S+)?( train/w0=\S+)?", line)
               for line in lines), lines  # fmt: skip
    assert any("s/step" in line for line in lines)
    assert (runs_dir / "crawl" / "logs" / "stdout.log").read_text().count("[crawl] step") == len(
        lines
    )
