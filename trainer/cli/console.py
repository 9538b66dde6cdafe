"""The trainer's console: output copied to the run's log files, and a progress display.

stdout and stderr are copied into ``logs/stdout.log`` and ``logs/stderr.log``. If the console
goes away (the desktop app that started us was killed: EPIPE), training goes on and the log
files keep everything.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from trainer import settings

if TYPE_CHECKING:
    from trainer.api import Run


#: A console log is rotated past this many bytes ($TRAINDESK_LOG_MAX_BYTES), keeping LOG_BACKUPS.
LOG_MAX_BYTES = 50 * 1024 * 1024
LOG_BACKUPS = 3
ENV_LOG_MAX_BYTES = settings.LOG_MAX_BYTES.name


def log_max_bytes() -> int:
    try:
        return max(0, int(settings.LOG_MAX_BYTES.raw() or LOG_MAX_BYTES))
    except ValueError:
        return LOG_MAX_BYTES


class Tee(io.TextIOBase):
    """A text stream that writes to a console stream (while it works) and a log file."""

    def __init__(
        self,
        console: IO[str] | None,
        log_path: Path,
        *,
        max_bytes: int | None = None,
        backups: int = LOG_BACKUPS,
    ) -> None:
        self._console = console
        self._path = log_path
        self._max_bytes = max_bytes if max_bytes is not None else log_max_bytes()
        self._backups = backups
        self._file = self._open()

    def _open(self) -> IO[str]:
        # Never through a symlink (O_NOFOLLOW): a logs/stdout.log linked elsewhere is refused.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self._path, flags, 0o600)
        file = open(fd, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        os.fchmod(fd, 0o600)
        self._size = file.tell()
        return file

    def _rotate(self) -> None:
        """stdout.log -> stdout.log.1 -> ... -> .N (the oldest dropped), then a fresh file."""
        self._file.close()
        for n in range(self._backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{n + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))
        self._file = self._open()

    def write(self, text: str) -> int:
        if self._max_bytes and self._size + len(text) > self._max_bytes and self._size:
            with contextlib.suppress(OSError):  # rather one big file than lost output
                self._rotate()
            if self._file.closed:
                self._file = self._open()
        self._file.write(text)
        self._size += len(text)
        if self._console is not None:
            try:
                self._console.write(text)
                self._console.flush()
            except (OSError, ValueError):
                self._console = None  # the reader is gone: keep training, keep the file
        return len(text)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def isatty(self) -> bool:
        return bool(self._console is not None and self._console.isatty())

    def close(self) -> None:
        """Close the log file (the console stream is not ours to close).

        Marks the stream closed too: IOBase's finalizer would otherwise flush it again.
        """
        self._file.close()
        super().close()


class ConsoleCapture:
    """Swap sys.stdout/sys.stderr for tees into the run's log files, and back on exit."""

    def __init__(self, stdout_log: Path, stderr_log: Path) -> None:
        self._paths = (stdout_log, stderr_log)
        self._saved: tuple[Any, Any] | None = None

    @property
    def terminal(self) -> IO[str]:
        """The console stdout as it was before the capture."""
        assert self._saved is not None
        return self._saved[0]

    def __enter__(self) -> ConsoleCapture:
        from trainer import jail

        for path in self._paths:  # logs/x.log in the run folder: names a link out of it
            jail.check(path.parent.parent, path)
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = Tee(sys.stdout, self._paths[0])
        sys.stderr = Tee(sys.stderr, self._paths[1])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        for tee in (sys.stdout, sys.stderr):
            if isinstance(tee, Tee):
                tee.close()
        sys.stdout, sys.stderr = self._saved


def _fmt_metrics(metrics: dict[str, float] | None, limit: int = 2) -> str:
    """The few metrics worth a glance: losses and accuracies first, no perf/ figures."""
    if not metrics:
        return ""

    def rank(key: str) -> tuple[int, str]:
        order = ("train/loss", "val/loss", "val/acc", "train/acc")
        return (order.index(key) if key in order else len(order), key)

    parts = []
    for key in sorted((k for k in metrics if not k.startswith(("perf/", "sys/"))), key=rank):
        try:
            parts.append(f"{key}={float(metrics[key]):.4g}")
        except (TypeError, ValueError):
            continue
        if len(parts) == limit:
            break
    return " ".join(parts)


