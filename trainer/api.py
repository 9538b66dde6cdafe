"""The training API for users' own code (and the built-in recipes).

::

    import trainer

    with trainer.init(name="my-run", config={"lr": 1e-3, "max_steps": 1000}) as run:
        state = run.restore()                # None on a fresh run, the checkpoint on resume
        for step in range(run.start_step + 1, run.max_steps + 1):
            loss = train_one_step()
            run.log({"train/loss": loss}, step=step)
            if run.should_checkpoint(step):
                run.checkpoint({"model": model.state_dict(), ...}, step=step)
            if run.should_stop():            # a safe point: stop/pause/resume requests land here
                run.checkpoint({...}, step=step)
                break

Run as ``python my_train.py`` it makes its own run folder under the runs directory; launched
by ``trainer run my_train.py`` or the desktop app it takes the run folder from the
environment (``TRAINDESK_RUN_DIR``). This module does not import torch until a checkpoint is
saved or restored.

Why over 400 lines: ``Run`` is the one public object of the training API; its methods (log,
checkpoint, restore, should_stop, the heartbeat, limits, control) share its state and its
lifecycle. What needs none of that state is elsewhere (checkpoint, control, jsonlog, sysmon).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from trainer import control, jail, settings
from trainer.errors import TrainDeskError, UsageError, disk_full, disk_full_cause
from trainer.journal.writer import JournalWriter
from trainer.jsonlog import attach_run_log
from trainer.paths import RunPaths, runs_dir, validate_run_name, write_private_text
from trainer.private import private_dir
from trainer.resources.limits import Limits
from trainer.runlock import RunLock
from trainer.runs import default_run_name, new_run_id
from trainer.supervision.lifecycle import (
    PAUSED,
    QUEUED,
    RUNNING,
    STARTING,
    STOPPING,
    Lifecycle,
)

log = logging.getLogger("trainer.run")

HEARTBEAT_INTERVAL = 0.5
#: Seconds a run gets, after SIGTERM or SIGINT, to reach a safe point before it exits anyway
#: ($TRAINDESK_STOP_DEADLINE). Supervisors wait a little longer before SIGKILL.
STOP_DEADLINE_S = 25.0
ENV_STOP_DEADLINE = settings.STOP_DEADLINE.name
SAMPLE_INTERVAL = 2.0

_active: Run | None = None


class Run:
    """One attempt of a run: logs metrics, checkpoints, heartbeats and obeys control messages.

    Build one with :func:`init` (or the CLI's ``create_run``/``resume_run``), not directly.
    """

    def __init__(
        self,
        paths: RunPaths,
        writer: JournalWriter,
        *,
        run_id: str,
        config: dict[str, Any],
        start_step: int = 0,
        max_steps: int | None = None,
        keep_checkpoints: int = 3,
        checkpoint_every: int | None = None,
        resume_payload: dict[str, Any] | None = None,
        lock: RunLock | None = None,
    ) -> None:
        self.paths = paths
        #: The run folder's lock, held until finish() (one writer per run).
        self.lock = lock
        if lock is not None:
            lock.set_attempt(writer.attempt)
        self._resume_payload = resume_payload
        self.id = run_id
        self.name = paths.name
        self.config = config
        self.attempt = writer.attempt
        #: The step this attempt resumed from (0 on a fresh run).
        self.start_step = start_step
        #: The newest step logged (or resumed from).
        self.step = start_step
        self.max_steps = max_steps
        self.keep_checkpoints = keep_checkpoints
        self.checkpoint_every = checkpoint_every
        self.stop_reason: str | None = None
        #: The newest metrics logged (for progress displays; a copy).
        self.last_metrics: dict[str, float] | None = None
        self._writer = writer
        self._started = False
        self._finished = False
        self._checkpoint_requested = False
        self._control_waiting = threading.Event()
        self._halt_heart = threading.Event()
        self._old_handlers: dict[int, Any] = {}
        self._sigint_count = 0
        self._deadline: threading.Thread | None = None
        #: Limits watched by the heartbeat thread (set by the CLI; "limits" messages change it).
        self.limits = Limits()
        # Written by the heartbeat thread, read by the training thread (one str reference:
        # atomic under the GIL; the reader acts on it at its next safe point).
        self._over_limit: str | None = None
        self._disk_low: str | None = None
        self._log_handler = attach_run_log(
            jail.check(paths.root, paths.structured_log), run_id, self.attempt
        )
        self._life = Lifecycle(STARTING, name=self.name)
        # A daemon: finish() joins it; a script that never finishes the run must still exit.
        self._heart = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)

    def adopt_options(
        self, config: Mapping[str, Any], max_steps: int | None, checkpoint_every: int | None
    ) -> None:
        """Take step budget and checkpoint interval from a script's own defaults if unset."""
        if self.max_steps is None:
            value = config.get("max_steps", max_steps)
            if isinstance(value, int):
                self.max_steps = value
                self._writer.set_fields(max_steps=value)
        if self.checkpoint_every is None:
            value = config.get("checkpoint_every", checkpoint_every)
            self.checkpoint_every = value if isinstance(value, int) and value > 0 else None

    # ---------------------------------------------------------------- lifecycle
    @property
    def state(self) -> str:
        """The lifecycle state: queued, starting, running, paused, stopping, or how it ended."""
        return self._life.state

    def start(self) -> Run:
        """Mark the run as running (called by :func:`init` and the CLI); idempotent."""
        if self._started:
            return self
        self._started = True
        kind = "started" if self.attempt == 1 else "restarted"
        message = "" if self.attempt == 1 else f"attempt {self.attempt} from step {self.start_step}"
        self._transition(RUNNING, kind, message, step=self.start_step)
        self._writer.heartbeat(self.step)
        # Commits of points carry the heartbeat from now on (the beat thread then rests).
        self._writer.beat_with_points(lambda: self.step)
        self._heart.start()
        log.info("run %s attempt %d started at step %d", self.name, self.attempt, self.step)
        return self

    def finish(self, status: str | None = None, reason: str | None = None) -> None:
        """Flush everything and close the journal with a final status.

        Without ``status``: "stopped" if a stop was requested, else "finished".
        """
        global _active
        if self._finished:
            return
        self._finished = True
        if status is None:
            status = "stopped" if self.stop_reason else "finished"
            reason = reason or self.stop_reason
        self._halt_heart.set()
        if self._heart.is_alive():
            self._heart.join(timeout=5)
        try:
            if self._writer.error is None:
                self._writer.heartbeat(self.step)
                self._transition(status, status, reason or "", step=self.step, exit_reason=reason)
            self._writer.close(progress=self._say_progress)
            if self._writer.error is not None:
                raise self._writer.failure()
        finally:
            self.restore_signal_handlers()
            logging.getLogger("trainer").removeHandler(self._log_handler)
            self._log_handler.close()
            if self.lock is not None and not self._writer.writing:
                self.lock.release()
            if _active is self:
                _active = None
        log.info("run %s %s%s", self.name, status, f": {reason}" if reason else "")

    def _say_progress(self, line: str) -> None:
        """Progress of a long final write, on stderr and in the structured log."""
        log.info("run %s: %s", self.name, line)
        with contextlib.suppress(OSError, ValueError):
            print(f"trainer: finishing {self.name}: {line}", file=sys.stderr, flush=True)

    def fail(self, exc: BaseException) -> None:
        """Journal an error with its traceback and finish as "failed"."""
        if self._finished:
            return
        text = "".join(traceback.format_exception(exc))
        reason = f"{type(exc).__name__}: {exc}"
        if self._writer.error is None:
            self._writer.event("error", reason, step=self.step, data={"traceback": text})
        self.finish("failed", reason)

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("stopped", "interrupted")
        else:
            self.fail(exc)

    def _transition(
        self,
        new: str,
        kind: str,
        message: str = "",
        *,
        step: int | None = None,
        exit_reason: str | None = None,
    ) -> bool:
        """Move the lifecycle to ``new`` and journal it (an event and the status); an illegal
        transition is rejected and logged, and nothing is journaled."""
        old = self._life.state
        if not self._life.to(new, message):
            return False
        self._writer.event(kind, message, step=step, data={"from": old, "to": new})
        self._writer.set_status(new, exit_reason=exit_reason, step=step)
        return True

    # ---------------------------------------------------------------- resources
    def queued(self, reason: str, position: int = 0) -> None:
        """Waiting for GPUs: status "queued" with the reason (journaled when it changes)."""
        data = {"position": position}
        if not self._transition(QUEUED, "queued", reason, exit_reason=reason):
            self._writer.event("queued", reason, data=data)
            self._writer.set_status(QUEUED, exit_reason=reason)
        log.info("queued: %s", reason)

    def granted(self, gpus: list[int], limits: str) -> None:
        """Resources leased: journal which GPUs and limits the run got."""
        message = (f"GPU {', '.join(map(str, gpus))}" if gpus else "no GPU") + f"; {limits}"
        if self._life.state == QUEUED:
            self._transition(STARTING, "resources", message)
        else:
            self._writer.event("resources", message, data={"gpus": gpus})
        log.info("resources: %s", message)

    def poll_control(self) -> bool:
        """Apply pending control messages outside the training loop (e.g. while queued);
        True if the run is to stop."""
        if control.pending(self.paths):
            self._apply([m for m in control.receive(self.paths) if m.command != "pause"])
        return self.stop_reason is not None

    # ---------------------------------------------------------------- metrics
    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record scalars at ``step`` (default: the step after the newest). Costs microseconds.

        The values are copied at the call: a dict reused for the next step is safe. When the
        journal writer falls behind, this waits for it (nothing is dropped).
        """
        if step is None:
            step = self.step + 1
        if step > self.step:
            self.step = step
        self.last_metrics = self._writer.log_scalars(metrics, step)

    def event(self, kind: str, message: str = "", **data: Any) -> None:
        """Journal an event of the user's own."""
        self._writer.event(kind, message, step=self.step, data=data or None)

    # ---------------------------------------------------------------- checkpoints
    def should_checkpoint(self, step: int | None = None) -> bool:
        """True when a checkpoint is due: every ``checkpoint_every`` steps, or on request."""
        step = self.step if step is None else step
        if self._checkpoint_requested:
            return True
        every = self.checkpoint_every
        return bool(every) and step > self.start_step and step % every == 0  # type: ignore[operator]

    def checkpoint(self, state: dict[str, Any], step: int | None = None) -> Path:
        """Save ``state`` (tensors, state dicts, numbers) atomically, with the RNG states."""
        from trainer import checkpoint

        step = self.step if step is None else step
        # Points up to this step must be committed before a checkpoint exists that a resume
        # would start after; otherwise a crash right after saving loses them for good.
        self._writer.flush()
        try:
            path = checkpoint.save(self.paths.checkpoints, step, state, keep=self.keep_checkpoints)
        except Exception as exc:
            if disk_full_cause(exc) is None:
                raise
            raise disk_full(f"the checkpoint at step {step}", exc) from exc
        self._checkpoint_requested = False
        # A checkpoint at a step is that step reached, logged or not: the status and the
        # final "stopped at step N" then name the step a resume starts from.
        self.step = max(self.step, step)
        self._writer.event("checkpoint", path.name, step=step, data={"path": path.name})
        return path

    def restore(self) -> dict[str, Any] | None:
        """The state saved by the checkpoint this attempt resumes from (RNG states restored)."""
        payload = self._resume_payload
        if payload is None:
            return None
        from trainer import checkpoint

        self._resume_payload = None  # the state is the caller's now; free our reference
        checkpoint.set_rng_state(payload["rng"])
        return payload["state"]

    # ---------------------------------------------------------------- control
    def request_stop(self, reason: str) -> None:
        """Ask the run to stop at its next safe point."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._transition(STOPPING, "stopping", reason, step=self.step)
            log.info("stop requested: %s", reason)

    def should_stop(self) -> bool:
        """A safe point: apply pending control messages; block while paused. True: stop now."""
        if self._control_waiting.is_set():
            self._control_waiting.clear()
            self._apply(control.receive(self.paths))
        self._check_limits()
        return self.stop_reason is not None

    def _check_limits(self) -> None:
        """Act on what the heartbeat thread's watchdog found (here, on the training thread)."""
        if self._over_limit is not None and self.stop_reason is None:
            self._writer.event("limit_exceeded", self._over_limit, step=self.step)
            log.warning("run %s: %s", self.name, self._over_limit)
            self.request_stop(self._over_limit)
        if self._disk_low is not None and self.stop_reason is None:
            self._pause(self._disk_low, until=lambda: self._disk_low is None)

    def _apply(self, messages: list[control.ControlMessage]) -> None:
        # Messages read together: a pause must not block the others (a stop sent right
        # after it waited forever behind it), and a resume after a pause cancels it.
        pause = False
        for msg in messages:
            if msg.command == "pause":
                pause = True
            elif msg.command == "resume":
                pause = False
        self._apply_now([m for m in messages if m.command not in ("pause", "resume")])
        if pause and self.stop_reason is None:
            self._pause()

    def _apply_now(self, messages: list[control.ControlMessage]) -> None:
        for msg in messages:
            if msg.command == "stop":
                self.request_stop(str(msg.args.get("reason") or "stopped by user"))
            elif msg.command == "checkpoint":
                self._checkpoint_requested = True
            elif msg.command == "extend":
                steps = int(msg.args.get("steps", 0))
                if self.max_steps is not None and steps > 0:
                    self.max_steps += steps
                    self._writer.set_fields(max_steps=self.max_steps)
                    self._writer.event("extended", f"+{steps} steps", step=self.step)
            elif msg.command == "limits":
                self.limits = self.limits.updated(msg.args)
                self._writer.event("limits", self.limits.describe(), step=self.step,
                                   data=self.limits.to_json())  # fmt: skip
                self._save_limits()

    def _save_limits(self) -> None:
        """Keep changed limits in resources.json, so that a resume keeps them too."""
        from dataclasses import replace

        from trainer.resources.limits import RESOURCES_FILE, Resources

        if (self.paths.root / RESOURCES_FILE).exists():
            saved = Resources.load(self.paths.root)
            replace(saved, limits=self.limits).save(self.paths.root)

    def _pause(self, reason: str = "", until: Callable[[], bool] | None = None) -> None:
        """Block at this safe point until resumed (or ``until()`` is true), or stopped."""
        if not self._transition(
            PAUSED, "paused", reason, step=self.step, exit_reason=reason or None
        ):
            return
        log.info("paused at step %d%s", self.step, f": {reason}" if reason else "")
        while self.stop_reason is None:
            self._control_waiting.wait(0.5)
            if until is not None and until():
                break
            if not self._control_waiting.is_set():
                continue
            self._control_waiting.clear()
            messages = control.receive(self.paths)
            if any(m.command == "resume" for m in messages):
                self._apply([m for m in messages if m.command not in ("pause", "resume")])
                break
            self._apply([m for m in messages if m.command != "pause"])
        if self.stop_reason is None:
            self._transition(RUNNING, "resumed", step=self.step)
            log.info("resumed at step %d", self.step)

    # ---------------------------------------------------------------- signals
    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop at the next safe point; a second SIGINT exits at once."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGXFSZ"):
            # Past a file-size limit, writes fail with EFBIG (handled) instead of killing us.
            self._old_handlers[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT:
            self._sigint_count += 1
            if self._sigint_count > 1:
                os.write(2, b"\ninterrupted twice: exiting now (the journal is intact)\n")
                os._exit(130)
        self.request_stop(f"{name} received")
        if self._deadline is None:
            self._deadline = threading.Thread(
                target=self._stop_deadline, args=(name, stop_deadline()), name="stop-deadline",
                daemon=True,  # it only ever ends the process; finish() releases it
            )  # fmt: skip
            self._deadline.start()

    def _stop_deadline(self, cause: str, seconds: float) -> None:
        """Exit if the training code reaches no safe point within ``seconds`` of a signal:
        a stop that never happens would only end in SIGKILL, without a word in the journal."""
        if self._halt_heart.wait(seconds):
            return  # finished in time
        reason = f"no safe point within {seconds:g} s of {cause}: exited without a checkpoint"
        log.warning("run %s: %s", self.name, reason)
        try:
            # Killed outright, not a clean stop: "crashed", and a resume starts from the last
            # checkpoint (the event names the signal).
            self._writer.event("stop_deadline", reason, step=self.step, data={"signal": cause})
            self._writer.set_status("crashed", exit_reason=reason, step=self.step)
            self._writer.close()
        finally:
            os._exit(128 + signal.SIGTERM)

    # ---------------------------------------------------------------- heartbeat thread
    def _watch_limits(self) -> None:
        """The watchdog (heartbeat thread): flag what the training thread must act on."""
        from trainer.resources.limits import disk_free, tree_rss
        from trainer.resources.sizes import format_size

        limits = self.limits
        if limits.max_rss and self._over_limit is None:
            rss = tree_rss()
            if rss is not None and rss > limits.max_rss:
                self._over_limit = (
                    f"memory limit: RSS {format_size(rss)} exceeds the limit of "
                    f"{format_size(limits.max_rss)} (--max-rss); stopped with a checkpoint"
                )
                self._control_waiting.set()
        free = disk_free(self.paths.root) if limits.disk_floor else None
        if free is not None and free < limits.disk_floor:
            self._disk_low = (
                f"disk space low: {format_size(free)} free under the floor of "
                f"{format_size(limits.disk_floor)} (--disk-floor); resumes when there is room"
            )
            self._control_waiting.set()
        else:
            self._disk_low = None

    def _heartbeat_loop(self) -> None:
        from trainer.sysmon import SystemSampler

        sampler = SystemSampler()
        next_sample = 0.0
        while True:
            try:
                # A commit of points wrote the heartbeat lately: a beat of our own would only
                # cost the app following the journal another read. Only those commits count,
                # not our own beats, so a loop that stops logging (hung, a long evaluation)
                # gets a beat from here every HEARTBEAT_INTERVAL, as it always did.
                if time.monotonic() - self._writer.points_beat >= HEARTBEAT_INTERVAL:
                    self._writer.heartbeat(self.step)
            except TrainDeskError:
                return  # the writer failed: the training thread reports it on its next log()
            now = time.monotonic()
            try:
                if control.pending(self.paths):
                    self._control_waiting.set()
                if now >= next_sample:
                    next_sample = now + SAMPLE_INTERVAL
                    # It may wait for the next commit of points (or beat) to join.
                    self._writer.system_sample(*sampler.sample(), wait=HEARTBEAT_INTERVAL)
                    self._watch_limits()
            except TrainDeskError:
                return  # the writer failed: as above
            except Exception:
                # The beat must go on: a supervisor kills a silent run as hung.
                log.exception("run %s: the heartbeat thread's checks failed", self.name)
            if self._halt_heart.wait(HEARTBEAT_INTERVAL):
                return


# -------------------------------------------------------------------- building runs
def create_run(
    *,
    entry: str,
    kind: str,
    config: dict[str, Any],
    name: str | None = None,
    runs_root: Path | None = None,
    folder: Path | None = None,
    max_steps: int | None = None,
    keep_checkpoints: int = 3,
    checkpoint_every: int | None = None,
) -> Run:
    """Make a new run folder (private), write its resolved config and create its journal."""
    from trainer.config import to_toml

    if folder is None:
        root = runs_root if runs_root is not None else runs_dir()
        name = validate_run_name(name or default_run_name(entry))
        folder = root / name
        try:
            private_dir(root, "runs directory")  # 0700 whatever the umask; tightened if open
        except OSError as exc:
            raise UsageError(
                f"runs directory {root} cannot be created ({exc.strerror}): "
                "choose another with --runs-dir"
            ) from None
        if folder.exists():
            raise UsageError(
                f"a run named {name!r} already exists in {root}: choose another --name"
            )
    paths = RunPaths(folder)
    lock: RunLock | None = None
    try:
        if folder.exists():  # made for us by a launcher: lock it before anything else
            lock = RunLock.acquire(folder)
            _ensure_subdirs(paths)
        else:
            paths.create()
            lock = RunLock.acquire(folder)
    except FileExistsError:
        raise UsageError(
            f"a run named {folder.name!r} already exists: choose another --name"
        ) from None
    except PermissionError:
        raise UsageError(
            f"cannot create {folder}: the runs directory is read-only; "
            "fix its permissions or choose another with --runs-dir"
        ) from None
    try:
        run_id = new_run_id()
        write_private_text(paths.config, to_toml(config, header=f"run {folder.name} ({entry})"))
        writer = JournalWriter.create(
            paths.journal, run_id=run_id, name=folder.name, entry=entry, kind=kind,
            config=config, max_steps=max_steps,
        )  # fmt: skip
        if kind not in ("recipe", "import"):
            from trainer import trust

            trust.record(paths.root, run_id, entry)
        return Run(
            paths, writer, run_id=run_id, config=config, max_steps=max_steps,
            keep_checkpoints=keep_checkpoints, checkpoint_every=checkpoint_every, lock=lock,
        )  # fmt: skip
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def resume_run(
    paths: RunPaths,
    *,
    config: dict[str, Any],
    max_steps: int | None = None,
    keep_checkpoints: int = 3,
    checkpoint_every: int | None = None,
) -> Run:
    """Open a run folder as a new attempt that continues from its newest checkpoint."""
    from trainer.journal.reader import JournalReader

    # Before anything else: one attempt at a time, and nothing followed out of the folder.
    lock = RunLock.acquire(paths.root)
    try:
        jail.check_run_folder(paths.root)
        with JournalReader(paths.root) as reader:
            info = reader.run_info()
        if info.kind == "import":
            raise UsageError(
                f"run {info.name} was imported from {info.entry}: there is no training to resume"
            )
        _ensure_subdirs(paths)
        from trainer import checkpoint

        removed = checkpoint.remove_partial(paths.checkpoints)  # left by killed attempts
        stale = control.receive(paths)  # sent to an attempt that is gone: not for this one
        # The step comes from the checkpoint that actually loads (a damaged or foreign newest
        # file is skipped), so the state restored and the attempt's start always agree.
        payload = checkpoint.load_latest(paths.checkpoints)
        resume_step = int(payload["step"]) if payload is not None else 0
        writer = JournalWriter.open_next_attempt(paths.journal, resume_step=resume_step)
    except BaseException:
        lock.release()
        raise
    if stale:
        writer.event("ignored", "control messages left by the previous attempt: "
                     + ", ".join(m.command for m in stale))  # fmt: skip
    if removed:
        writer.event("cleaned", f"removed {len(removed)} partial checkpoint file(s) left by a "
                     "killed attempt", data={"files": removed})  # fmt: skip
    return Run(
        paths, writer, run_id=info.id, config=config, start_step=resume_step,
        max_steps=max_steps if max_steps is not None else info.max_steps,
        keep_checkpoints=keep_checkpoints, checkpoint_every=checkpoint_every,
        resume_payload=payload, lock=lock,
    )  # fmt: skip


def _ensure_subdirs(paths: RunPaths) -> None:
    """Recreate missing sub-folders (private) without following a symlink out of the folder."""
    for sub in (paths.checkpoints, paths.logs, paths.control):
        jail.make_dir(paths.root, sub)


def set_active(run: Run | None) -> None:
    """Make ``run`` the one :func:`init` returns (the CLI does this before a user's script)."""
    global _active
    _active = run


def init(
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    max_steps: int | None = None,
    keep_checkpoints: int = 3,
    checkpoint_every: int | None = None,
) -> Run:
    """Start (or join) a run and return it, running.

    ``config`` holds the script's defaults; under ``trainer run`` the values given there
    (``--config``, ``--set``) override them. Outside the launcher a new run folder is made
    under ``runs_dir`` (default: ``$TRAINDESK_HOME`` or the user data dir).
    """
    global _active
    defaults = dict(config or {})
    if _active is None:
        from trainer.capture.api_run import from_environment

        captured = from_environment(defaults)
        if captured is not None:  # a command under `trainer run -- CMD`: its parent journals
            return cast("Run", captured)
    if _active is not None:
        merged = {**defaults, **_active.config}
        _active.config.clear()
        _active.config.update(merged)
        _active.adopt_options(merged, max_steps, checkpoint_every)
        return _active.start()
    from trainer import paths as paths_mod

    env_folder = settings.RUN_DIR.raw()
    # The full path, so that `trainer resume` (or the app) can find the script from anywhere.
    script = settings.ENTRY.raw() or _main_script()
    entry = os.path.abspath(script) if script else "api"
    if env_folder and RunPaths(Path(env_folder)).is_run_folder():
        run = resume_run(
            RunPaths(Path(env_folder)),
            config=defaults,
            max_steps=max_steps,
            keep_checkpoints=keep_checkpoints,
            checkpoint_every=checkpoint_every,
        )
    else:
        run = create_run(
            entry=entry, kind="api", config=defaults, name=name,
            runs_root=paths_mod.runs_dir(runs_dir),
            folder=Path(env_folder) if env_folder else None, max_steps=max_steps,
            keep_checkpoints=keep_checkpoints, checkpoint_every=checkpoint_every,
        )  # fmt: skip
    run.adopt_options(defaults, max_steps, checkpoint_every)
    _active = run
    run.install_signal_handlers()
    return run.start()


def _main_script() -> str | None:
    import __main__

    return getattr(__main__, "__file__", None)


def stop_deadline() -> float:
    """Seconds from a stop signal to a forced exit (``$TRAINDESK_STOP_DEADLINE``, default 25)."""
    try:
        value = float(settings.STOP_DEADLINE.raw() or STOP_DEADLINE_S)
    except ValueError:
        return STOP_DEADLINE_S
    return value if value > 0 else STOP_DEADLINE_S
