"""The supervisor with real child trainer processes: output, stop, crash, shutdown, detach,
restarts by the policy and their cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.console import LogConsole
from desktop_app.runs_ctl.spec import (
    LaunchSpec,
    resume_args,
    run_argv,
    trainer_command,
)
from desktop_app.runs_ctl.supervisor import Supervisor
from tests.gui.supervisor_recorder import Recorder, end_supervision, record
from trainer.journal.reader import JournalReader
from trainer.runs import summarize
from trainer.supervision.policy import HealthPolicy, RestartPolicy

pytestmark = pytest.mark.gui

TINY = Path(__file__).resolve().parents[1] / "scripts" / "tiny_train.py"
#: A training loop without torch or checkpoints (tests.helpers.NOTORCH): for runs that only
#: fail, get killed or have to be alive.
NOTORCH = TINY.with_name("notorch_train.py")
START_MS = 60_000  # a child imports torch first: allow for a slow, shared machine
#: Restarts for the tests that want them: quick, no jitter.
FAST_RESTART = RestartPolicy(max_restarts=2, backoff_initial=0.2, jitter=0.0)
NO_RESTART = RestartPolicy(max_restarts=0)


# ---------------------------------------------------------------------- argv (no Qt needed)
def test_run_argv_for_a_recipe_and_a_script(tmp_path: Path) -> None:
    spec = LaunchSpec(
        "spirals", ["lr=0.02"], name="a", device="cpu", runs_dir=tmp_path, max_steps=9
    )
    assert run_argv(spec) == [
        sys.executable, "-m", "trainer", "run", "spirals", "--set=lr=0.02", "--name=a",
        "--device=cpu", "--max-steps=9", f"--runs-dir={tmp_path}",
    ]  # fmt: skip
    script = LaunchSpec("scripts/x.py")
    argv = run_argv(script)
    assert argv[4] == str(Path.cwd() / "scripts" / "x.py") and script.is_script
    assert argv[5:] == []  # no --quiet: progress lines reach the app's console
    assert resume_args(tmp_path / "r", 50) == [
        "resume", str(tmp_path / "r"), "--max-steps=50", f"--runs-dir={tmp_path}",
    ]  # fmt: skip


def test_frozen_app_runs_its_own_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert trainer_command("ls") == [sys.executable, "trainer", "ls"]


def test_resolved_spec_gets_a_free_name(runs_dir: Path) -> None:
    first = LaunchSpec("spirals", runs_dir=runs_dir).resolved()
    assert first.name is not None and first.name.startswith("spirals-")
    (runs_dir / first.name).mkdir()
    second = LaunchSpec("spirals", runs_dir=runs_dir).resolved()
    assert second.name == f"{first.name}-2"
    third = LaunchSpec("spirals", runs_dir=runs_dir).resolved(taken={f"{first.name}-2"})
    assert third.name == f"{first.name}-3"
    with pytest.raises(ValueError):
        _ = LaunchSpec("spirals").run_folder


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def sup(qtbot: QtBot, runs_dir: Path) -> Iterator[tuple[Supervisor, Recorder]]:
    """A supervisor that never restarts (see ``fast_sup`` for one that does)."""
    supervisor = Supervisor(runs_dir, restart=NO_RESTART)
    rec = record(supervisor)
    yield supervisor, rec
    end_supervision(qtbot, supervisor)


@pytest.fixture
def fast_sup(qtbot: QtBot, runs_dir: Path) -> Iterator[tuple[Supervisor, Recorder]]:
    """A supervisor with quick restarts and a short heartbeat timeout and grace."""
    health = HealthPolicy(heartbeat_timeout=2.0, kill_grace=1.0)
    supervisor = Supervisor(runs_dir, restart=FAST_RESTART, health=health)
    rec = record(supervisor)
    yield supervisor, rec
    end_supervision(qtbot, supervisor)


def kill_groups(pids: list[int]) -> None:
    """SIGKILL each group and reap the leaders that are our children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=10)


def tiny(steps: int, name: str, script: Path = TINY, **extra: object) -> LaunchSpec:
    sets = [f"max_steps={steps}", "step_sleep=0.01", *(f"{k}={v}" for k, v in extra.items())]
    return LaunchSpec(str(script), sets, name=name)


