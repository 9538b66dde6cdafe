"""TrainDesk's stand-in for ``wandb``: a W&B script's points, as W&B records them, to TrainDesk.

``trainer run --capture wandb -- python train.py`` puts this folder's parent first on the
script's ``PYTHONPATH``, so ``import wandb`` finds it instead of the real package (which is
untouched, and found as usual without the option). Records go to the capture file named by
``$TRAINDESK_CAPTURE_FILE``; see docs/capture/wandb.md for what is recorded and how it
follows W&B's rules (steps, ``commit``, ``define_metric``, summary, several runs, modes).

The rules here are those of the real package (checked against wandb 0.31 in offline mode by
tests/test_wandb_compare.py, one row per behaviour):

* a row of history is built per step: ``log(d)`` merges ``d`` into the pending row and commits
  it (the step then moves on by one) unless ``commit=False``; ``log(d, step=N)`` commits the
  pending row first when N is higher, and leaves its own data pending unless ``commit=True``;
  a step lower than the current one is dropped with a warning;
* a key with a step metric (``define_metric(key_or_glob, step_metric=M)``) is charted at the
  value of M in its row; W&B copies M's last value into a row that lacks it (``step_sync``);
* the summary is each key's last value unless set explicitly (or min/max/mean by
  ``define_metric(summary=...)``); it is sent at ``finish()`` or at the process's exit;
* a second ``init()`` while a run is active returns it; after ``finish()`` a new run starts,
  and its keys are prefixed by its name (``NAME/loss``) so the runs' points stay apart.

Why over 400 lines: it stands in for the part of the wandb package that scripts and integrations
call (init, log, config, summary, define_metric, the data types, Artifact); it must stay one
importable ``wandb`` package on the script's PYTHONPATH, and its rules are checked against the
real package case by case.
"""

from __future__ import annotations

# Self-contained on purpose: the script may run under another Python than TrainDesk's
# (`python` on the PATH), where the trainer package is not importable. The record format is
# trainer/capture/records.py's.
import atexit
import fnmatch
import importlib.abc
import importlib.machinery
import json
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__version__ = "0.31.0+traindesk"
ENV_CAPTURE_FILE = "TRAINDESK_CAPTURE_FILE"
ENV_RUN_DIR = "TRAINDESK_RUN_DIR"