def rate_text(rate: float | None) -> str:
    """``"12.3 steps/s"``, or ``"41.5 s/step"`` for slow runs; "--" before the first step."""
    if not rate:
        return "-- steps/s"
    if rate >= 100:
        return f"{rate:.0f} steps/s"
    if rate >= 1:
        return f"{rate:.1f} steps/s"
    return f"{1 / rate:.1f} s/step"


def duration_text(seconds: float) -> str:
    """``"42s"``, ``"3m 05s"``, ``"2h 07m"``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class RateMeter:
    """Steps per second of running time (time spent paused does not count).

    The rate over the last interval when it saw a few steps; else, for a slow run, the
    average since the meter started, so that a step every minute still shows a rate.
    """

    #: Fewer steps than this in an interval: use the average since the start instead.
    MIN_STEPS = 3

    def __init__(self, step: int, now: float) -> None:
        self._first_step, self._running = step, 0.0
        self._last_step, self._last_time = step, now
        self._window = 0.0

    def update(self, step: int, now: float, *, running: bool = True) -> float | None:
        """Account for the time since the last call; the rate now (None: no step seen yet)."""
        if running:
            self._running += now - self._last_time
            self._window += now - self._last_time
        self._last_time = now
        done = step - self._last_step
        if done >= self.MIN_STEPS and self._window > 0:
            rate: float | None = done / self._window
        elif step > self._first_step and self._running > 0:
            rate = (step - self._first_step) / self._running
        else:
            rate = None
        if done >= self.MIN_STEPS or not running:
            self._last_step, self._window = step, 0.0
        return rate


class Progress:
    """Shows a run's progress: a rich bar on a terminal, a plain line every few seconds if piped.

    It polls ``run.step`` from its own thread, so the training loop pays nothing for it.
    """

    def __init__(
        self,
        run: Run,
        *,
        terminal: IO[str] | None = None,
        plain_every: float = 5.0,
        enabled: bool = True,
    ) -> None:
        self.run = run
        self.terminal = terminal if terminal is not None else sys.stdout
        self.plain_every = plain_every
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            tty = self.terminal.isatty()
            target = self._rich_loop if tty else self._plain_loop
            # A daemon: __exit__ joins it; a terminal that blocks a write must not keep the
            # process alive.
            self._thread = threading.Thread(target=target, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _line(self, rate: float | None) -> str:
        run = self.run
        total = f"/{run.max_steps}" if run.max_steps else ""
        pct = f" ({100 * run.step / run.max_steps:.0f}%)" if run.max_steps else ""
        if run.state == "paused":
            return f"step {run.step}{total}{pct} paused"
        eta = ""
        if rate and run.max_steps and run.max_steps > run.step:
            eta = f" eta {duration_text((run.max_steps - run.step) / rate)}"
        metrics = _fmt_metrics(run.last_metrics)
        line = f"step {run.step}{total}{pct} {rate_text(rate)}{eta}"
        return f"{line} {metrics}" if metrics else line

    def _plain_loop(self) -> None:
        meter = RateMeter(self.run.step, time.monotonic())
        said_paused = False
        while not self._stop.wait(self.plain_every):
            paused = self.run.state == "paused"
            rate = meter.update(self.run.step, time.monotonic(), running=not paused)
            if paused and said_paused:
                continue  # one line per pause, not one every few seconds
            said_paused = paused
            print(f"[{self.run.name}] {self._line(rate)}", flush=True)

    def _rich_loop(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        with RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(file=self.terminal),
            transient=False,
        ) as bar:
            task = bar.add_task(self.run.name, total=self.run.max_steps, metrics="")
            while not self._stop.wait(0.25):
                bar.update(
                    task,
                    completed=self.run.step,
                    total=self.run.max_steps,
                    metrics=_fmt_metrics(self.run.last_metrics),
                )
            bar.update(task, completed=self.run.step)
