"""Controlling live runs: stop, pause, resume, checkpoint now, extend, and signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.helpers import TINY, cli, spawn, wait_until
from trainer import control
from trainer.journal import JournalReader
from trainer.paths import RunPaths
from trainer.runs import summarize


def status(folder: Path) -> str:
    return summarize(folder, with_latest=False).status


def step(folder: Path) -> int:
    return summarize(folder, with_latest=False).step


def event_kinds(folder: Path) -> list[str]:
    with JournalReader(folder) as reader:
        return [e.kind for e in reader.events()]


def slow_run(name: str, steps: int = 100000) -> tuple[object, Path]:
    proc = spawn("run", str(TINY), "--name", name, "--quiet", "--set", f"max_steps={steps}",
                 "--set", "step_sleep=0.01", "--set", "checkpoint_every=1000")  # fmt: skip
    return proc, Path(os.environ["TRAINDESK_HOME"]) / name


def test_pause_resume_checkpoint_extend_stop_from_the_cli(runs_dir: Path) -> None:
    proc, folder = slow_run("ctl", steps=400)
    wait_until(lambda: folder.exists() and status(folder) == "running", 120, "running")
    wait_until(lambda: step(folder) >= 5, 120, "some steps")

    assert cli("pause", "ctl", "--wait").returncode == 0
    assert status(folder) == "paused"
    paused_at = step(folder)
    hb_before = summarize(folder).updated
    # While paused the step stands still but the heartbeat goes on.
    wait_until(lambda: (summarize(folder).updated or 0) > (hb_before or 0) + 0.4, 10, "heartbeats")
    assert step(folder) == paused_at

    assert cli("checkpoint", "ctl").returncode == 0
    assert cli("extend", "ctl", "100").returncode == 0
    resumed = cli("resume", "ctl")
    assert resumed.returncode == 0 and "resume requested" in resumed.stdout
    wait_until(lambda: status(folder) == "running" and step(folder) > paused_at, 30, "resumed")
    wait_until(lambda: "checkpoint" in event_kinds(folder), 30, "the requested checkpoint")
    assert summarize(folder).max_steps == 500

    assert cli("stop", "ctl", "--wait").returncode == 0
    proc.communicate(timeout=60)  # type: ignore[attr-defined]
    assert proc.returncode == 0  # type: ignore[attr-defined]
    assert status(folder) == "stopped"
    kinds = event_kinds(folder)
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("stopped")
    assert "extended" in kinds
    final = summarize(folder).step
    ckpts = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert ckpts[-1] == f"ckpt-{final:09d}.pt"  # the stop saved a checkpoint

    # Restart the stopped run from its checkpoint as attempt 2, to the end.
    again = cli("resume", "ctl", "--quiet", timeout=300)
    assert again.returncode == 0, again.stderr
    info = summarize(folder)
    assert (info.status, info.attempt, info.step) == ("finished", 2, 500)


def test_sigterm_and_sigint_stop_cleanly_with_status_stopped(runs_dir: Path) -> None:
    for sig, name in ((signal.SIGTERM, "term"), (signal.SIGINT, "int")):
        proc, folder = slow_run(name)
        wait_until(lambda f=folder: f.exists() and step(f) >= 3, 120, "steps")  # type: ignore[misc]
        os.kill(proc.pid, sig)  # type: ignore[attr-defined]
        proc.communicate(timeout=60)  # type: ignore[attr-defined]
        assert proc.returncode == 0  # type: ignore[attr-defined]
        info = summarize(folder)
        assert info.status == "stopped"
        assert info.exit_reason == f"{signal.Signals(sig).name} received"
        assert (folder / "checkpoints" / f"ckpt-{info.step:09d}.pt").is_file()


def test_a_second_sigint_exits_at_once_with_the_journal_intact(runs_dir: Path) -> None:
    proc, folder = slow_run("twice")
    wait_until(lambda: folder.exists() and step(folder) >= 3, 120, "steps")
    # Pause so the first SIGINT cannot complete the stop before the second arrives.
    assert cli("pause", "twice", "--wait").returncode == 0
    with JournalReader(folder) as reader:
        before = len(reader.series("train/loss"))
    os.kill(proc.pid, signal.SIGINT)  # type: ignore[attr-defined]
    wait_until(lambda: status(folder) in {"stopping", "stopped"}, 30, "stopping")
    if status(folder) == "stopping":
        os.kill(proc.pid, signal.SIGINT)  # type: ignore[attr-defined]
    proc.communicate(timeout=60)  # type: ignore[attr-defined]
    assert proc.returncode in (0, 130)  # type: ignore[attr-defined]
    with JournalReader(folder) as reader:
        assert len(reader.series("train/loss")) >= before
    assert status(folder) in {"stopped", "crashed"}


def test_control_commands_refuse_runs_that_are_not_live(finished_tiny: Path) -> None:
    for command in ("stop", "pause", "checkpoint"):
        proc = cli(command, "tiny")
        assert proc.returncode == 2
        assert "is not live (status: finished)" in proc.stderr
    proc = cli("resume", "tiny")
    assert proc.returncode == 2 and "give --max-steps" in proc.stderr
    more = cli("resume", "tiny", "--max-steps", "9", "--quiet")
    assert more.returncode == 0, more.stderr
    assert summarize(finished_tiny).step == 9


def test_a_garbage_message_is_set_aside_not_read_again(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "r")
    run.create()
    control.send(run, "stop")
    (run.control / "00000000000000000001-bad.json").write_text("{not json")
    assert [m.command for m in control.receive(run)] == ["stop"]
    assert not control.pending(run)
    assert (run.control / "00000000000000000001-bad.json.bad").exists()
