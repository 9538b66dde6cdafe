"""One supervised run: the lifecycle, its health and its restarts, whatever drives the process.

A driver (the desktop app's QProcess supervisor, or ``trainer run --max-restarts``) calls
:meth:`Supervision.spawned` when it starts an attempt, :meth:`Supervision.poll` a few times a
second while it runs, :meth:`Supervision.request_stop` when the user stops it and
:meth:`Supervision.exited` when it ends; it then does what the returned
:class:`Verdict` or :class:`Decision` says. Nothing here touches a process: that keeps the
policy the same for both drivers and testable without processes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import TrainDeskError
from trainer.journal.reader import JournalReader, RunInfo
from trainer.journal.status import derive_status
from trainer.journal.writer import annotate
from trainer.paths import JOURNAL_NAME
from trainer.supervision.exits import ExitClass, ExitKind, MemoryFacts, classify_exit
from trainer.supervision.lifecycle import (
    CRASHED,
    FAILED,
    LIVE,
    PAUSED,
    QUEUED,
    STARTING,
    STOPPED,
    STOPPING,
    Lifecycle,
)
from trainer.supervision.policy import HealthPolicy, RestartPolicy, RestartTracker

log = logging.getLogger(__name__)

#: Free bytes a run paused by a full disk waits for before it is resumed.
DISK_FREE_MIN = 512 * 1024 * 1024


@dataclass(frozen=True)
class Verdict:
    """What :meth:`Supervision.poll` found: the health to show, and whether to kill."""

    health: str  # starting | running | paused | stopping | unresponsive | stalled
    kill: bool = False
    message: str = ""


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt ended."""

    exit: ExitClass
    attempt: int
    restart: bool = False
    delay: float = 0.0
    wait_for_space: bool = False
    message: str = ""

    @property
    def exit_code(self) -> int:
        """The exit code a supervising command should end with if this is the last word."""
        kind = self.exit.kind
        if kind in (ExitKind.FINISHED, ExitKind.STOPPED):
            return 0
        if kind == ExitKind.USAGE:
            return 2
        if kind == ExitKind.DISK_FULL:
            return 4
        if kind == ExitKind.BUSY:
            return 5
        return 1


@dataclass
class _Attempt:
    spawned: float  # monotonic
    base_attempt: int  # the journal's attempt number before this child opened its own
    pid: int | None
    oom_kills: int
    unresponsive_since: float | None = None
    stalled: bool = False
    hung: bool = False
    memory: MemoryFacts = field(default_factory=MemoryFacts)


