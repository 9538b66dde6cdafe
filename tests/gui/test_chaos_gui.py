"""Chaos with real processes: the app killed under its runs, a trainer killed or hung under the
in-process supervisor, and the app told to quit by SIGTERM with live runs.

During every scenario a reader hammers the runs' journals and ``trainer show`` runs in a loop
(:class:`tests.hammer.Hammer`), as in ``tests/test_chaos.py``: none of them may ever see
"database is locked".

The times these tests measure are printed (``-s`` shows them): kill to crash signal, SIGSTOP
to "unresponsive", SIGTERM to the app's exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_ctl.supervisor import Supervisor
from desktop_app.settings.model import AppSettings, save_settings
from tests.gui.supervisor_recorder import Recorder, end_supervision, record
from tests.hammer import Hammer
from tests.helpers import ROOT, TINY, cli, trainer_env, wait_until
from trainer.journal.reader import JournalReader
from trainer.paths import JOURNAL_NAME
from trainer.runs import summarize
from trainer.supervision.policy import HealthPolicy, RestartPolicy

pytestmark = pytest.mark.gui

START_S = 90  # a trainer imports torch first; three at once on a shared 2-core machine
HEALTH = HealthPolicy(heartbeat_timeout=2.0, kill_grace=1.0)
RESTART = RestartPolicy(max_restarts=2, backoff_initial=0.2, jitter=0.0)
_CKPT = re.compile(r"^ckpt-(\d+)\.pt$")


# ---------------------------------------------------------------------- helpers
def state(folder: Path) -> tuple[str, int, int] | None:
    """(derived status, step, attempt) from the journal, or None before it exists."""
    if not (folder / JOURNAL_NAME).is_file():
        return None
    s = summarize(folder, with_latest=False)
    return s.status, s.step, s.attempt


def status_of(folder: Path) -> str | None:
    now = state(folder)
    return None if now is None else now[0]


def has_steps(folder: Path, n: int) -> bool:
    now = state(folder)
    return now is not None and now[0] == "running" and now[1] >= n


def logged_steps(folder: Path) -> list[int]:
    with JournalReader(folder) as reader:
        return [int(s) for s in reader.series("train/loss").steps]


def checkpoint_steps(folder: Path) -> list[int]:
    names = (p.name for p in (folder / "checkpoints").glob("ckpt-*.pt"))
    return sorted(int(m.group(1)) for n in names if (m := _CKPT.match(n)))


def events(folder: Path, kind: str) -> list[tuple[int, str]]:
    with JournalReader(folder) as reader:
        return [(e.attempt, e.message) for e in reader.events() if e.kind == kind]


def our_processes(*needles: str) -> list[psutil.Process]:
    """Live processes whose command line mentions any of ``needles`` (not zombies)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        line = " ".join(proc.info["cmdline"] or ())
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(n in line for n in needles):
            found.append(proc)
    return found


def run_pid(folder: Path) -> int | None:
    with JournalReader(folder) as reader:
        return reader.run_info().pid


def app_command(runs_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "desktop_app", "--runs-dir", str(runs_dir), *args]


def launch_args(names: list[str], steps: int) -> list[str]:
    out = []
    for name in names:
        out += ["--launch", str(TINY), "--name", name]
    return [*out, "--set", f"max_steps={steps}", "--set", "step_sleep=0.02"]


@pytest.fixture
def app_log(tmp_path: Path) -> Iterator[Path]:
    """Where the app process writes its stderr (shown when a test fails)."""
    path = tmp_path / "app-stderr.log"
    yield path


def start_app(runs_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            app_command(runs_dir, *args), stdout=subprocess.DEVNULL, stderr=err,
            env=trainer_env(QT_QPA_PLATFORM="offscreen"), cwd=ROOT,
        )  # fmt: skip


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def wait_gone(pids: list[int], timeout: float = 60) -> None:
    def gone() -> bool:
        return not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            for p in pids
        )

    wait_until(gone, timeout, f"processes {pids} to end")


