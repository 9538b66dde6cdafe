"""``trainer.init()`` inside a command run by ``trainer run -- CMD``: the same API, through
the capture file.

The command's parent trainer owns the journal, so a script using our API there must not open
it: :func:`trainer.init` returns a :class:`CaptureRun` instead, which sends metrics and events
through the capture file and keeps checkpoints in the run folder (so a restarted command
resumes from its last one). SIGTERM (the parent's stop) makes :meth:`should_stop` true.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from trainer import settings
from trainer.capture.records import CaptureWriter, numeric
from trainer.paths import RunPaths

#: The config given to ``trainer run -- CMD`` (``--set``, ``--config``), as JSON.
ENV_COMMAND_CONFIG = settings.COMMAND_CONFIG.name


class CaptureRun:
    """The subset of :class:`trainer.api.Run` a training script uses, over the capture file."""

    def __init__(self, capture_file: str, run_dir: str, config: Mapping[str, Any]) -> None:
        self._writer = CaptureWriter(capture_file)
        self.paths = RunPaths(Path(run_dir))
        self.name = self.paths.name
        self.config = dict(config)
        self.max_steps = (
            config.get("max_steps") if isinstance(config.get("max_steps"), int) else None
        )
        every = config.get("checkpoint_every")
        self.checkpoint_every = every if isinstance(every, int) and every > 0 else None
        self.stop_reason: str | None = None
        from trainer import checkpoint

        self._payload = checkpoint.load_latest(self.paths.checkpoints)
        self.start_step = int(self._payload["step"]) if self._payload else 0
        self.step = self.start_step
        self._announce()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)

    def _announce(self) -> None:
        """Send the config the command runs with (journaled as a "config" event)."""
        self._writer.write({"kind": "config", "config": self.config})

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_reason = f"{signal.Signals(signum).name} received"

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = self.step + 1 if step is None else step
        self.step = max(self.step, step)
        self._writer.log(numeric(dict(metrics)), step)

    def event(self, kind: str, message: str = "", **data: Any) -> None:
        self._writer.write({"kind": "event", "event": kind, "message": message,
                            "data": data or None, "step": self.step})  # fmt: skip

    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def should_checkpoint(self, step: int | None = None) -> bool:
        step = self.step if step is None else step
        every = self.checkpoint_every
        return bool(every) and step > self.start_step and step % every == 0  # type: ignore[operator]

    def checkpoint(self, state: dict[str, Any], step: int | None = None) -> Path:
        from trainer import checkpoint

        step = self.step if step is None else step
        path = checkpoint.save(self.paths.checkpoints, step, state)
        self.event("checkpoint", path.name, path=path.name)
        return path

    def restore(self) -> dict[str, Any] | None:
        payload, self._payload = self._payload, None
        if payload is None:
            return None
        from trainer import checkpoint

        checkpoint.set_rng_state(payload["rng"])
        state: dict[str, Any] = payload["state"]
        return state

    def start(self) -> CaptureRun:
        return self

    def finish(self, status: str | None = None, reason: str | None = None) -> None:
        self._writer.close()

    def fail(self, exc: BaseException) -> None:
        self.event("error", f"{type(exc).__name__}: {exc}")
        self.finish()

    def __enter__(self) -> CaptureRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, KeyboardInterrupt):
            self.fail(exc)
        else:
            self.finish()


def from_environment(config: Mapping[str, Any]) -> CaptureRun | None:
    """A CaptureRun when this process is a command under ``trainer run -- CMD``."""
    capture, run_dir = settings.CAPTURE_FILE.raw(), settings.RUN_DIR.raw()
    if not capture or not run_dir:
        return None
    given = json.loads(settings.COMMAND_CONFIG.get())  # --set, --config
    return CaptureRun(capture, run_dir, {**config, **given})
