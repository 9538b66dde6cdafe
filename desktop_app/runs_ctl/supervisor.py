"""The supervisor: starts runs as child processes of the app, streams their console, stops them,
watches their health and restarts them.

Each run is a :class:`QProcess` child in a new process session, so that the whole process
group (DataLoader workers, torchrun ranks) can be signalled at once. A command run's trainer
starts in the command's working directory, and so does each of its restarts (the trainer runs
the command, and reads its TensorBoard folder, from there). Stopping is cooperative
first (a control message, as ``trainer stop`` sends), then SIGTERM, then SIGKILL of the group.
Waiting is done on futures resolved by the ``finished`` signal: never ``waitForFinished`` and
never a nested event loop.

Every run is driven through a Qt-free :class:`~trainer.supervision.core.Supervision` (the same
lifecycle and restart policy as ``trainer run --max-restarts``): one timer polls the health of
every live child (a hung one's group is killed), and a crashed or failed attempt is restarted
from its last checkpoint after the policy's delay, on a single-shot timer, with the same
Supervision (its restart count lives there).

Why over 400 lines: a run's whole life as a QProcess (start, console, cooperative stop then TERM
then KILL, detach, health poll, restarts) is one state machine over Qt signals; the policy
itself is Qt-free in trainer.supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from desktop_app.runs_ctl.spec import LaunchSpec, resume_args, run_args, trainer_command
from trainer import control
from trainer.errors import TrainDeskError
from trainer.paths import ENV_HOME, JOURNAL_NAME, RunPaths, validate_run_name
from trainer.supervision.core import Decision, Supervision
from trainer.supervision.policy import HealthPolicy, RestartPolicy
from trainer.supervision.process import remove_half_made

__all__ = ["LaunchSpec", "Supervisor"]

log = logging.getLogger(__name__)

#: A line longer than this without a newline is passed on in pieces (bounded buffers).
MAX_PARTIAL_LINE = 64 * 1024
#: Seconds a child gets after SIGTERM before the group gets SIGKILL (in :meth:`shutdown`).
TERM_GRACE_S = 5.0
#: How often the live children's health is polled (their journals' heartbeats).
POLL_MS = 500
#: How often a run paused by a full disk looks at the free space again.
SPACE_POLL_MS = 5000
#: Console lines kept per run to show with a failure (see ``launch_failed``).
CONSOLE_TAIL_LINES = 40
_STREAMS = ("stdout", "stderr")


class _ChildProcess(QProcess):
    """A QProcess that can let go of a running child (its destructor would kill it)."""

    def release(self) -> None:
        """Forget the child: it keeps running; its pipes close when this object goes."""
        for channel in (
            QProcess.ProcessChannel.StandardOutput,
            QProcess.ProcessChannel.StandardError,
        ):
            self.closeReadChannel(channel)  # discard what it still prints until then
        self.setProcessState(QProcess.ProcessState.NotRunning)


@dataclass(eq=False)
class _Tracked:
    """One run folder under supervision, across its attempts."""

    folder: str
    name: str
    first_args: list[str]  # ``trainer run ...``: a first attempt that left no journal reruns it
    supervision: Supervision
    cwd: str | None = None  # a command run's working directory (None: the app's)
    health: str = ""  # the last verdict's health
    timer: QTimer | None = None  # a pending restart, or the look at the free disk space
    due: float | None = None  # when the pending restart starts (monotonic)
    #: The newest console lines (both streams) of its newest attempt, for a failure's cause.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=CONSOLE_TAIL_LINES))
    error_line: str | None = None  # the newest ``error: ...`` line it printed on stderr


@dataclass(eq=False)
class _Child:
    folder: str
    name: str
    process: _ChildProcess
    tracked: _Tracked
    pid: int | None = None
    own_group: bool = False  # started in a new session: pid is also its process group id
    stop_requested: bool = False
    stops: int = 0  # how many times stop() was called
    killed_hung: bool = False  # the health poll killed it
    poll_failed: bool = False  # polling its journal raised (reported once)
    partial: dict[str, bytearray] = field(
        default_factory=lambda: {s: bytearray() for s in _STREAMS}
    )
    waiters: list[asyncio.Future[int]] = field(default_factory=list)


class Supervisor(QObject):
    """Starts runs as child processes and reports their console output and their end.

    Run folders are identified by ``str(path)`` in every signal and method.
    """

    #: ``(run_folder, line, stream)``: one console line, ``stream`` is "stdout" or "stderr".
    output = Signal(str, str, str)
    #: ``(run_folder)``: the child process started.
    started = Signal(str)
    #: ``(run_folder, exit_code, crashed)``: the child ended. ``exit_code`` is -N for a child
    #: killed by signal N. ``crashed`` is True when it was killed without the app asking.
    finished = Signal(str, int, bool)
    #: ``(run_name, message)``: the run could not be started (bad name, no program, ...).
    failed_to_start = Signal(str, str)
    #: ``(run_folder, health, message)``: a live child's health changed (starting, running,
    #: paused, stopping, unresponsive, stalled), or it was killed as hung (``message`` says so).
    health_changed = Signal(str, str, str)
    #: ``(run_folder, delay_s, message)``: the attempt that ended is restarted from its last
    #: checkpoint in ``delay_s`` seconds; ``delay_s`` < 0: once the disk has room again.
    restarting = Signal(str, float, str)
    #: ``(run_folder, state, message)``: supervision of the run ended without a restart
    #: (finished, stopped, failed or crashed and given up, restart cancelled); ``state`` is
    #: the run's lifecycle state, ``message`` says why, for the status bar.
    ended = Signal(str, str, str)
    #: ``(run_folder, run_name, message, console_tail)``: an attempt failed before the run had
    #: a journal (a bad config value, an unwritable runs directory, a missing script): there
    #: is no run to list, so this carries the cause: the trainer's ``error:`` line (or the
    #: exit) and the last lines of its console (a list of str). Sent after ``ended``.
    launch_failed = Signal(str, str, str, object)

    def __init__(
        self,
        runs_dir: Path,
        parent: QObject | None = None,
        *,
        command: Sequence[str] | None = None,
        restart: RestartPolicy | None = None,
        health: HealthPolicy | None = None,
    ) -> None:
        """``runs_dir`` is used for specs without one; ``command`` replaces the trainer
        command prefix (``[python, -m, trainer]``), for tests; ``restart`` and ``health`` are
        the policies (the settings' in the app; defaults otherwise)."""
        super().__init__(parent)
        self.runs_dir = Path(runs_dir)
        self._command = list(command) if command is not None else trainer_command()
        self.restart_policy = restart or RestartPolicy()
        self.health_policy = health or HealthPolicy()
        self._children: dict[str, _Child] = {}
        self._tracked: dict[str, _Tracked] = {}  # live children and runs waiting to restart
        self._released: list[_ChildProcess] = []  # detached children's QProcess objects
        self._cwds: dict[str, str] = {}  # command runs launched here: folder -> working dir
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self._poll)

    def set_policies(self, restart: RestartPolicy, health: HealthPolicy) -> None:
        """New policies, for the runs supervised now (their restart counts kept) and later."""
        self.restart_policy, self.health_policy = restart, health
        for tracked in self._tracked.values():
            sup = tracked.supervision
            sup.restart_policy = sup.tracker.policy = restart
            sup.health_policy = health

    # ------------------------------------------------------------------ queries
    def running(self) -> list[str]:
        """Run folders of the children that have not ended yet."""
        return list(self._children)

    def is_running(self, run_folder: str | Path) -> bool:
        """True while the run is a live child of this supervisor."""
        return str(run_folder) in self._children

    def pid(self, run_folder: str | Path) -> int | None:
        """The child's pid (also its process group id on Unix), once started."""
        child = self._children.get(str(run_folder))
        return child.pid if child is not None else None

    def stop_requests(self, run_folder: str | Path) -> int:
        """How many times :meth:`stop` was called for a live child (0: none, or not a child)."""
        child = self._children.get(str(run_folder))
        return child.stops if child is not None else 0

    def pending(self) -> list[str]:
        """Run folders waiting to restart (or for disk space), with no live child now."""
        return [f for f, t in self._tracked.items() if t.timer is not None]

    def is_pending(self, run_folder: str | Path) -> bool:
        """True while the run waits to restart (or for disk space)."""
        tracked = self._tracked.get(str(run_folder))
        return tracked is not None and tracked.timer is not None

    def is_supervised(self, run_folder: str | Path) -> bool:
        """A live child, or a run waiting to restart: :meth:`stop` applies to both."""
        return self.is_running(run_folder) or self.is_pending(run_folder)

    def restart_in(self, run_folder: str | Path) -> float | None:
        """Seconds until a pending restart (-1: waiting for disk space; None: none pending)."""
        tracked = self._tracked.get(str(run_folder))
        if tracked is None or tracked.timer is None:
            return None
        if tracked.due is None:
            return -1.0
        return max(0.0, tracked.due - time.monotonic())

    def health(self, run_folder: str | Path) -> str | None:
        """A live child's health as last polled (None: not a child, or not polled yet)."""
        child = self._children.get(str(run_folder))
        return (child.tracked.health or None) if child is not None else None

    def supervision(self, run_folder: str | Path) -> Supervision | None:
        """The run's :class:`Supervision` while it is a child or waits to restart."""
        tracked = self._tracked.get(str(run_folder))
        return tracked.supervision if tracked is not None else None

    # ------------------------------------------------------------------ launching
    def start(self, spec: LaunchSpec) -> str | None:
        """Launch ``spec``; returns its run folder, or None (``failed_to_start`` is emitted)."""
        if spec.runs_dir is None:
            spec = replace(spec, runs_dir=self.runs_dir)
        spec = spec.resolved(taken={Path(f).name for f in self._children})
        assert spec.name is not None
        try:
            validate_run_name(spec.name)
        except TrainDeskError as exc:
            self.failed_to_start.emit(spec.name, str(exc))
            return None
        folder = spec.run_folder
        if folder.exists() or str(folder) in self._tracked:
            self.failed_to_start.emit(
                spec.name, f"a run named {spec.name!r} already exists in {folder.parent}"
            )
            return None
        cwd = None
        if spec.is_command:
            cwd = str(Path(spec.cwd).expanduser().resolve()) if spec.cwd else os.getcwd()
            self._cwds[str(folder)] = cwd
        tracked = self._track(str(folder), spec.name, run_args(spec), cwd)
        return self._spawn(tracked, tracked.first_args, folder.parent)

    def working_directory(self, run_folder: str | Path) -> str | None:
        """The working directory of a command run launched here (None: not one)."""
        return self._cwds.get(str(run_folder))

    def resume(
        self, run_folder: str | Path, *, max_steps: int | None = None, trust: bool = False
    ) -> bool:
        """Restart a stopped, crashed or failed run from its last checkpoint, as a child.

        The trainer refuses (exit code 2, reason on stderr) a run that cannot be resumed. A
        command run launched by this app runs again in its working directory.
        """
        folder = Path(run_folder)
        if str(folder) in self._children:
            self.failed_to_start.emit(folder.name, f"run {folder.name} is already running")
            return False
        old = self._tracked.get(str(folder))
        if old is not None:  # waiting to restart: the user's resume replaces the policy's
            self._end_pending(old, "restarted by the user instead")
        args = resume_args(folder, max_steps, trust=trust)
        tracked = self._track(str(folder), folder.name, args, self._cwds.get(str(folder)))
        return self._spawn(tracked, args, folder.parent) is not None

    def _track(
        self, folder: str, name: str, first_args: list[str], cwd: str | None = None
    ) -> _Tracked:
        """Start supervising a run afresh (a new restart count)."""
        supervision = Supervision(
            Path(folder), restart=self.restart_policy, health=self.health_policy
        )
        tracked = _Tracked(folder, name, first_args, supervision, cwd)
        self._tracked[folder] = tracked
        return tracked

    def _forget(self, tracked: _Tracked) -> None:
        """Supervision of the run ends."""
        if self._tracked.get(tracked.folder) is tracked:
            del self._tracked[tracked.folder]
        self._stop_timer(tracked)
        tracked.supervision.close()

    def _spawn(self, tracked: _Tracked, args: list[str], runs_dir: Path) -> str | None:
        folder, name = tracked.folder, tracked.name
        proc = _ChildProcess(self)
        child = _Child(folder, name, proc, tracked)
        proc.setProgram(self._command[0])
        proc.setArguments([*self._command[1:], *args])
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        env.insert(ENV_HOME, str(runs_dir))
        proc.setProcessEnvironment(env)
        proc.setStandardInputFile(QProcess.nullDevice())
        if tracked.cwd is not None:
            proc.setWorkingDirectory(tracked.cwd)
        if sys.platform != "win32" and hasattr(proc, "setUnixProcessParameters"):
            proc.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
            child.own_group = True
        proc.readyReadStandardOutput.connect(lambda: self._read(child, "stdout"))
        proc.readyReadStandardError.connect(lambda: self._read(child, "stderr"))
        proc.started.connect(lambda: self._on_started(child))
        proc.finished.connect(lambda code, status: self._on_finished(child, code, status))
        proc.errorOccurred.connect(lambda error: self._on_error(child, error))
        self._children[folder] = child
        command = " ".join([proc.program(), *proc.arguments()])
        log.info("starting run %s: %s", name, command, extra={"run": name})
        proc.start()
        self._sync_poll_timer()
        return folder if folder in self._children else None

    # ------------------------------------------------------------------ stopping
    def stop(self, run_folder: str | Path) -> bool:
        """Ask a child run to stop at its next safe point (with a checkpoint).

        The control message needs the run folder; a child that has not created it yet
        (still starting) gets SIGTERM instead. Asked again, it escalates, for a script that
        never reaches a safe point: the second call sends SIGTERM to its process group, the
        third SIGKILL. A run waiting to restart is not restarted (its restart is cancelled).
        False if the run is neither a live child nor waiting to restart.
        """
        child = self._children.get(str(run_folder))
        if child is None:
            tracked = self._tracked.get(str(run_folder))
            if tracked is None or tracked.timer is None:
                return False
            self._end_pending(tracked, "restart cancelled by the user")
            return True
        child.stop_requested = True
        child.stops += 1
        if child.pid is not None:  # else when it has started (see _on_started)
            child.tracked.supervision.request_stop()
        paths = RunPaths(Path(child.folder))
        if child.stops >= 3:
            self._signal(child, signal.SIGKILL)
        elif child.stops == 2 or not paths.root.is_dir():
            self._signal(child, signal.SIGTERM)
        else:
            control.send(paths, "stop")
        return True

    async def wait_finished(self, run_folder: str | Path, timeout: float | None = None) -> bool:
        """Wait until the child ends (True), or ``timeout`` passes (False). True if not a child."""
        child = self._children.get(str(run_folder))
        if child is None:
            return True
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        child.waiters.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                child.waiters.remove(future)
        return True

    async def shutdown(
        self, stop_children: bool, timeout: float = 30.0, *, term_grace: float = TERM_GRACE_S
    ) -> None:
        """End supervision, before the app quits.

        ``stop_children``: send each live child "stop" and wait up to ``timeout`` seconds;
        then SIGTERM the ones left, wait ``term_grace`` seconds, and SIGKILL their process
        groups. Otherwise detach: the children keep running (and keep writing their logs).
        Either way, runs waiting to restart are not restarted (they stay as they ended).
        """
        self.cancel_restarts("restart cancelled: the app is closing")
        children = list(self._children.values())
        if not stop_children:
            for child in children:
                self._detach(child)
            return
        for child in children:
            if child.stops == 0:  # one the user already asked is stopping: no escalation
                self.stop(child.folder)
        await self._wait_all(children, timeout)
        left = [c for c in children if c.folder in self._children]
        for child in left:
            log.warning("run %s did not stop within %.0f s: terminating it", child.name, timeout,
                        extra={"run": child.name})  # fmt: skip
            self._signal(child, signal.SIGTERM)
        await self._wait_all(left, term_grace)
        left = [c for c in left if c.folder in self._children]
        for child in left:
            log.warning("run %s ignored SIGTERM: killing its process group", child.name,
                        extra={"run": child.name})  # fmt: skip
            self._signal(child, signal.SIGKILL)
        await self._wait_all(left, term_grace)

    def kill_all(self) -> None:
        """Last resort, synchronous: SIGKILL every child's process group (e.g. in
        ``aboutToQuit`` when :meth:`shutdown` could not run). ``finished`` follows; none
        is restarted, and runs waiting to restart are not restarted either."""
        self.cancel_restarts("restart cancelled: the app is closing")
        for child in list(self._children.values()):
            child.stop_requested = True
            if child.pid is not None:
                child.tracked.supervision.request_stop()
            self._signal(child, signal.SIGKILL)

    def abandon(self, stop_children: bool) -> None:
        """Synchronous, for when the event loop is gone (``aboutToQuit``): ask each live child
        to stop at its next safe point (or not), then detach them all; they stop with a
        checkpoint (or train on) without the app. Runs waiting to restart are not restarted."""
        self.cancel_restarts("restart cancelled: the app is closing")
        for child in list(self._children.values()):
            if stop_children and child.stops == 0:
                self.stop(child.folder)
            self._detach(child)

    async def _wait_all(self, children: list[_Child], timeout: float) -> None:
        if children:
            await asyncio.gather(*(self.wait_finished(c.folder, timeout) for c in children))

    def _detach(self, child: _Child) -> None:
        log.info("leaving run %s running (pid %s)", child.name, child.pid,
                 extra={"run": child.name})  # fmt: skip
        self._children.pop(child.folder, None)
        self._forget(child.tracked)
        self._sync_poll_timer()
        proc = child.process
        signals = (proc.readyReadStandardOutput, proc.readyReadStandardError, proc.finished)
        for sig in (*signals, proc.errorOccurred, proc.started):
            with contextlib.suppress(RuntimeError):
                sig.disconnect()
        proc.release()
        self._released.append(proc)  # released: destroying it no longer kills the child
        for future in child.waiters:
            if not future.done():
                future.set_result(0)

    def _signal(self, child: _Child, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's whole process group (Windows: terminate/kill)."""
        if sys.platform == "win32" or child.pid is None:
            if sig == signal.SIGKILL:
                child.process.kill()
            else:
                child.process.terminate()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if child.own_group:
                os.killpg(child.pid, sig)
            else:
                os.kill(child.pid, sig)

    # ------------------------------------------------------------------ process events
    def _read(self, child: _Child, stream: str) -> None:
        proc = child.process
        data = (
            proc.readAllStandardOutput() if stream == "stdout" else proc.readAllStandardError()
        ).data()
        buf = child.partial[stream]
        buf += data
        *lines, rest = bytes(buf).split(b"\n")
        if len(rest) > MAX_PARTIAL_LINE:
            lines.append(rest)
            rest = b""
        buf[:] = rest
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            self._keep(child.tracked, line, stream)
            self.output.emit(child.folder, line, stream)

    @staticmethod
    def _keep(tracked: _Tracked, line: str, stream: str) -> None:
        tracked.tail.append(line)
        if stream == "stderr" and line.startswith("error: "):
            tracked.error_line = line.removeprefix("error: ").strip()

    def _flush(self, child: _Child) -> None:
        self._read(child, "stdout")
        self._read(child, "stderr")
        for stream in _STREAMS:
            rest = bytes(child.partial[stream])
            child.partial[stream].clear()
            if rest:
                line = rest.decode("utf-8", "replace")
                self._keep(child.tracked, line, stream)
                self.output.emit(child.folder, line, stream)

    def _on_started(self, child: _Child) -> None:
        child.pid = int(child.process.processId()) or None
        child.tracked.supervision.spawned(child.pid)
        if child.stop_requested:  # stopped before it had started: still no restart
            child.tracked.supervision.request_stop()
        child.tracked.health = ""
        child.tracked.tail.clear()  # a new attempt: its own console, its own cause
        child.tracked.error_line = None
        self.started.emit(child.folder)

    def _on_finished(self, child: _Child, code: int, status: QProcess.ExitStatus) -> None:
        if not shiboken6.isValid(child.process) or not shiboken6.isValid(self):
            return  # emitted by the destructor of a QProcess going away with its parent
        self._flush(child)
        killed = status == QProcess.ExitStatus.CrashExit
        exit_code = -code if killed and code > 0 else code
        crashed = killed and not child.stop_requested
        if child.pid is not None and child.own_group:
            # Leftover members of its group (workers the trainer did not reap) go with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        self._children.pop(child.folder, None)
        self._sync_poll_timer()
        child.process.deleteLater()
        log.info("run %s ended: exit code %d%s", child.name, exit_code, " (crashed)" * crashed,
                 extra={"run": child.name})  # fmt: skip
        # First the journal's final word (status, exit reason), then the signals.
        decision = self._exited(child, exit_code)
        self.finished.emit(child.folder, exit_code, crashed)
        if decision is not None:
            self._decided(child.tracked, decision)
        for future in child.waiters:
            if not future.done():
                future.set_result(exit_code)

    def _on_error(self, child: _Child, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart:
            return  # crashes and pipe errors are reported by ``finished``
        message = f"cannot start {child.process.program()}: {child.process.errorString()}"
        self._children.pop(child.folder, None)
        self._forget(child.tracked)
        self._sync_poll_timer()
        child.process.deleteLater()
        log.warning("run %s failed to start: %s", child.name, message, extra={"run": child.name})
        self.failed_to_start.emit(child.name, message)
        for future in child.waiters:
            if not future.done():
                future.set_result(-1)

    # ------------------------------------------------------------------ health and restarts
    def _sync_poll_timer(self) -> None:
        """The health poll runs only while there are live children."""
        if self._children and not self._poll_timer.isActive():
            self._poll_timer.start()
        elif not self._children and self._poll_timer.isActive():
            self._poll_timer.stop()

    def _poll(self) -> None:
        for child in list(self._children.values()):
            if child.pid is None or child.poll_failed or child.folder not in self._children:
                continue
            tracked = child.tracked
            try:
                verdict = tracked.supervision.poll()
            except Exception:  # a journal we cannot judge: say so once, keep the child
                child.poll_failed = True
                log.exception("cannot watch the health of run %s", child.name,
                              extra={"run": child.name})  # fmt: skip
                continue
            changed = verdict.health != tracked.health
            tracked.health = verdict.health
            if verdict.kill and not child.killed_hung:
                child.killed_hung = True
                self._signal(child, signal.SIGKILL)
                self.health_changed.emit(child.folder, verdict.health, verdict.message)
            elif changed:
                self.health_changed.emit(child.folder, verdict.health, verdict.message)

    def _exited(self, child: _Child, exit_code: int) -> Decision | None:
        """The supervision's decision on the attempt that ended (None if it failed to make
        one: the run then stays as the journal says, not restarted)."""
        try:
            return child.tracked.supervision.exited(exit_code, child.tracked.error_line)
        except Exception:
            log.exception("run %s: cannot decide after its exit", child.name,
                          extra={"run": child.name})  # fmt: skip
            self._forget(child.tracked)
            state = "stopped" if child.stop_requested else "crashed"
            self.ended.emit(child.folder, state, f"run {child.name} ended (exit code {exit_code})")
            return None

    def _decided(self, tracked: _Tracked, decision: Decision) -> None:
        """Carry out what the supervision decided after an attempt ended."""
        if not decision.restart:
            self._forget(tracked)
            self.ended.emit(tracked.folder, decision.exit.state, decision.message)
            never_ran = not (Path(tracked.folder) / JOURNAL_NAME).is_file()
            if never_ran and decision.exit.state in ("failed", "crashed"):
                self.launch_failed.emit(
                    tracked.folder, tracked.name, decision.message, list(tracked.tail)
                )
            return
        timer = QTimer(self)
        tracked.timer = timer
        if decision.wait_for_space:
            tracked.due = None
            timer.setInterval(SPACE_POLL_MS)
            timer.timeout.connect(lambda: self._check_space(tracked))
            delay = -1.0
        else:
            delay = decision.delay
            tracked.due = time.monotonic() + delay
            timer.setSingleShot(True)
            timer.setInterval(round(delay * 1000))
            timer.timeout.connect(lambda: self._restart(tracked))
        timer.start()
        self.restarting.emit(tracked.folder, delay, decision.message)

    def _check_space(self, tracked: _Tracked) -> None:
        if tracked.supervision.space_ok():
            self._restart(tracked)

    def _restart(self, tracked: _Tracked) -> None:
        """Start the next attempt: ``trainer resume`` from the last checkpoint."""
        if self._tracked.get(tracked.folder) is not tracked or tracked.folder in self._children:
            return
        self._stop_timer(tracked)
        folder = Path(tracked.folder)
        if (folder / JOURNAL_NAME).is_file():
            args = resume_args(folder)
        else:  # the first attempt died before its journal existed: start it afresh
            remove_half_made(folder)
            args = tracked.first_args
        log.info("restarting run %s", tracked.name, extra={"run": tracked.name})
        self._spawn(tracked, args, folder.parent)

    def _end_pending(self, tracked: _Tracked, reason: str) -> None:
        """A run waiting to restart is not restarted: it stays as it ended."""
        tracked.supervision.cancel(reason)
        state = tracked.supervision.lifecycle.state
        self._forget(tracked)
        self.ended.emit(tracked.folder, state, f"run {tracked.name}: {reason}")

    def cancel_restarts(self, reason: str = "restart cancelled") -> None:
        """No run waiting to restart (or for disk space) is restarted: each stays as it ended
        (``ended`` is emitted for each)."""
        for folder in self.pending():
            self._end_pending(self._tracked[folder], reason)

    @staticmethod
    def _stop_timer(tracked: _Tracked) -> None:
        if tracked.timer is not None:
            tracked.timer.stop()
            tracked.timer.deleteLater()
            tracked.timer = None
        tracked.due = None