def wait_status(qtbot: QtBot, folder: str, want: Callable[[str, int], bool]) -> None:
    def ok() -> bool:
        if not (Path(folder) / "journal.sqlite").is_file():
            return False
        s = summarize(Path(folder), with_latest=False)
        return want(s.status, s.step)

    qtbot.waitUntil(ok, timeout=START_MS)


# ---------------------------------------------------------------------- real children
def test_launch_streams_output_and_finishes(
    qtbot: QtBot, sup: tuple[Supervisor, Recorder], runs_dir: Path
) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(15, "ok-run"))
    assert folder == str(runs_dir / "ok-run") and supervisor.is_running(folder)
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    assert rec.finished[folder] == (0, False)
    assert rec.started == [folder]
    assert "tiny_train done at step 15" in rec.text(folder, "stdout")
    assert Path(folder, "journal.sqlite").is_file()
    assert summarize(Path(folder)).status == "finished"
    assert not supervisor.running()


def test_child_gets_its_own_session(qtbot: QtBot, sup: tuple[Supervisor, Recorder]) -> None:
    supervisor, _rec = sup
    folder = supervisor.start(tiny(100_000, "session", NOTORCH))
    assert folder is not None
    qtbot.waitUntil(lambda: supervisor.pid(folder) is not None, timeout=START_MS)
    pid = supervisor.pid(folder)
    assert pid is not None and os.getpgid(pid) == pid and os.getsid(pid) == pid
    env = psutil.Process(pid).environ()
    assert env["PYTHONUNBUFFERED"] == "1" and env["TRAINDESK_HOME"] == str(supervisor.runs_dir)


def test_stop_is_graceful_and_not_a_crash(qtbot: QtBot, sup: tuple[Supervisor, Recorder]) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(100_000, "to-stop"))
    assert folder is not None
    wait_status(qtbot, folder, lambda status, step: status == "running" and step >= 3)
    assert supervisor.stop(folder)
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    assert rec.finished[folder] == (0, False)
    summary = summarize(Path(folder))
    assert summary.status == "stopped"
    assert list(Path(folder, "checkpoints").glob("ckpt-*.pt"))  # stopped with a checkpoint
    assert not supervisor.stop(folder)  # not a child any more


def test_kill_9_of_the_group_is_a_crash(qtbot: QtBot, sup: tuple[Supervisor, Recorder]) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(100_000, "to-kill", NOTORCH))
    assert folder is not None
    wait_status(qtbot, folder, lambda status, step: status == "running" and step >= 1)
    pid = supervisor.pid(folder)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    assert rec.finished[folder] == (-signal.SIGKILL, True)
    assert summarize(Path(folder)).status == "crashed"
    # No restarts allowed: supervision ends with the policy's word on it.
    assert rec.restarting == []
    assert [(f, st) for f, st, _ in rec.ended] == [(folder, "crashed")]
    assert "gave up after 0 restarts" in rec.ended[0][2]


def test_kill_all_is_a_requested_kill(qtbot: QtBot, sup: tuple[Supervisor, Recorder]) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(100_000, "kill-all", NOTORCH))
    assert folder is not None
    qtbot.waitUntil(lambda: supervisor.pid(folder) is not None, timeout=START_MS)
    supervisor.kill_all()
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    assert rec.finished[folder] == (-signal.SIGKILL, False)


def test_script_failing_at_import_shows_its_traceback(
    qtbot: QtBot, sup: tuple[Supervisor, Recorder], tmp_path: Path
) -> None:
    supervisor, rec = sup
    script = tmp_path / "broken.py"
    script.write_text("import trainer\nraise RuntimeError('boom at import')\n")
    console = LogConsole()
    qtbot.addWidget(console)
    supervisor.output.connect(console.append)
    folder = supervisor.start(LaunchSpec(str(script), name="broken"))
    assert folder is not None
    console.show_run(folder)
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    code, crashed = rec.finished[folder]
    assert code != 0 and not crashed
    assert "Traceback (most recent call last)" in rec.text(folder, "stderr")
    qtbot.waitUntil(lambda: "boom at import" in console.visible_text(), timeout=5_000)
    assert "Traceback" in console.visible_text()
    assert summarize(Path(folder)).status == "failed"


def test_bad_config_is_reported_with_exit_code_2(
    qtbot: QtBot, sup: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = sup
    folder = supervisor.start(LaunchSpec("spirals", ["lr=-1"], name="bad-lr"))
    assert folder is not None
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=START_MS)
    assert rec.finished[folder] == (2, False)
    assert "out of range" in rec.text(folder, "stderr")
    assert not Path(folder).exists()