# ---------------------------------------------------------------------- a. the app killed
def test_a_run_outlives_the_app_killed_with_sigkill(
    runs_dir: Path, tmp_path: Path, app_log: Path
) -> None:
    steps = 300
    run = runs_dir / "x"
    with Hammer(runs_dir, show="x"):
        app = start_app(runs_dir, app_log, *launch_args(["x"], steps))
        try:
            wait_until(lambda: has_steps(run, 10), START_S, "the run's first steps")
            app.send_signal(signal.SIGKILL)
            app.wait(30)
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
        killed_at = state(run)
        assert killed_at is not None and killed_at[1] < steps, "the run ended before the kill"
        stdout_log = run / "logs" / "stdout.log"
        size_at_kill = stdout_log.stat().st_size
        pid = run_pid(run)
        assert pid is not None and psutil.pid_exists(pid)  # the app's death did not take it

        wait_until(lambda: state(run) == ("finished", steps, 1), 180, "the orphaned run to end")
        wait_gone([pid])
    assert logged_steps(run) == list(range(1, steps + 1))
    # Its console went on into its own log file after the app's pipe broke.
    assert stdout_log.stat().st_size > size_at_kill
    assert f"tiny_train done at step {steps}" in stdout_log.read_text()

    # A new app on the same runs folder lists it, as finished.
    dump = tmp_path / "state.json"
    again = subprocess.run(
        app_command(runs_dir, "--open", "x", "--dump-state", str(dump), "--quit-after", "3"),
        capture_output=True, text=True, timeout=120,
        env=trainer_env(QT_QPA_PLATFORM="offscreen"), cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:] + tail(app_log)
    shown = {r["name"]: r for r in json.loads(dump.read_text())["runs"]}
    assert shown["x"]["status"] == "finished" and shown["x"]["step"] == steps


# ---------------------------------------------------------------------- b, c. under the supervisor
@pytest.fixture
def chaos_sup(qtbot: QtBot, runs_dir: Path) -> Iterator[tuple[Supervisor, Recorder]]:
    supervisor = Supervisor(runs_dir, restart=RESTART, health=HEALTH)
    rec = record(supervisor)
    yield supervisor, rec
    end_supervision(qtbot, supervisor)


def tiny(name: str, steps: int) -> LaunchSpec:
    sets = [f"max_steps={steps}", "step_sleep=0.02", "checkpoint_every=10"]
    return LaunchSpec(str(TINY), sets, name=name)


