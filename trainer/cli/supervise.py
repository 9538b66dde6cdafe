"""``trainer run --max-restarts N``: a small parent process that supervises the run.

The parent imports no torch. It runs each attempt as a child ``trainer run``/``trainer resume``
in a new session (its own process group, so its DataLoader workers and torchrun ranks go
with it), polls its journal a few times a second for health, kills it when it hangs, and
restarts it from its last checkpoint by the restart policy. SIGINT, SIGTERM or SIGHUP to the
parent stop the run (a checkpoint at the next safe point, SIGKILL after a deadline); a second
one kills it at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from trainer import paths
from trainer.cli.resource_options import forward
from trainer.errors import UsageError
from trainer.runs import default_run_name
from trainer.supervision.core import Decision, Supervision
from trainer.supervision.policy import HealthPolicy, RestartPolicy
from trainer.supervision.process import remove_half_made, signal_group, trainer_command

#: Seconds between looks at the child and its journal.
POLL_S = 0.25
#: Seconds a stopping child gets to checkpoint and exit before its group is killed.
STOP_DEADLINE_S = 30.0
#: Seconds between looks at the free disk space while a run waits for it.
SPACE_POLL_S = 5.0


def add_options(p: argparse.ArgumentParser) -> None:
    """The supervision options of ``trainer run`` and ``trainer resume``."""
    g = p.add_argument_group("supervision (with --max-restarts)")
    g.add_argument(
        "--max-restarts", type=int, metavar="N",
        help="supervise the run from a parent process: kill it when it hangs and restart a "
        "crashed or failed attempt from its last checkpoint, at most N times in a row",
    )  # fmt: skip
    g.add_argument(
        "--backoff",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds before the first restart, doubling each time (default 2)",
    )
    g.add_argument(
        "--backoff-max",
        type=float,
        default=300.0,
        metavar="S",
        help="the longest wait between restarts (default 300)",
    )
    g.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="no heartbeat for S seconds: unresponsive (default 10)",
    )
    g.add_argument(
        "--hang-grace",
        type=float,
        default=20.0,
        metavar="S",
        help="unresponsive S more seconds: killed as hung (default 20)",
    )
    g.add_argument(
        "--stall-factor",
        type=float,
        default=10.0,
        metavar="F",
        help="no new step for F x the median step time: stalled (default 10)",
    )


def policies(args: argparse.Namespace) -> tuple[RestartPolicy, HealthPolicy]:
    """The restart and health policies the options ask for; bad values are usage errors."""
    checks = [("--max-restarts", args.max_restarts, 0), ("--backoff", args.backoff, 0),
              ("--backoff-max", args.backoff_max, 0),
              ("--heartbeat-timeout", args.heartbeat_timeout, 0.5),
              ("--hang-grace", args.hang_grace, 0),
              ("--stall-factor", args.stall_factor, 1)]  # fmt: skip
    for flag, value, low in checks:
        if value < low:
            raise UsageError(f"{flag} {value} is too small: give {low} or more")
    restart = RestartPolicy(
        max_restarts=args.max_restarts, backoff_initial=args.backoff,
        backoff_max=max(args.backoff_max, args.backoff),
    )  # fmt: skip
    health = HealthPolicy(
        heartbeat_timeout=args.heartbeat_timeout, kill_grace=args.hang_grace,
        stall_factor=args.stall_factor,
    )  # fmt: skip
    return restart, health


def child_run_args(args: argparse.Namespace, name: str, runs_dir: Path) -> list[str]:
    """``trainer run`` arguments for the first attempt: the user's, with a fixed name."""
    command = bool(getattr(args, "command_mode", False))
    out = ["run"] if command else ["run", args.target]
    out += [f"--capture={spec}" for spec in getattr(args, "capture", [])]
    if args.config:
        out += ["--config", args.config]
    out += [f"--set={item}" for item in args.overrides]
    for flag, value in (("--env", args.env), ("--max-steps", args.max_steps),
                        ("--device", args.device), ("--seed", args.seed)):  # fmt: skip
        if value is not None:
            out.append(f"{flag}={value}")
    out += [f"--name={name}", f"--runs-dir={runs_dir}", *forward(args)]
    if args.quiet:
        out.append("--quiet")
    if command:
        return [*out, "--", args.target, *args.script_args]
    if args.script_args:
        out += ["--", *args.script_args]
    return out


