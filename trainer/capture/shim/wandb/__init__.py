"""A W&B-compatible subset that sends a script's metrics to TrainDesk (``--capture wandb``).

``trainer run --capture wandb -- python train.py`` puts this folder's parent first on the
script's ``PYTHONPATH``, so ``import wandb`` finds it instead of the real package (which is
untouched, and found as usual without the option). Supported: ``init`` (project, name,
config), ``log`` (with ``step`` and ``commit``), ``config`` (attribute and item access,
``update``), ``summary``, ``define_metric`` (``step_metric``), ``finish``, ``run``; ``watch``,
``save``, ``login`` and ``alert`` are accepted and do nothing. Records go to the capture file
named by ``$TRAINDESK_CAPTURE_FILE``.
"""

from __future__ import annotations

import fnmatch

# Self-contained on purpose: the script may run under another Python than TrainDesk's
# (`python` on the PATH), where the trainer package is not importable. The record format is
# trainer/capture/records.py's.
import json
import math
import os
import secrets
import threading
import time
from typing import Any

ENV_CAPTURE_FILE = "TRAINDESK_CAPTURE_FILE"


class CaptureWriter:
    """Appends records to the capture file, one flushed JSON line each."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
                self._fh.flush()

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.write({"kind": "log", "step": step, "metrics": metrics, "wall": time.time()})


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric values (numpy/torch scalars too; nested dicts as ``a/b``), as floats."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update({f"{key}/{k}": v for k, v in numeric(value).items()})
            continue
        item = getattr(value, "item", None)
        if callable(item) and not isinstance(value, int | float):
            try:
                value = item()
            except (TypeError, ValueError):
                continue
        if isinstance(value, int | float) and not math.isnan(float(value)):
            out[str(key)] = float(value)
    return out


__version__ = "0.0.0+traindesk"


class Config(dict[str, Any]):
    """``wandb.config``: a dict with attribute access; changes are sent as they happen."""

    def __init__(self, writer: CaptureWriter | None = None) -> None:
        super().__init__()
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.update({name: value})

    def update(self, *args: Any, allow_val_change: bool = False, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        for key, value in changes.items():
            dict.__setitem__(self, key, value)
        if self._writer is not None and changes:
            self._writer.write({"kind": "config", "config": changes})

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def setdefaults(self, values: dict[str, Any]) -> None:
        self.update({k: v for k, v in values.items() if k not in self})


class Run:
    """``wandb.run``."""

    def __init__(self, writer: CaptureWriter, project: str | None, name: str | None) -> None:
        self._writer = writer
        self.id = secrets.token_hex(4)
        self.project = project or "traindesk"
        self.name = name or os.environ.get("TRAINDESK_RUN_NAME", self.id)
        self.config = Config(writer)
        self.summary: dict[str, Any] = {}
        self.step = 0
        self._step_metrics: list[tuple[str, str]] = []
        self._finished = False

    def log(
        self, data: dict[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        if step is not None:
            self.step = int(step)
        values = numeric(dict(data))
        by_step: dict[int, dict[str, float]] = {}
        for key, value in values.items():
            own = self._step_for(key, values)
            by_step.setdefault(self.step if own is None else own, {})[key] = value
        for at, metrics in by_step.items():
            self._writer.log(metrics, at)
        self.summary.update(values)
        if commit is not False:
            self.step += 1

    def _step_for(self, key: str, values: dict[str, float]) -> int | None:
        for pattern, metric in self._step_metrics:
            if fnmatch.fnmatchcase(key, pattern) and metric in values and key != metric:
                return int(values[metric])
        return None

    def define_metric(self, name: str, step_metric: str | None = None, **_: Any) -> None:
        if step_metric:
            self._step_metrics.append((name, step_metric))

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        shown = {k: v for k, v in self.summary.items() if isinstance(v, int | float)}
        self._writer.write({"kind": "event", "event": "summary", "message": "wandb summary",
                            "data": shown, "step": self.step})  # fmt: skip

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def watch(self, *args: Any, **kwargs: Any) -> None:
        pass

    def save(self, *args: Any, **kwargs: Any) -> None:
        pass

    def alert(self, *args: Any, **kwargs: Any) -> None:
        pass


run: Run | None = None
config = Config()
summary: dict[str, Any] = {}


def init(
    project: str | None = None,
    config: dict[str, Any] | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Run:
    """Start the run (once: a second call returns the same run, as W&B does by default)."""
    global run, summary
    if run is not None and not run._finished:
        if config:
            run.config.update(config)
        return run
    path = os.environ.get(ENV_CAPTURE_FILE)
    if not path:
        raise RuntimeError(
            "this wandb is TrainDesk's stand-in: run the script with "
            "`trainer run --capture wandb -- python SCRIPT`"
        )
    run = Run(CaptureWriter(path), project, name)
    globals()["config"] = run.config
    summary = run.summary
    if config:
        run.config.update(dict(config))
    return run


def _need_run() -> Run:
    if run is None:
        raise RuntimeError("wandb.init() must be called first")
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    _need_run().log(data, step=step, commit=commit)


def define_metric(name: str, step_metric: str | None = None, **kwargs: Any) -> None:
    _need_run().define_metric(name, step_metric=step_metric, **kwargs)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    if run is not None:
        run.finish(exit_code)


def watch(*args: Any, **kwargs: Any) -> None:
    pass


def save(*args: Any, **kwargs: Any) -> None:
    pass


def login(*args: Any, **kwargs: Any) -> bool:
    return True


def alert(*args: Any, **kwargs: Any) -> None:
    pass