# ----------------------------------------------------------------------------- the capture file
class CaptureWriter:
    """Appends records to the capture file, one flushed JSON line each."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, allow_nan=True)
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
                self._fh.flush()


_writer: CaptureWriter | None = None


def _capture() -> CaptureWriter:
    global _writer
    if _writer is None:
        path = os.environ.get(ENV_CAPTURE_FILE)
        if not path:
            raise RuntimeError(
                "this wandb is TrainDesk's stand-in: run the script with "
                "`trainer run --capture wandb -- python SCRIPT`"
            )
        _writer = CaptureWriter(path)
    return _writer


# ----------------------------------------------------------------------------- values
def scalar(value: Any) -> float | None:
    """The number W&B charts for ``value`` (numpy and torch 0-d values too), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    shape = getattr(value, "shape", None)
    one = isinstance(shape, tuple) and math.prod(shape) == 1
    if one and callable(getattr(value, "item", None)):
        try:  # a 0-d value, or an array of one element (W&B records it as a number)
            item = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
        if isinstance(item, bool | int | float):
            return float(item)
    return None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """W&B's nested keys: ``{"a": {"b": 1}}`` is the key ``a.b``."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _plain(value: Any) -> Any:
    """A JSON-friendly config value (what W&B's config keeps)."""
    number = scalar(value)
    if number is not None and not isinstance(value, bool | int | float):
        return number
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def termlog(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    print(("wandb: " if prefix else "") + str(string), end="\n" if newline else "", file=sys.stderr)


def termwarn(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    termlog(f"WARNING {string}", newline=newline, prefix=prefix)


def termerror(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    termlog(f"ERROR {string}", newline=newline, prefix=prefix)


# ----------------------------------------------------------------------------- errors, settings
class Error(Exception):
    """``wandb.Error``."""


class CommError(Error):
    pass


class UsageError(Error):
    pass


class ConfigError(Error):
    """``wandb.sdk.lib.config_util.ConfigError``: a config value changed without permission."""


class Settings:
    """``wandb.Settings(...)``: kept, for attribute reads; none changes what is recorded."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        for arg in args:
            if isinstance(arg, Mapping):
                self.__dict__.update(arg)
        self.__dict__.update(kwargs)


# ----------------------------------------------------------------------------- media, artifacts
class Media:
    """Images, tables, histograms...: accepted, never charted (not a scalar)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"<wandb.{type(self).__name__} (not recorded by TrainDesk)>"


class Histogram(Media):
    pass


class Image(Media):
    pass


class Audio(Media):
    pass


class Video(Media):
    pass


class Html(Media):
    pass


class Object3D(Media):
    pass


class Molecule(Media):
    pass


class Plotly(Media):
    pass


class Graph(Media):
    pass


class Table(Media):
    """``wandb.Table``: rows and columns are kept in memory (``add_data``), not recorded."""

    def __init__(self, columns: list[str] | None = None, data: list[Any] | None = None,
                 dataframe: Any = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.columns = list(columns or [])
        self.data = [list(row) for row in data or []]

    def add_data(self, *values: Any) -> None:
        self.data.append(list(values))

    def add_column(self, name: str, data: list[Any], **kwargs: Any) -> None:
        self.columns.append(name)
        for row, value in zip(self.data, data, strict=False):
            row.append(value)

    def get_column(self, name: str, **kwargs: Any) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.data]


class Artifact:
    """``wandb.Artifact``: files are listed, nothing is uploaded or versioned."""

    def __init__(self, name: str, type: str, description: str | None = None,
                 metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        self.name, self.type, self.description = name, type, description
        self.metadata = dict(metadata or {})
        self.files: list[str] = []
        self.aliases: list[str] = []
        self.version = "v0"

    def add_file(self, local_path: str, name: str | None = None, **kwargs: Any) -> None:
        self.files.append(str(local_path))

    def add_dir(self, local_path: str, name: str | None = None, **kwargs: Any) -> None:
        self.files.append(str(local_path))

    def add_reference(self, uri: str, name: str | None = None, **kwargs: Any) -> None:
        self.files.append(str(uri))

    def add(self, obj: Any, name: str) -> None:
        pass

    def new_file(self, name: str, mode: str = "x", encoding: str | None = None) -> Any:
        folder = tempfile.mkdtemp(prefix="wandb-artifact-")
        return open(os.path.join(folder, os.path.basename(name)), "w", encoding=encoding)

    def download(self, root: str | None = None, **kwargs: Any) -> str:
        raise CommError(f"artifact {self.name!r}: TrainDesk's wandb stand-in cannot download")

    def wait(self, *args: Any, **kwargs: Any) -> Artifact:
        return self

    def save(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Inert:
    """What an unsupported public name of ``wandb`` gives: callable, does nothing."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return self

    def __getattr__(self, name: str) -> _Inert:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(f"{self._name}.{name}")

    def __enter__(self) -> _Inert:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<wandb.{self._name}: not supported by TrainDesk's stand-in, does nothing>"


# ----------------------------------------------------------------------------- config, summary
class Config:
    """``wandb.config``: items and attributes; changes are sent as they happen."""

    def __init__(self, on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "_on_change", on_change)

    def _set(self, values: Mapping[str, Any], allow_val_change: bool | None) -> None:
        changes: dict[str, Any] = {}
        for key, value in values.items():
            key, value = str(key).strip("-"), _plain(value)
            if isinstance(value, Media):
                raise TypeError("WBValue objects cannot be added to the run config")
            old = self._items.get(key, value)
            if not allow_val_change and key in self._items and old != value:
                raise ConfigError(
                    f'Attempted to change value of key "{key}" from {old} to {value}\n'
                    "If you really want to do this, pass allow_val_change=True to config.update()"
                )
            changes[key] = value
        self._items.update(changes)
        if self._on_change is not None and changes:
            self._on_change(changes)

    def update(self, d: Any, allow_val_change: bool | None = None) -> None:
        self._set(as_config_dict(d), allow_val_change)

    def setdefaults(self, d: Any) -> None:
        self._set({k: v for k, v in as_config_dict(d).items() if k not in self._items}, True)

    def __setitem__(self, key: str, value: Any) -> None:
        self._set({key: value}, None)

    __setattr__ = __setitem__

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"wandb.config has no attribute {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return [k for k in self._items if not k.startswith("_")]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self._items.items() if not k.startswith("_")]

    def values(self) -> list[Any]:
        return [v for _, v in self.items()]

    def get(self, *args: Any) -> Any:
        return self._items.get(*args)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def persist(self) -> None:
        pass

    def __repr__(self) -> str:
        return repr(self._items)


def as_config_dict(params: Any, exclude: Any = None, include: Any = None) -> dict[str, Any]:
    """W&B's forms of a config: a dict, a Config, an argparse Namespace or any object's vars."""
    if params is None:
        return {}
    if isinstance(params, Config):
        params = params.as_dict()
    elif isinstance(params, Mapping):
        params = dict(params)
    elif isinstance(params, str):
        raise UsageError(f"config={params!r}: TrainDesk's wandb stand-in reads no config files")
    elif hasattr(params, "__dict__"):
        params = dict(vars(params))
    else:
        raise TypeError("config must be a dict or have a __dict__ attribute.")
    if include:
        params = {k: v for k, v in params.items() if k in include}
    if exclude:
        params = {k: v for k, v in params.items() if k not in exclude}
    return params


class Summary:
    """``run.summary``: each key's last value, unless set here (sent at finish or exit)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_items", {})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._items[key] = value

    def __setattr__(self, key: str, value: Any) -> None:
        self._items[key] = value

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(key) from None

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> Any:
        return self._items.keys()

    def items(self) -> Any:
        return self._items.items()

    def values(self) -> Any:
        return self._items.values()

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def update(self, d: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._items.update(dict(d or {}, **kwargs))

    def _as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __repr__(self) -> str:
        return repr(self._items)


# ----------------------------------------------------------------------------- the run
class _Metric:
    def __init__(self, name: str, step_metric: str | None, summary: str | None,
                 hidden: bool | None, step_sync: bool | None) -> None:  # fmt: skip
        self.name = name
        self.step_metric = step_metric or None
        self.summary = [s.strip() for s in (summary or "").split(",") if s.strip()]
        self.hidden = bool(hidden)
        self.step_sync = bool(step_metric) if step_sync is None else bool(step_sync)
        self.glob = any(c in name for c in "*?[")

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        pass


_runs_started = 0
_live: list[Run] = []


class Run:
    """``wandb.run``: one W&B run of the script."""

    def __init__(self, *, project: str | None, name: str | None, config: Any = None,
                 config_exclude_keys: Any = None, config_include_keys: Any = None,
                 settings: Any = None, **kwargs: Any) -> None:  # fmt: skip
        global _runs_started
        _runs_started += 1
        self._writer = self._open()
        self.id = str(kwargs.get("id") or secrets.token_hex(4))
        self.project = project or os.environ.get("WANDB_PROJECT") or "uncategorized"
        self.entity = kwargs.get("entity") or os.environ.get("WANDB_ENTITY")
        self.group = kwargs.get("group")
        self.job_type = kwargs.get("job_type")
        self.tags = tuple(kwargs.get("tags") or ())
        self.notes = kwargs.get("notes")
        self.name = name or os.environ.get("WANDB_NAME") or self._default_name()
        self.settings = settings if isinstance(settings, Settings) else Settings()
        self.resumed = False
        self.offline = True
        self.start_time = time.time()
        # The first run's keys are as logged; later runs of the process are kept apart.
        self._prefix = "" if _runs_started == 1 else f"{self.name}/"
        self._step = 0
        self._row: dict[str, Any] = {}
        self._metrics: dict[str, _Metric] = {}
        self._globs: list[_Metric] = []
        self._last: dict[str, float] = {}
        self._reduced: dict[str, list[float]] = {}
        self._finished = False
        self.config = Config(self._send_config)
        self.summary = Summary()
        if self._prefix:
            self._event("wandb_run", f"W&B run {self.name}: keys prefixed {self._prefix!r}",
                        {"name": self.name, "prefix": self._prefix})  # fmt: skip
        if config is not None:
            self.config.update(
                as_config_dict(config, config_exclude_keys, config_include_keys),
                allow_val_change=True,
            )

    def _open(self) -> CaptureWriter | None:
        return _capture()

    def _default_name(self) -> str:
        return (
            os.environ.get("TRAINDESK_RUN_NAME", self.id)
            if _runs_started == 1
            else (f"run-{_runs_started}")
        )

    # ------------------------------------------------------------------ records
    def _write(self, record: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.write(record)

    def _event(self, kind: str, message: str, data: dict[str, Any] | None) -> None:
        self._write({"kind": "event", "event": kind, "message": message, "data": data,
                     "step": self._step})  # fmt: skip

    def _send_config(self, changes: dict[str, Any]) -> None:
        if self._prefix:
            changes = {self._prefix + k: v for k, v in changes.items()}
        self._write({"kind": "config", "config": changes})

    # ------------------------------------------------------------------ properties
    @property
    def step(self) -> int:
        return self._step

    @property
    def dir(self) -> str:
        base = os.environ.get(ENV_RUN_DIR)
        root = os.path.join(base, "capture", "wandb") if base else tempfile.gettempdir()
        folder = os.path.join(root, f"wandb-{self.id}", "files")
        os.makedirs(folder, exist_ok=True)
        return folder

    @property
    def url(self) -> str | None:
        return None  # offline, as W&B's own offline runs

    @property
    def path(self) -> str:
        return f"{self.entity or 'offline'}/{self.project}/{self.id}"

    @property
    def disabled(self) -> bool:
        return False

    def get_url(self) -> str | None:
        return None

    def get_project_url(self) -> str | None:
        return None

    # ------------------------------------------------------------------ logging
    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None,
            sync: bool | None = None) -> None:  # fmt: skip
        """W&B's ``run.log``: see the module's docstring for the rules of steps and commits."""
        if self._finished:
            raise UsageError(f"Run ({self.id}) is finished. The call to `log` will be ignored. "
                             "Please make sure that you are using an active run.")  # fmt: skip
        if not isinstance(data, Mapping):
            raise ValueError("wandb.log must be passed a dictionary")
        if step is not None:
            step = int(step)
            if step < self._step:
                termwarn(f"Tried to log to step {step} that is less than the current step "
                         f"{self._step}. Steps must be monotonically increasing, so this data "
                         "will be ignored.")  # fmt: skip
                return
            if step > self._step:
                if self._row:
                    self._commit()
                self._step = step
        for key, value in _flatten(data):
            self._row[str(key)] = value
        if commit or (commit is None and step is None):
            self._commit()

    def _step_metric(self, key: str) -> _Metric | None:
        metric = self._metrics.get(key)
        if metric is None:
            metric = next((g for g in reversed(self._globs)
                           if fnmatch.fnmatchcase(key, g.name)), None)  # fmt: skip
        if metric is None or metric.step_metric is None or metric.step_metric == key:
            return None
        return metric

    def _commit(self) -> None:
        """Send the pending row at the current step, then move on to the next step."""
        row, self._row = self._row, {}
        values: dict[str, float] = {}
        for key, value in row.items():
            number = scalar(value)
            if number is not None and not key.startswith("_"):
                values[key] = number
        # step_sync: W&B copies a step metric's last value into a row that lacks it.
        for key in list(values):
            metric = self._step_metric(key)
            by = metric.step_metric if metric is not None and metric.step_sync else None
            if by is not None and by not in values and by in self._last:
                values[by] = self._last[by]
        by_step: dict[float, dict[str, float]] = {}
        for key, number in values.items():
            metric = self._step_metric(key)
            by = metric.step_metric if metric is not None else None
            at = values[by] if by is not None and by in values else float(self._step)
            by_step.setdefault(at, {})[self._prefix + key] = number
        for at, metrics in by_step.items():
            if at != at or math.isinf(at):
                continue  # a NaN or infinite step metric has no place on the axis
            self._write({"kind": "log", "step": int(at), "metrics": metrics, "wall": time.time()})
        self._last.update(values)
        for key, value in row.items():
            if not key.startswith("_"):
                self._auto_summary(key, value)
        self._step += 1

    def _auto_summary(self, key: str, value: Any) -> None:
        metric = self._metrics.get(key) or next(
            (g for g in reversed(self._globs) if fnmatch.fnmatchcase(key, g.name)), None
        )
        goals = metric.summary if metric is not None else []
        number = scalar(value)
        if not goals or number is None:
            self.summary[key] = value
            return
        if "none" in goals:
            self.summary._items.pop(key, None)
            return
        seen = self._reduced.setdefault(key, [])
        seen.append(number)
        reduced: dict[str, float] = {}
        for goal in goals:
            if goal == "min":
                reduced["min"] = min(seen)
            elif goal == "max":
                reduced["max"] = max(seen)
            elif goal == "mean":
                reduced["mean"] = sum(seen) / len(seen)
            elif goal == "first":
                reduced["first"] = seen[0]
            elif goal == "last":
                reduced["last"] = number
        self.summary[key] = reduced

    def define_metric(self, name: str, step_metric: str | _Metric | None = None,
                      step_sync: bool | None = None, hidden: bool | None = None,
                      summary: str | None = None, goal: str | None = None,
                      overwrite: bool | None = None, **kwargs: Any) -> _Metric:  # fmt: skip
        if isinstance(step_metric, _Metric):
            step_metric = step_metric.name
        metric = _Metric(name, step_metric, summary, hidden, step_sync)
        if metric.glob:
            self._globs.append(metric)
        else:
            self._metrics[name] = metric
        return metric

    # ------------------------------------------------------------------ the end
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        global run
        if self._finished:
            return
        if self._row:
            self._commit()
        self._finished = True
        self._send_summary()
        if self in _live:
            _live.remove(self)
        if run is self:
            _set_run(_live[-1] if _live else None)

    def _send_summary(self) -> None:
        shown: dict[str, float] = {}
        for key, value in _flatten(self.summary._as_dict()):
            number = scalar(value)
            if number is not None and not key.startswith("_"):
                shown[self._prefix + key] = number
        self._event("summary", "wandb summary", shown)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:  # fmt: skip
        self.finish(exit_code=0 if exc is None else 1)

    def mark_preempting(self) -> None:
        pass

    # ------------------------------------------------------------------ accepted, nothing done
    def watch(self, *args: Any, **kwargs: Any) -> None:
        pass

    def unwatch(self, *args: Any, **kwargs: Any) -> None:
        pass

    def save(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def restore(self, *args: Any, **kwargs: Any) -> None:
        return None

    def alert(self, title: str = "", text: str = "", *args: Any, **kwargs: Any) -> None:
        self._event("wandb_alert", f"{title}: {text}" if text else str(title), None)

    def log_code(self, *args: Any, **kwargs: Any) -> None:
        return None

    def log_artifact(self, artifact: Any, *args: Any, **kwargs: Any) -> Any:
        return artifact

    def use_artifact(self, artifact: Any, *args: Any, **kwargs: Any) -> Any:
        return artifact if isinstance(artifact, Artifact) else Artifact(str(artifact), "unknown")

    def link_artifact(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_model(self, *args: Any, **kwargs: Any) -> None:
        pass

    def use_model(self, *args: Any, **kwargs: Any) -> None:
        raise CommError("use_model: TrainDesk's wandb stand-in cannot download models")

    def _label(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Inert(f"Run.{name}")


class RunDisabled(Run):
    """A run of ``mode="disabled"`` or ``WANDB_MODE=disabled``: everything works, nothing is
    recorded (as with W&B's own disabled runs)."""

    def _open(self) -> CaptureWriter | None:
        return None

    def _default_name(self) -> str:
        return f"dummy-{self.id}"

    @property
    def disabled(self) -> bool:
        return True


NoopRun = RunDisabled

# ----------------------------------------------------------------------------- module level
run: Run | None = None
config: Config = Config()
summary: Summary = Summary()


def _set_run(new: Run | None) -> None:
    global run, config, summary
    run = new
    config = new.config if new is not None else Config()
    summary = new.summary if new is not None else Summary()


def _mode(mode: str | None, settings: Any) -> str:
    if mode is None and isinstance(settings, Settings):
        mode = settings.mode
    if mode is None and isinstance(settings, Mapping):
        mode = settings.get("mode")
    env = os.environ.get("WANDB_MODE")
    if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        env = "disabled"
    return str(mode or env or "online")


def init(project: str | None = None, config: Any = None, name: str | None = None,
         mode: str | None = None, reinit: bool | str | None = None, settings: Any = None,
         **kwargs: Any) -> Run:  # fmt: skip
    """Start a run; while one is active a second call returns it (W&B's default), unless
    ``reinit`` says to finish it first (``True``, ``"finish_previous"``) or to run both
    (``"create_new"``)."""
    if run is not None and not run._finished:
        if reinit in (True, "finish_previous"):
            run.finish()
        elif reinit != "create_new":
            return run
    kind = RunDisabled if _mode(mode, settings) == "disabled" else Run
    new = kind(project=project, name=name, config=config, settings=settings, **kwargs)
    _live.append(new)
    if run is None or run._finished:
        _set_run(new)  # W&B: a run made beside an active one (create_new) is not wandb.run
    return new


@atexit.register
def _at_exit() -> None:
    """As W&B: runs not finished are finished at the process's exit (summary included)."""
    for live in list(_live):
        live.finish()


def _need_run(what: str) -> Run:
    if run is None:
        raise Error(f"You must call wandb.init() before wandb.{what}()")
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None,
        sync: bool | None = None) -> None:  # fmt: skip
    _need_run("log").log(data, step=step, commit=commit)


def define_metric(name: str, *args: Any, **kwargs: Any) -> _Metric:
    return _need_run("define_metric").define_metric(name, *args, **kwargs)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    if run is not None:
        run.finish(exit_code)


def watch(*args: Any, **kwargs: Any) -> None:
    pass


def unwatch(*args: Any, **kwargs: Any) -> None:
    pass


def save(*args: Any, **kwargs: Any) -> bool:
    return True


def restore(*args: Any, **kwargs: Any) -> None:
    return None


def login(*args: Any, **kwargs: Any) -> bool:
    return True


def setup(*args: Any, **kwargs: Any) -> None:
    return None


def teardown(*args: Any, **kwargs: Any) -> None:
    pass


def require(*args: Any, **kwargs: Any) -> None:
    pass


def alert(*args: Any, **kwargs: Any) -> None:
    if run is not None:
        run.alert(*args, **kwargs)


def log_artifact(artifact: Any, *args: Any, **kwargs: Any) -> Any:
    return artifact


def use_artifact(artifact: Any, *args: Any, **kwargs: Any) -> Any:
    return _need_run("use_artifact").use_artifact(artifact)


def log_model(*args: Any, **kwargs: Any) -> None:
    pass


def mark_preempting() -> None:
    pass


def __getattr__(name: str) -> Any:
    """Other public names of W&B's API: accepted, doing nothing (never fatal)."""
    if name.startswith("_"):
        raise AttributeError(f"module 'wandb' has no attribute {name!r}")
    return _Inert(name)


class _InertModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Submodules of W&B that the stand-in does not have (``wandb.integration.keras``,
    ``wandb.apis``...): importable, every name in them inert. Asked last, after the real
    submodules here."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(__name__ + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        return None

    def exec_module(self, module: Any) -> None:
        module.__path__ = []
        name = module.__name__.removeprefix(__name__ + ".")

        def inert(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Inert(f"{name}.{attr}")

        module.__getattr__ = inert


if not any(isinstance(f, _InertModules) for f in sys.meta_path):
    sys.meta_path.append(_InertModules())

# What integrations import (Hugging Face's WandbCallback, Lightning's WandbLogger).
# (Imported by name: ``from . import sdk`` would find the inert __getattr__ above instead.)
errors = importlib.import_module(f"{__name__}.errors")
sdk = importlib.import_module(f"{__name__}.sdk")
importlib.import_module(f"{__name__}.wandb_run")