def child_resume_args(folder: Path, quiet: bool, max_steps: int | None = None) -> list[str]:
    out = ["resume", str(folder), f"--runs-dir={folder.parent}"]
    if max_steps is not None:
        out.append(f"--max-steps={max_steps}")
    return [*out, "--quiet"] if quiet else out


def free_name(target: str, runs_dir: Path) -> str:
    base = default_run_name(target)
    name, n = base, 1
    while (runs_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def supervise_run(args: argparse.Namespace) -> int:
    """``trainer run ... --max-restarts N``."""
    restart, health = policies(args)
    runs_dir = paths.runs_dir(args.runs_dir)
    label = args.target
    if getattr(args, "command_mode", False):  # name it after the script, not "python"
        label = Path(next((a for a in args.script_args if a.endswith(".py")), args.target)).name
    name = args.name or free_name(label, runs_dir)
    first = child_run_args(args, name, runs_dir)
    return CliSupervisor(runs_dir / name, first, restart, health, quiet=args.quiet).run()


def supervise_resume(folder: Path, args: argparse.Namespace) -> int:
    """``trainer resume RUN --max-restarts N``."""
    restart, health = policies(args)
    first = [*child_resume_args(folder, args.quiet, args.max_steps), *forward(args)]
    return CliSupervisor(folder, first, restart, health, quiet=args.quiet).run()


class CliSupervisor:
    """Drives one run's attempts as child processes (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        first_args: list[str],
        restart: RestartPolicy,
        health: HealthPolicy,
        *,
        quiet: bool = False,
    ) -> None:
        self.folder = folder
        self.first_args = first_args
        self.quiet = quiet
        self.supervision = Supervision(folder, restart=restart, health=health)
        self._signals = 0
        self._wake = threading.Event()
        self._saved: dict[int, Any] = {}

    def _say(self, message: str) -> None:
        print(f"trainer: {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._wake.set()

    def _install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                self._saved[sig] = signal.signal(sig, self._on_signal)

    def _restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or until a signal arrives."""
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self._install()
        try:
            return self._loop()
        finally:
            self._restore()
            self.supervision.close()

    def _loop(self) -> int:
        args = self.first_args
        while True:
            decision = self._attempt(args)
            if not decision.restart or self._signals:
                if decision.message and (decision.exit.state != "finished" or self._signals):
                    self._say(decision.message)
                return decision.exit_code
            self._say(decision.message)
            if decision.wait_for_space:
                while not self._signals and not self.supervision.space_ok():
                    self._sleep(SPACE_POLL_S)
            else:
                self._sleep(decision.delay)
            if self._signals:
                self.supervision.cancel("stopped while waiting to restart")
                self._say("stopped while waiting to restart: the run stays as it is")
                return 0
            args = self._next_args()

    def _next_args(self) -> list[str]:
        if (self.folder / paths.JOURNAL_NAME).is_file():
            return child_resume_args(self.folder, self.quiet)
        remove_half_made(self.folder)  # it died before its journal existed: start afresh
        return self.first_args

    def _attempt(self, args: list[str]) -> Decision:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            trainer_command(*args), stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        sup = self.supervision
        sup.spawned(proc.pid)
        stop_sent: float | None = None
        try:
            while proc.poll() is None:
                if self._signals and stop_sent is None:
                    sup.request_stop()
                    self._say("stopping the run at its next safe point (again: kill it now)")
                    signal_group(proc.pid, signal.SIGTERM)
                    stop_sent = time.monotonic()
                elif stop_sent is not None and (
                    self._signals > 1 or time.monotonic() - stop_sent > STOP_DEADLINE_S
                ):
                    signal_group(proc.pid, signal.SIGKILL)
                verdict = sup.poll()
                if verdict.kill:
                    self._say(f"run {self.folder.name} {verdict.message}")
                    signal_group(proc.pid, signal.SIGKILL)
                self._wake.wait(POLL_S)
                self._wake.clear()
        finally:
            if proc.poll() is None:  # we are being torn down: take the child with us
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        signal_group(proc.pid, signal.SIGKILL)  # grandchildren left behind by the attempt
        return sup.exited(proc.returncode)
