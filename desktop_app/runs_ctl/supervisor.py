"""The supervisor: starts runs as child processes of the app, streams their console, stops them.

Each run is a :class:`QProcess` child in a new process session, so that the whole process
group (DataLoader workers, torchrun ranks) can be signalled at once. Stopping is cooperative
first (a control message, as ``trainer stop`` sends), then SIGTERM, then SIGKILL of the group.
Waiting is done on futures resolved by the ``finished`` signal: never ``waitForFinished`` and
never a nested event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from desktop_app.runs_ctl.spec import LaunchSpec, resume_args, run_args, trainer_command
from trainer import control
from trainer.errors import TrainDeskError
from trainer.paths import ENV_HOME, RunPaths, validate_run_name

__all__ = ["LaunchSpec", "Supervisor"]

log = logging.getLogger(__name__)

#: A line longer than this without a newline is passed on in pieces (bounded buffers).
MAX_PARTIAL_LINE = 64 * 1024
#: Seconds a child gets after SIGTERM before the group gets SIGKILL (in :meth:`shutdown`).
TERM_GRACE_S = 5.0
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
class _Child:
    folder: str
    name: str
    process: _ChildProcess
    pid: int | None = None
    own_group: bool = False  # started in a new session: pid is also its process group id
    stop_requested: bool = False
    stops: int = 0  # how many times stop() was called
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

    def __init__(
        self,
        runs_dir: Path,
        parent: QObject | None = None,
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        """``runs_dir`` is used for specs without one; ``command`` replaces the trainer
        command prefix (``[python, -m, trainer]``), for tests."""
        super().__init__(parent)
        self.runs_dir = Path(runs_dir)
        self._command = list(command) if command is not None else trainer_command()
        self._children: dict[str, _Child] = {}
        self._released: list[_ChildProcess] = []  # detached children's QProcess objects

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
        if folder.exists() or str(folder) in self._children:
            self.failed_to_start.emit(
                spec.name, f"a run named {spec.name!r} already exists in {folder.parent}"
            )
            return None
        return self._spawn(str(folder), spec.name, run_args(spec), folder.parent)

    def resume(self, run_folder: str | Path, *, max_steps: int | None = None) -> bool:
        """Restart a stopped, crashed or failed run from its last checkpoint, as a child.

        The trainer refuses (exit code 2, reason on stderr) a run that cannot be resumed.
        """
        folder = Path(run_folder)
        if str(folder) in self._children:
            self.failed_to_start.emit(folder.name, f"run {folder.name} is already running")
            return False
        args = resume_args(folder, max_steps)
        return self._spawn(str(folder), folder.name, args, folder.parent) is not None

    def _spawn(self, folder: str, name: str, args: list[str], runs_dir: Path) -> str | None:
        proc = _ChildProcess(self)
        child = _Child(folder, name, proc)
        proc.setProgram(self._command[0])
        proc.setArguments([*self._command[1:], *args])
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        env.insert(ENV_HOME, str(runs_dir))
        proc.setProcessEnvironment(env)
        proc.setStandardInputFile(QProcess.nullDevice())
        if sys.platform != "win32" and hasattr(proc, "setUnixProcessParameters"):
            proc.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
            child.own_group = True
        proc.readyReadStandardOutput.connect(lambda: self._read(child, "stdout"))
        proc.readyReadStandardError.connect(lambda: self._read(child, "stderr"))
        proc.started.connect(lambda: self._on_started(child))
        proc.finished.connect(lambda code, status: self._on_finished(child, code, status))
        proc.errorOccurred.connect(lambda error: self._on_error(child, error))
        self._children[folder] = child
        log.info("starting run %s: %s %s", name, proc.program(), " ".join(proc.arguments()))
        proc.start()
        return folder if folder in self._children else None

    # ------------------------------------------------------------------ stopping
    def stop(self, run_folder: str | Path) -> bool:
        """Ask a child run to stop at its next safe point (with a checkpoint).

        The control message needs the run folder; a child that has not created it yet
        (still starting) gets SIGTERM instead. Asked again, it escalates, for a script that
        never reaches a safe point: the second call sends SIGTERM to its process group, the
        third SIGKILL. False if the run is not a live child.
        """
        child = self._children.get(str(run_folder))
        if child is None:
            return False
        child.stop_requested = True
        child.stops += 1
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
        """
        children = list(self._children.values())
        if not stop_children:
            for child in children:
                self._detach(child)
            return
        for child in children:
            self.stop(child.folder)
        await self._wait_all(children, timeout)
        left = [c for c in children if c.folder in self._children]
        for child in left:
            log.warning("run %s did not stop within %.0f s: terminating it", child.name, timeout)
            self._signal(child, signal.SIGTERM)
        await self._wait_all(left, term_grace)
        left = [c for c in left if c.folder in self._children]
        for child in left:
            log.warning("run %s ignored SIGTERM: killing its process group", child.name)
            self._signal(child, signal.SIGKILL)
        await self._wait_all(left, term_grace)

    def kill_all(self) -> None:
        """Last resort, synchronous: SIGKILL every child's process group (e.g. in
        ``aboutToQuit`` when :meth:`shutdown` could not run). ``finished`` follows."""
        for child in list(self._children.values()):
            child.stop_requested = True
            self._signal(child, signal.SIGKILL)

    async def _wait_all(self, children: list[_Child], timeout: float) -> None:
        if children:
            await asyncio.gather(*(self.wait_finished(c.folder, timeout) for c in children))

    def _detach(self, child: _Child) -> None:
        log.info("leaving run %s running (pid %s)", child.name, child.pid)
        self._children.pop(child.folder, None)
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
            self.output.emit(child.folder, raw.decode("utf-8", "replace").rstrip("\r"), stream)

    def _flush(self, child: _Child) -> None:
        self._read(child, "stdout")
        self._read(child, "stderr")
        for stream in _STREAMS:
            rest = bytes(child.partial[stream])
            child.partial[stream].clear()
            if rest:
                self.output.emit(child.folder, rest.decode("utf-8", "replace"), stream)

    def _on_started(self, child: _Child) -> None:
        child.pid = int(child.process.processId()) or None
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
        child.process.deleteLater()
        log.info("run %s ended: exit code %d%s", child.name, exit_code, " (crashed)" * crashed)
        self.finished.emit(child.folder, exit_code, crashed)
        for future in child.waiters:
            if not future.done():
                future.set_result(exit_code)

    def _on_error(self, child: _Child, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart:
            return  # crashes and pipe errors are reported by ``finished``
        message = f"cannot start {child.process.program()}: {child.process.errorString()}"
        self._children.pop(child.folder, None)
        child.process.deleteLater()
        log.warning("run %s failed to start: %s", child.name, message)
        self.failed_to_start.emit(child.name, message)
        for future in child.waiters:
            if not future.done():
                future.set_result(-1)