def test_failures_to_start_are_signalled(
    qtbot: QtBot, runs_dir: Path, sup: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = sup
    (runs_dir / "taken").mkdir()
    assert supervisor.start(LaunchSpec("spirals", name="taken")) is None
    assert supervisor.start(LaunchSpec("spirals", name="../escape")) is None
    assert [n for n, _ in rec.failed] == ["taken", "../escape"]
    assert "already exists" in rec.failed[0][1]

    missing = Supervisor(runs_dir, command=[str(runs_dir / "no-such-python")])
    failed: list[tuple[str, str]] = []
    missing.failed_to_start.connect(lambda n, m: failed.append((n, m)))
    assert missing.start(LaunchSpec("spirals", name="nope")) == str(runs_dir / "nope")
    qtbot.waitUntil(lambda: bool(failed), timeout=10_000)
    assert failed[0][0] == "nope" and "no-such-python" in failed[0][1]
    assert not missing.running()


def test_shutdown_can_leave_children_running(
    qtbot: QtBot,
    sup: tuple[Supervisor, Recorder],
    aloop: asyncio.AbstractEventLoop,
) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(100_000, "left-running", NOTORCH))
    assert folder is not None
    wait_status(qtbot, folder, lambda status, step: status == "running")
    pid = supervisor.pid(folder)
    assert pid is not None
    try:
        aloop.run_until_complete(supervisor.shutdown(stop_children=False))
        assert not supervisor.running()
        step = summarize(Path(folder), with_latest=False).step
        # Still training (and surviving its closed console pipe) after the supervisor let go.
        wait_status(qtbot, folder, lambda status, s: status == "running" and s > step + 5)
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert folder not in rec.finished
    finally:
        kill_groups([pid])


def test_shutdown_stops_children(
    qtbot: QtBot, sup: tuple[Supervisor, Recorder], aloop: asyncio.AbstractEventLoop
) -> None:
    supervisor, rec = sup
    folder = supervisor.start(tiny(100_000, "stopped-at-exit"))
    assert folder is not None
    wait_status(qtbot, folder, lambda status, step: status == "running")
    aloop.run_until_complete(supervisor.shutdown(stop_children=True, timeout=60))
    assert rec.finished[folder] == (0, False)
    assert summarize(Path(folder)).status == "stopped"


def stubborn_script(tmp_path: Path) -> Path:
    """A run that never reaches a safe point (ignores stop and SIGTERM), with a grandchild."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        textwrap.dedent(
            """
            import subprocess, time
            import trainer
            with trainer.init(config={}) as run:
                child = subprocess.Popen(["sleep", "600"])
                print("grandchild", child.pid, flush=True)
                while True:
                    time.sleep(0.05)
            """
        )
    )
    return script


def test_stop_escalates_when_asked_again(
    qtbot: QtBot, sup: tuple[Supervisor, Recorder], tmp_path: Path
) -> None:
    supervisor, rec = sup
    folder = supervisor.start(LaunchSpec(str(stubborn_script(tmp_path)), name="stubborn"))
    assert folder is not None
    qtbot.waitUntil(lambda: "grandchild" in rec.text(folder), timeout=START_MS)
    assert supervisor.stop(folder) and supervisor.stop(folder)  # message, then SIGTERM
    qtbot.wait(300)
    assert supervisor.is_running(folder)  # SIGTERM only asks for a stop at a safe point
    assert supervisor.stop(folder)  # SIGKILL
    qtbot.waitUntil(lambda: folder in rec.finished, timeout=10_000)
    assert rec.finished[folder] == (-signal.SIGKILL, False)


def test_shutdown_kills_a_child_that_ignores_stop_and_its_grandchildren(
    qtbot: QtBot,
    sup: tuple[Supervisor, Recorder],
    aloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
) -> None:
    supervisor, rec = sup
    script = stubborn_script(tmp_path)
    folder = supervisor.start(LaunchSpec(str(script), name="stubborn"))
    assert folder is not None
    qtbot.waitUntil(lambda: "grandchild" in rec.text(folder), timeout=START_MS)
    grandchild = int(rec.text(folder).split("grandchild ")[1].split()[0])
    aloop.run_until_complete(supervisor.shutdown(True, timeout=0.5, term_grace=0.5))
    assert rec.finished[folder] == (-signal.SIGKILL, False)  # asked for: not a crash
    assert not psutil.pid_exists(grandchild) or (
        psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )


APP_THAT_LEAVES = """
import asyncio, sys
from pathlib import Path
import qasync
from PySide6.QtCore import QCoreApplication
from desktop_app.runs_ctl.supervisor import LaunchSpec, Supervisor
from trainer.runs import summarize

