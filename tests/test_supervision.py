"""The supervision core without child processes: lifecycle, policy, exit classes, health."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import wait_until
from trainer.journal import JournalReader, JournalWriter
from trainer.journal.reader import RunInfo
from trainer.journal.status import derive_status
from trainer.supervision.core import Supervision
from trainer.supervision.exits import ExitKind, MemoryFacts, classify_exit
from trainer.supervision.lifecycle import TRANSITIONS, Lifecycle, Transition
from trainer.supervision.policy import HealthPolicy, RestartPolicy, RestartTracker


# ---------------------------------------------------------------------------- lifecycle
def test_lifecycle_follows_legal_transitions_and_reports_each() -> None:
    seen: list[Transition] = []
    life = Lifecycle(on_change=seen.append, name="r")
    for state in ("starting", "running", "paused", "running", "stopping", "stopped"):
        assert life.to(state), state
    assert [t.new for t in seen] == ["starting", "running", "paused", "running", "stopping",
                                     "stopped"]  # fmt: skip
    assert seen[2].old == "running" and life.ended


def test_illegal_transition_is_rejected_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    life = Lifecycle("running", name="r")
    with caplog.at_level(logging.WARNING):
        assert not life.to("queued", "bogus")
        assert not life.to("no-such-state")
    assert life.state == "running"
    assert life.rejected[0] == ("running", "queued", "bogus")
    assert "illegal transition running -> queued" in caplog.text
    assert not life.to("running")  # staying put is not a transition


def test_every_state_can_end_or_restart() -> None:
    for state, targets in TRANSITIONS.items():
        assert targets, state
    assert "starting" in TRANSITIONS["crashed"] and "starting" in TRANSITIONS["failed"]
    assert "running" not in TRANSITIONS["finished"]  # an ended run restarts via "starting"


# ---------------------------------------------------------------------------- restart policy
def test_backoff_doubles_up_to_its_cap_with_bounded_jitter() -> None:
    policy = RestartPolicy(backoff_initial=1, backoff_factor=2, backoff_max=5, jitter=0.2)
    assert [policy.base_delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    rng = random.Random(1)
    delays = [policy.delay(3, rng) for _ in range(500)]
    assert 4 * 0.8 <= min(delays) < 4 * 0.85 and 4 * 1.15 < max(delays) <= 4 * 1.2


def test_tracker_gives_up_after_max_restarts_and_resets_after_a_healthy_run() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=2, healthy_after=60, jitter=0))
    assert tracker.next_delay(ran_for=1) == 2
    assert tracker.next_delay(ran_for=1) == 4
    assert tracker.next_delay(ran_for=1) is None
    assert tracker.next_delay(ran_for=61) == 2  # a healthy attempt starts the count again
    assert tracker.total == 3


def test_bad_policies_are_refused() -> None:
    for bad in ({"max_restarts": -1}, {"backoff_factor": 0.5}, {"jitter": 1.0}):
        with pytest.raises(ValueError):
            RestartPolicy(**bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- exit classes
@pytest.mark.parametrize(
    ("code", "kwargs", "kind", "state", "restart"),
    [
        (0, {}, ExitKind.FINISHED, "finished", False),
        (0, {"journal_status": "stopped"}, ExitKind.STOPPED, "stopped", False),
        (0, {"stop_requested": True}, ExitKind.STOPPED, "stopped", False),
        (-signal.SIGKILL, {"stop_requested": True}, ExitKind.STOPPED, "stopped", False),
        (130, {}, ExitKind.STOPPED, "stopped", False),
        (2, {"error": "config key 'lr'"}, ExitKind.USAGE, "failed", False),
        (3, {}, ExitKind.USAGE, "failed", False),
        (4, {}, ExitKind.DISK_FULL, "paused", True),
        (1, {"error": "RuntimeError: boom"}, ExitKind.TRAINING_ERROR, "failed", True),
        (1, {"error": "OutOfMemoryError: CUDA out of memory."}, ExitKind.OOM, "failed", True),
        (-signal.SIGKILL, {}, ExitKind.KILLED, "crashed", True),
        (137, {}, ExitKind.KILLED, "crashed", True),  # a shell's 128 + 9
        (-signal.SIGSEGV, {}, ExitKind.KILLED, "crashed", True),
        (-signal.SIGKILL, {"memory": MemoryFacts(host_used_fraction=0.97)}, ExitKind.OOM,
         "crashed", True),
        (-signal.SIGKILL, {"memory": MemoryFacts(host_used_fraction=0.4, oom_kills=1)},
         ExitKind.OOM, "crashed", True),
        (-signal.SIGKILL, {"memory": MemoryFacts(host_used_fraction=0.4)}, ExitKind.KILLED,
         "crashed", True),
        (-signal.SIGKILL, {"hung": True}, ExitKind.HUNG, "crashed", True),
        # Killed, hung or failing after it journaled "finished": the run finished.
        (-signal.SIGKILL, {"journal_status": "finished"}, ExitKind.FINISHED, "finished", False),
        (-signal.SIGKILL, {"journal_status": "finished", "hung": True}, ExitKind.FINISHED,
         "finished", False),
        (1, {"journal_status": "finished", "error": "teardown"}, ExitKind.FINISHED, "finished",
         False),
        (-signal.SIGKILL, {"journal_status": "running"}, ExitKind.KILLED, "crashed", True),
    ],
)  # fmt: skip
def test_exits_are_classified(
    code: int, kwargs: dict[str, object], kind: ExitKind, state: str, restart: bool
) -> None:
    got = classify_exit(code, **kwargs)  # type: ignore[arg-type]
    assert (got.kind, got.state, got.restartable) == (kind, state, restart)
    assert got.reason


def test_signal_exits_name_the_signal() -> None:
    assert "SIGSEGV" in classify_exit(-signal.SIGSEGV).reason
    assert "OOM killer" in classify_exit(-9, memory=MemoryFacts(oom_kills=2)).reason
    assert classify_exit(-9, journal_status="finished").reason == (
        "killed by SIGKILL after it journaled its end"
    )


# ---------------------------------------------------------------------------- derived health
def _info(**kw: object) -> RunInfo:
    now = time.time()
    base: dict[str, object] = dict(
        id="x", name="x", entry="e", kind="api", created=now - 100, config={},
        status="running", exit_reason=None, pid=os.getpid(), pid_started=None,
        host=os.uname().nodename, attempt=1, step=10, max_steps=None, updated=now,
        heartbeat_wall=now, heartbeat_step=10, last_step_wall=now, median_step_s=0.1,
    )  # fmt: skip
    base.update(kw)
    return RunInfo(**base)  # type: ignore[arg-type]


def test_stalled_needs_a_fresh_heartbeat_and_no_step_for_many_step_times() -> None:
    now = time.time()
    assert derive_status(_info(), now=now) == "running"
    old = _info(last_step_wall=now - 30)
    assert derive_status(old, now=now, stall_min=60) == "running"
    assert derive_status(old, now=now, stall_min=5) == "stalled"
    assert derive_status(_info(last_step_wall=now - 30, median_step_s=10), now=now,
                         stall_min=5) == "running"  # fmt: skip
    assert derive_status(_info(last_step_wall=now - 30, status="paused"), now=now,
                         stall_min=5) == "paused"  # fmt: skip
    stale = _info(heartbeat_wall=now - 30, last_step_wall=now - 30)
    assert derive_status(stale, now=now, stall_min=5) == "unresponsive"


def test_reader_reports_the_recent_median_step_time(tmp_path: Path) -> None:
    writer = JournalWriter.create(tmp_path / "journal.sqlite", run_id="r", name="r", entry="e",
                                  kind="api", config={})  # fmt: skip
    writer.close()
    conn = sqlite3.connect(tmp_path / "journal.sqlite")
    with conn:
        rows = [(1, step, step * 200) for step in range(1, 41)]  # 0.2 s per step
        rows[-1] = (1, 40, 39 * 200 + 5000)  # one slow step does not move the median
        conn.executemany("INSERT INTO step_wall (attempt, step, wall_ms) VALUES (?, ?, ?)", rows)
    conn.close()
    with JournalReader(tmp_path) as reader:
        info = reader.run_info()
    assert info.median_step_s == pytest.approx(0.2)
    assert info.last_step_wall == pytest.approx(info.created + (39 * 200 + 5000) / 1000)


# ---------------------------------------------------------------------------- Supervision
def _journal(folder: Path) -> JournalWriter:
    folder.mkdir()
    writer = JournalWriter.create(folder / "journal.sqlite", run_id="r", name=folder.name,
                                  entry="e", kind="api", config={})  # fmt: skip
    writer.set_status("running")
    writer.heartbeat(5)
    writer.flush()
    return writer


def _events(folder: Path) -> list[tuple[str, str, dict[str, object] | None]]:
    conn = sqlite3.connect(folder / "journal.sqlite")
    try:
        rows = conn.execute("SELECT kind, message, data FROM event ORDER BY id").fetchall()
    finally:
        conn.close()
    return [(k, m, json.loads(d) if d else None) for k, m, d in rows]


def test_a_silent_attempt_becomes_unresponsive_then_is_killed_as_hung(tmp_path: Path) -> None:
    folder = tmp_path / "hung"
    writer = _journal(folder)
    writer.close()  # no more heartbeats from here on
    health = HealthPolicy(heartbeat_timeout=0.3, kill_grace=0.3)
    sup = Supervision(folder, health=health, restart=RestartPolicy(jitter=0, backoff_initial=1))
    sup.spawned(os.getpid())
    sup._attempt.base_attempt = 0  # type: ignore[union-attr]  (the journal is "this" attempt)
    assert sup.poll().health == "running"
    first = wait_until(lambda: sup.poll().health == "unresponsive", 10, "unresponsive")
    assert first
    verdict = wait_until(lambda: (v := sup.poll()).kill and v, 10, "the kill verdict")
    assert "hung" in verdict.message
    decision = sup.exited(-signal.SIGKILL)
    sup.close()
    assert decision.exit.kind == ExitKind.HUNG and decision.restart and decision.delay == 1
    kinds = [e[0] for e in _events(folder)]
    assert kinds[-3:] == ["unresponsive", "crashed", "restart_scheduled"]
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert (info.status, info.exit_reason) == ("crashed", "no heartbeat: killed as hung")


def test_a_usage_error_is_never_restarted_and_a_final_status_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    writer = _journal(folder)
    writer.set_status("failed", exit_reason="config key 'lr' is bad")
    writer.close()
    sup = Supervision(folder, restart=RestartPolicy(max_restarts=5))
    sup.spawned(None)
    decision = sup.exited(2)
    sup.close()
    assert not decision.restart and decision.exit_code == 2
    assert "not restarted" in decision.message
    with JournalReader(folder) as reader:
        assert reader.run_info().exit_reason == "config key 'lr' is bad"  # not overwritten


def test_a_stop_requested_is_never_restarted(tmp_path: Path) -> None:
    folder = tmp_path / "stopped"
    _journal(folder).close()
    sup = Supervision(folder, restart=RestartPolicy(max_restarts=5))
    sup.spawned(None)
    sup.request_stop()
    decision = sup.exited(-signal.SIGKILL)  # killed by our own escalation
    sup.close()
    assert not decision.restart and decision.exit.kind == ExitKind.STOPPED
    assert sup.lifecycle.state == "stopped"


def test_a_full_disk_pauses_until_space_returns(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    _journal(folder).close()
    sup = Supervision(folder, disk_free_min=1 << 62)  # more than any disk has
    sup.spawned(None)
    decision = sup.exited(4)
    assert decision.restart and decision.wait_for_space and decision.exit_code == 4
    assert sup.lifecycle.state == "paused" and not sup.space_ok()
    sup.disk_free_min = 1
    assert sup.space_ok()
    sup.spawned(None)  # paused -> starting is legal
    assert sup.lifecycle.state == "starting"
    assert [e[0] for e in _events(folder)][-1] == "waiting_for_space"  # not while it runs
    sup.exited(0)
    sup.close()
    assert [e[0] for e in _events(folder)][-2:] == ["starting", "exit"] or "starting" in [
        e[0] for e in _events(folder)
    ]


def test_single_key_runs_have_a_pace_and_a_nan_is_a_gap_with_a_warning(tmp_path: Path) -> None:
    writer = JournalWriter.create(tmp_path / "journal.sqlite", run_id="r", name="r", entry="e",
                                  kind="api", config={})  # fmt: skip
    t0 = time.time()
    for step in range(1, 11):
        value = float("nan") if step in (6, 7) else 1.0 / step
        writer.log_scalars({"loss": value}, step, wall=t0 + 0.5 * step)
    writer.close()
    with JournalReader(tmp_path) as reader:
        info = reader.run_info()
        series = reader.series("loss")
        warnings = [e for e in reader.events() if e.kind == "warning"]
    assert info.median_step_s == pytest.approx(0.5, abs=0.01)
    assert series.steps.tolist() == [1, 2, 3, 4, 5, 8, 9, 10]
    assert [w.message for w in warnings] == ["loss is NaN from step 6"]