class Supervision:
    """The supervision of one run folder across its attempts (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        restart: RestartPolicy | None = None,
        health: HealthPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        disk_free_min: int = DISK_FREE_MIN,
    ) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        self.restart_policy = restart or RestartPolicy()
        self.health_policy = health or HealthPolicy()
        self.tracker = RestartTracker(self.restart_policy, rng)
        self.lifecycle = Lifecycle(QUEUED, name=self.name)
        self.clock = clock
        self.disk_free_min = disk_free_min
        self.stop_requested = False
        self.last_decision: Decision | None = None
        self._attempt: _Attempt | None = None
        self._pending: list[tuple[str, str, dict[str, Any] | None, float]] = []
        self._reader: JournalReader | None = None

    # ------------------------------------------------------------------ journal access
    def _info(self) -> RunInfo | None:
        """The journal's run row, or None while there is no journal (or it cannot be read)."""
        if self._reader is None:
            if not (self.folder / JOURNAL_NAME).is_file():
                return None
            try:
                self._reader = JournalReader(self.folder)
            except TrainDeskError:
                return None
        try:
            return self._reader.run_info()
        except TrainDeskError as exc:
            log.warning("run %s: journal unreadable while supervising: %s", self.name, exc)
            self._close_reader()
            return None

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _note(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Keep an event for the journal. It is written once no attempt is alive: the trainer
        is the journal's one writer while it runs (and a hung one may hold its lock)."""
        self._pending.append((kind, message, data, time.time()))
        if self._attempt is None:
            self._flush_notes()

    def _flush_notes(self, **status: Any) -> None:
        events, self._pending = self._pending, []
        if (events or status) and (self.folder / JOURNAL_NAME).is_file():
            annotate(self.folder / JOURNAL_NAME, events, **status)

    def close(self) -> None:
        """Write what is still pending and release the journal reader (when supervision
        ends)."""
        if self._attempt is None:
            self._flush_notes()
        self._close_reader()

    # ------------------------------------------------------------------ driver events
    def spawned(self, pid: int | None = None) -> None:
        """An attempt's process was started."""
        info = self._info()
        self._attempt = _Attempt(
            spawned=self.clock(),
            base_attempt=info.attempt if info is not None else 0,
            pid=pid,
            oom_kills=cgroup_oom_kills(),
        )
        self.stop_requested = False
        self.lifecycle.to(STARTING, f"pid {pid}" if pid else "")
        if info is not None:  # a restart or resume: the journal exists; note when it began
            self._note("starting", f"attempt {info.attempt + 1} starting", {"pid": pid})

    def request_stop(self) -> None:
        """The user asked the run to stop: whatever happens next, it is not restarted."""
        self.stop_requested = True
        self.lifecycle.to(STOPPING, "stop requested")

    def poll(self) -> Verdict:
        """Look at the journal: follow the run's state, judge its health."""
        att = self._attempt
        if att is None:
            return Verdict(self.lifecycle.state)
        now = self.clock()
        info = self._info()
        if info is None or info.attempt <= att.base_attempt:
            # Not beating yet: imports, building the model, loading data.
            if now - att.spawned > self.health_policy.startup_timeout:
                return self._hung(att, f"no heartbeat {now - att.spawned:.0f} s after start")
            return Verdict(STARTING)
        self._sample_memory(att)
        policy = self.health_policy
        status = derive_status(
            info, heartbeat_timeout=policy.heartbeat_timeout,
            stall_factor=policy.stall_factor, stall_min=policy.stall_min,
        )  # fmt: skip
        if status in LIVE and not self.stop_requested:
            self.lifecycle.to(status, "journal")
        if status == "unresponsive":
            if att.unresponsive_since is None:
                att.unresponsive_since = now
                quiet = f"no heartbeat for more than {policy.heartbeat_timeout:g} s"
                self._note("unresponsive", quiet, {"step": info.heartbeat_step})
                log.warning("run %s is unresponsive: %s", self.name, quiet)
            elif now - att.unresponsive_since >= policy.kill_grace:
                return self._hung(att, f"unresponsive for {now - att.unresponsive_since:.0f} s")
            return Verdict("unresponsive")
        att.unresponsive_since = None
        if status == "stalled" and not att.stalled:
            att.stalled = True
            self._note("stalled", f"no new step since step {info.step}", {"step": info.step})
            log.warning("run %s is stalled at step %d", self.name, info.step)
        elif status != "stalled":
            att.stalled = False
        return Verdict(status)

    def _hung(self, att: _Attempt, why: str) -> Verdict:
        att.hung = True
        log.warning("run %s is hung (%s): killing its process group", self.name, why)
        return Verdict("unresponsive", kill=True, message=f"hung ({why}): killed")

    def _sample_memory(self, att: _Attempt) -> None:
        import psutil

        with contextlib.suppress(Exception):  # a figure that cannot be read stays unknown
            used = psutil.virtual_memory().percent / 100.0
            rss = psutil.Process(att.pid).memory_info().rss if att.pid else None
            att.memory = MemoryFacts(host_used_fraction=used, rss=rss)

    def exited(self, returncode: int, console_error: str | None = None) -> Decision:
        """The attempt's process ended with ``returncode`` (-N: killed by signal N).

        ``console_error``: the ``error: ...`` line it printed, if the driver saw one; the
        reason when the journal has none (a launch refused before its journal existed)."""
        att = self._attempt or _Attempt(self.clock(), 0, None, cgroup_oom_kills())
        self._attempt = None
        ran_for = self.clock() - att.spawned
        info = self._info()
        ours = info is not None and info.attempt > att.base_attempt
        journal_status = info.status if ours and info is not None else None
        error = self._last_error(info.attempt) if ours and info is not None else None
        error = error or console_error
        memory = MemoryFacts(
            att.memory.host_used_fraction, att.memory.rss,
            oom_kills=max(0, cgroup_oom_kills() - att.oom_kills),
        )  # fmt: skip
        exit_class = classify_exit(
            returncode, stop_requested=self.stop_requested, hung=att.hung,
            journal_status=journal_status, error=error, memory=memory,
        )  # fmt: skip
        attempt = info.attempt if ours and info is not None else att.base_attempt + 1
        decision = self._decide(exit_class, attempt, ran_for)
        self.last_decision = decision
        self._record(decision, returncode, ours)
        self._close_reader()
        return decision

    def _decide(self, exit_class: ExitClass, attempt: int, ran_for: float) -> Decision:
        name, kind = self.name, exit_class.kind
        if self.stop_requested or not exit_class.restartable:
            if kind == ExitKind.USAGE:
                message = (f"run {name} failed: {exit_class.reason} (a configuration or usage "
                           "error: not restarted)")  # fmt: skip
            elif kind == ExitKind.BUSY:
                message = f"run {name} not started: {exit_class.reason} (not restarted)"
            else:
                message = f"run {name} {exit_class.state}: {exit_class.reason}"
            self.lifecycle.to(exit_class.state, exit_class.reason)
            return Decision(exit_class, attempt, message=message)
        if kind == ExitKind.DISK_FULL:
            self.lifecycle.to(FAILED, exit_class.reason)
            self.lifecycle.to(PAUSED, "waiting for free disk space")
            free = self.disk_free_min / 2**20
            message = (f"run {name} paused: {exit_class.reason}; it resumes from its last "
                       f"checkpoint when {free:.0f} MiB are free")  # fmt: skip
            return Decision(exit_class, attempt, restart=True, wait_for_space=True,
                            message=message)  # fmt: skip
        delay = self.tracker.next_delay(ran_for)
        self.lifecycle.to(exit_class.state, exit_class.reason)
        policy = self.restart_policy
        if delay is None:
            message = (f"run {name} {exit_class.state} ({exit_class.reason}); gave "
                       f"up after {policy.max_restarts} restarts: fix the cause, then "
                       f"`trainer resume {name}`")  # fmt: skip
            return Decision(exit_class, attempt, message=message)
        message = (f"run {name} attempt {attempt} {exit_class.state} "
                   f"({exit_class.reason}); restarting from its last checkpoint in {delay:.1f} s "
                   f"(restart {self.tracker.consecutive} of {policy.max_restarts})")  # fmt: skip
        return Decision(exit_class, attempt, restart=True, delay=delay, message=message)

    def _record(self, decision: Decision, returncode: int, ours: bool) -> None:
        exit_class = decision.exit
        if exit_class.kind == ExitKind.BUSY:  # another process owns the journal: write nothing
            self._pending = []
            log.info("%s", decision.message)
            return
        data: dict[str, Any] = {**exit_class.to_json(), "returncode": returncode,
                                "attempt": decision.attempt}  # fmt: skip
        events: list[tuple[str, str, dict[str, Any] | None]] = []
        if exit_class.state == CRASHED:
            events.append(("crashed", exit_class.reason, data))
        elif exit_class.kind not in (ExitKind.FINISHED, ExitKind.STOPPED):
            events.append(("exit", f"{exit_class.kind.value}: {exit_class.reason}", data))
        if decision.restart and not decision.wait_for_space:
            events.append(("restart_scheduled", f"restart in {decision.delay:.1f} s",
                           {"delay": decision.delay, "restart": self.tracker.consecutive,
                            "max_restarts": self.restart_policy.max_restarts}))  # fmt: skip
        elif decision.wait_for_space:
            events.append(("waiting_for_space", decision.message, None))
        elif exit_class.restartable and not self.stop_requested:
            events.append(("gave_up", decision.message, {"restarts": self.tracker.total}))
        status = exit_class.state if exit_class.state != PAUSED else FAILED
        now = time.time()
        self._pending += [(kind, message, data, now) for kind, message, data in events]
        self._flush_notes(status=status, exit_reason=exit_class.reason)
        log.info("%s", decision.message)

    def _last_error(self, attempt: int) -> str | None:
        if self._reader is None:
            return None
        try:
            events = self._reader.events()
        except TrainDeskError:
            return None
        errors = [e for e in events if e.kind == "error" and e.attempt == attempt]
        return errors[-1].message if errors else None

    # ------------------------------------------------------------------ queries
    def space_ok(self) -> bool:
        """True when the run folder's disk has room again (for a run paused by a full disk)."""
        try:
            return shutil.disk_usage(self.folder).free >= self.disk_free_min
        except OSError:
            return False

    def cancel(self, reason: str = "restart cancelled by the user") -> None:
        """The user stopped a run waiting to restart (or for disk space): it stays ended."""
        self.stop_requested = True
        if self.lifecycle.state == PAUSED:
            self.lifecycle.to(STOPPED, reason)
        self._note("restart_cancelled", reason)


def cgroup_oom_kills(path: Path = Path("/sys/fs/cgroup/memory.events")) -> int:
    """This cgroup's count of processes killed by the OOM killer (0 where unknown)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