def test_a_trainer_killed_with_sigkill_is_restarted_from_its_checkpoint(
    qtbot: QtBot, chaos_sup: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = chaos_sup
    steps = 150
    with Hammer(supervisor.runs_dir, show="killed"):
        folder = supervisor.start(tiny("killed", steps))
        assert folder is not None
        run = Path(folder)
        qtbot.waitUntil(lambda: has_steps(run, 25), timeout=START_S * 1000)
        pid = supervisor.pid(folder)
        assert pid is not None
        before = checkpoint_steps(run)
        killed = time.monotonic()
        os.killpg(pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: folder in rec.finished, timeout=10_000)
        to_crash = rec.finished_at[folder] - killed
        print(f"\nkill -9 to the crash signal: {to_crash * 1000:.0f} ms")
        assert rec.finished[folder] == (-signal.SIGKILL, True)
        assert to_crash < HEALTH.heartbeat_timeout  # the process end, not a missing heartbeat
        assert len(rec.restarting) == 1 and rec.restarting[0][0] == folder
        assert "attempt 1 crashed (killed by SIGKILL)" in rec.restarting[0][2]

        qtbot.waitUntil(lambda: bool(rec.ended), timeout=START_S * 1000)
    assert rec.ended[0][:2] == (folder, "finished"), rec.ended
    assert state(run) == ("finished", steps, 2)
    restarted = events(run, "restarted")
    assert len(restarted) == 1 and restarted[0][0] == 2
    start = int(restarted[0][1].rsplit(" ", 1)[-1])  # "attempt 2 from step N"
    assert before and start >= before[-1] and start % 10 == 0
    assert logged_steps(run) == list(range(1, steps + 1))
    assert events(run, "crashed")[0][0] == 1


def test_a_hung_trainer_is_killed_after_the_grace_and_restarted(
    qtbot: QtBot, chaos_sup: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = chaos_sup
    steps = 120
    with Hammer(supervisor.runs_dir, show="hung"):
        folder = supervisor.start(tiny("hung", steps))
        assert folder is not None
        run = Path(folder)
        qtbot.waitUntil(lambda: has_steps(run, 15), timeout=START_S * 1000)
        pid = supervisor.pid(folder)
        assert pid is not None
        stopped = time.monotonic()
        os.killpg(pid, signal.SIGSTOP)  # the whole group: the heartbeat thread stops too
        try:

            def unresponsive() -> bool:
                return any(f == folder and h == "unresponsive" for f, h, _, _ in rec.health)

            qtbot.waitUntil(unresponsive, timeout=30_000)
            seen = next(t for f, h, _, t in rec.health if f == folder and h == "unresponsive")
            qtbot.waitUntil(lambda: folder in rec.finished, timeout=30_000)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
        to_unresponsive = seen - stopped
        to_kill = rec.finished_at[folder] - seen  # before the restarted attempt ends
        first_exit = rec.finished[folder]
        qtbot.waitUntil(lambda: bool(rec.ended), timeout=START_S * 1000)
    print(f"\nSIGSTOP to unresponsive: {to_unresponsive:.2f} s; then killed {to_kill:.2f} s later")
    assert HEALTH.heartbeat_timeout - 0.6 < to_unresponsive < HEALTH.heartbeat_timeout + 3
    assert HEALTH.kill_grace - 0.1 < to_kill < HEALTH.kill_grace + 3
    assert first_exit == (-signal.SIGKILL, True)
    killed = [m for f, _, m, _ in rec.health if f == folder and m]
    assert killed and "hung" in killed[0]
    assert len(rec.restarting) == 1
    assert rec.ended[0][:2] == (folder, "finished"), rec.ended
    assert state(run) == ("finished", steps, 2)
    assert events(run, "unresponsive") and events(run, "unresponsive")[0][0] == 1
    crashed = events(run, "crashed")
    assert crashed and "hung" in crashed[0][1]
    assert logged_steps(run) == list(range(1, steps + 1))


# ---------------------------------------------------------------------- d. SIGTERM to the app
NAMES = ["r1", "r2", "r3"]


def sigterm_the_app(runs_dir: Path, log: Path) -> tuple[float, float, dict[str, int]]:
    """Start the app with three live runs, SIGTERM it once all train; returns the seconds
    from the signal to the app's exit, the unix time of the signal, and the runs' pids.
    Called inside a :class:`Hammer`."""
    app = start_app(runs_dir, log, *launch_args(NAMES, 100_000))
    try:
        for name in NAMES:
            wait_until(lambda n=name: has_steps(runs_dir / n, 5), START_S, f"{name} to train")
        pids = {n: run_pid(runs_dir / n) for n in NAMES}
        sent, sent_wall = time.monotonic(), time.time()
        app.send_signal(signal.SIGTERM)
        code = app.wait(60)
        took = time.monotonic() - sent
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert code == 0, tail(log)
    assert "Traceback" not in tail(log), tail(log)
    assert all(pids.values())
    return took, sent_wall, {n: p for n, p in pids.items() if p is not None}


def test_sigterm_to_the_app_stops_its_runs_with_a_checkpoint(runs_dir: Path, app_log: Path) -> None:
    with Hammer(runs_dir, show=NAMES[0]):
        took, sent_wall, pids = sigterm_the_app(runs_dir, app_log)
    slowest = 0.0
    for name in NAMES:
        run = runs_dir / name
        summary = summarize(run, with_latest=False)
        assert summary.status == "stopped"
        assert checkpoint_steps(run)[-1] >= max(logged_steps(run))
        slowest = max(slowest, (summary.updated or 0.0) - sent_wall)
    print(f"\nSIGTERM to the app's exit, stopping 3 runs: {took:.2f} s; slowest run "
          f"stopped {slowest:.2f} s after the signal")  # fmt: skip
    assert took < 30  # the stop deadline, before any SIGTERM/SIGKILL escalation
    wait_gone(list(pids.values()), 10)
    # Every trainer the app starts names the runs dir (--runs-dir=...); a needle such as
    # --name=r1 would also match the runs of another test (the one below uses these names).
    assert not our_processes(str(runs_dir))
    assert "SIGTERM received: closing, stopping 3 live run(s)" in tail(app_log)


def test_sigterm_to_the_app_can_leave_its_runs_running(runs_dir: Path, app_log: Path) -> None:
    save_settings(AppSettings(on_quit="leave"))
    with Hammer(runs_dir, show=NAMES[0]):
        took, _sent, pids = sigterm_the_app(runs_dir, app_log)
        print(f"\nSIGTERM to the app's exit, leaving 3 runs: {took:.2f} s")
        try:
            steps = {n: state(runs_dir / n)[1] for n in NAMES}  # type: ignore[index]
            for name in NAMES:
                run = runs_dir / name
                wait_until(lambda r=run, n=name: has_steps(r, steps[n] + 10), 60,
                           f"{name} to train on")  # fmt: skip
                assert psutil.pid_exists(pids[name])
            for name in NAMES:
                done = cli("stop", name, "--runs-dir", str(runs_dir))
                assert done.returncode == 0, done.stderr
            for name in NAMES:
                run = runs_dir / name
                wait_until(lambda r=run: status_of(r) == "stopped", 60, f"{name} to stop")
            wait_gone(list(pids.values()), 30)
        finally:
            for pid in pids.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    assert not our_processes(str(runs_dir))
    assert "SIGTERM received: closing, leaving 3 live run(s)" in tail(app_log)