async def main():
    sup = Supervisor(Path(sys.argv[1]))
    sets = ["max_steps=100000", "step_sleep=0.01"]
    folder = sup.start(LaunchSpec(sys.argv[2], sets, name="orphan"))
    while summarize(Path(folder), with_latest=False).status != "running":
        await asyncio.sleep(0.1)
    print(sup.pid(folder), flush=True)
    await sup.shutdown(stop_children=False)

app = QCoreApplication([])
qasync.run(main())
"""


def test_children_left_running_outlive_the_app(qtbot: QtBot, runs_dir: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    result = subprocess.run(
        [sys.executable, "-c", APP_THAT_LEAVES, str(runs_dir), str(NOTORCH)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[-1])
    try:
        folder = runs_dir / "orphan"
        step = summarize(folder, with_latest=False).step
        # The app is gone (its console pipe broke): the run trains on and keeps its logs.
        wait_status(qtbot, str(folder), lambda status, s: status == "running" and s > step + 5)
        assert "Destroyed while process" not in result.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------- restarts
def test_a_failing_run_is_restarted_then_given_up(
    qtbot: QtBot, fast_sup: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = fast_sup
    # It fails at step 5 in every attempt: restarted twice, then the policy gives up.
    folder = supervisor.start(tiny(50, "fails", fail_at=5, checkpoint_every=2))
    assert folder is not None
    qtbot.waitUntil(lambda: bool(rec.ended), timeout=3 * START_MS)
    assert [d for _, d, _ in rec.restarting] == [0.2, 0.4]  # the backoff doubles
    assert "attempt 1 failed" in rec.restarting[0][2]
    assert "restart 1 of 2" in rec.restarting[0][2]
    assert [(f, st) for f, st, _ in rec.ended] == [(folder, "failed")]
    assert "gave up after 2 restarts" in rec.ended[0][2]
    assert rec.started == [folder] * 3
    summary = summarize(Path(folder), with_latest=False)
    assert (summary.status, summary.attempt, summary.step) == ("failed", 3, 4)
    assert not supervisor.is_supervised(folder) and supervisor.supervision(folder) is None


def test_stop_and_shutdown_cancel_pending_restarts(
    qtbot: QtBot,
    fast_sup: tuple[Supervisor, Recorder],
    aloop: asyncio.AbstractEventLoop,
) -> None:
    supervisor, rec = fast_sup
    slow = RestartPolicy(max_restarts=3, backoff_initial=60.0, jitter=0.0)
    supervisor.set_policies(slow, supervisor.health_policy)
    a = supervisor.start(tiny(50, "cancel-a", NOTORCH, fail_at=3))
    b = supervisor.start(tiny(50, "cancel-b", NOTORCH, fail_at=3))
    assert a is not None and b is not None
    sup_a = supervisor.supervision(a)
    assert sup_a is not None and sup_a.restart_policy is slow
    qtbot.waitUntil(lambda: len(rec.restarting) == 2, timeout=START_MS)
    assert supervisor.pending() == [a, b] or supervisor.pending() == [b, a]
    left = supervisor.restart_in(a)
    assert left is not None and 50 < left <= 60
    assert supervisor.is_supervised(a) and not supervisor.is_running(a)
    assert supervisor.stop(a)  # waiting to restart: the restart is cancelled
    assert not supervisor.is_pending(a) and supervisor.is_pending(b)
    assert rec.ended == [(a, "failed", "run cancel-a: restart cancelled by the user")]
    aloop.run_until_complete(supervisor.shutdown(stop_children=True, timeout=5))
    assert not supervisor.pending()
    assert rec.ended[1] == (b, "failed", "run cancel-b: restart cancelled: the app is closing")
    assert not supervisor.stop(a)
    for folder in (a, b):
        with JournalReader(Path(folder)) as reader:
            kinds = [e.kind for e in reader.events()]
        assert kinds.count("restart_scheduled") == 1 and "restart_cancelled" in kinds
    assert rec.started == [a, b] or rec.started == [b, a]  # neither restarted
