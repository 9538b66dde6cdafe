"""Every environment variable TrainDesk's programs read: its name, default and meaning.

This module is the only one that reads ``os.environ`` (tests/test_house.py checks it; the
W&B stand-in, which mirrors the ``WANDB_*`` variables as wandb reads them, is the exception).
Code asks a :class:`Setting` for its value: ``HOME.get()`` gives the typed value, or the
default when the variable is unset, empty or cannot be parsed; ``HOME.raw()`` the text as
set. ``trainer doctor`` shows the current values (:func:`current`) and docs/settings.md lists
them all (generated from :data:`SETTINGS`, checked by a test). Qt-free and torch-free; it
imports nothing of TrainDesk, so every layer may use it.

Writing a variable (for a child process) is not reading one: ``os.environ[...] = ...`` and
copies of the environment for a child stay where they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: Who sets a variable: the user, TrainDesk itself (for the processes it starts), or others.
BY_YOU, BY_TRAINDESK, BY_OTHERS = "you", "TrainDesk", "others"


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: T
    meaning: str
    parse: Callable[[str], T]
    set_by: str = BY_YOU

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's text, or None when it is unset or empty."""
        value = (os.environ if environ is None else environ).get(self.name)
        return value or None

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        """The typed value; the default when unset, empty or not parseable."""
        raw = self.raw(environ)
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError:
            return self.default

    def problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Why the value set cannot be used (then :meth:`get` gives the default), or None."""
        raw = self.raw(environ)
        if raw is None:
            return None
        try:
            self.parse(raw)
        except ValueError as exc:
            return f"${self.name}={raw!r} is not usable ({exc}): the default applies"
        return None


def _text(value: str) -> str:
    return value.strip()


def _number(value: str) -> float:
    return float(value)


def _integer(value: str) -> int:
    return int(value)


def _optional_integer(value: str) -> int | None:
    return int(value)


def _optional_text(value: str) -> str | None:
    return value.strip() or None


SETTINGS: dict[str, Setting[object]] = {}


def _define(setting: Setting[T]) -> Setting[T]:
    SETTINGS[setting.name] = setting  # type: ignore[assignment]
    return setting


# ----------------------------------------------------------------------------- set by you
HOME = _define(Setting(
    "TRAINDESK_HOME", None, "the runs directory (--runs-dir overrides it); unset: the "
    "platform's user data folder", _optional_text))  # fmt: skip
CONFIG_ENV = _define(Setting(
    "TRAINDESK_ENV", None, "the [env.NAME] overlay applied to every config, as --env NAME",
    _optional_text))  # fmt: skip
LEASES = _define(Setting(
    "TRAINDESK_LEASES", None, "the GPU lease store file; unset: leases.sqlite in the user "
    "state folder", _optional_text))  # fmt: skip
SCREENSHOTS = _define(Setting(
    "TRAINDESK_SCREENSHOTS", None, "where the screenshot tests write the app's pictures; "
    "unset: build/screenshots", _optional_text))  # fmt: skip
SIMULATED_GPUS = _define(Setting(
    "TRAINDESK_SIMULATED_GPUS", "", "simulated GPUs instead of NVML, e.g. 2x80GiB (demos and "
    "tests; marked 'simulated' everywhere)", _text))  # fmt: skip
STOP_DEADLINE = _define(Setting(
    "TRAINDESK_STOP_DEADLINE", 25.0, "seconds a stopping trainer waits for a safe point "
    "before it exits anyway (code 143)", _number))  # fmt: skip
LOG_LEVEL = _define(Setting(
    "TRAINDESK_LOG_LEVEL", "", "the level of the structured logs (the run's logs/trainer.jsonl "
    "and the app's log): debug, info, warning or error; unset: info, or the app's setting",
    _text))  # fmt: skip
LOG_MAX_BYTES = _define(Setting(
    "TRAINDESK_LOG_MAX_BYTES", 50 * 2**20, "the size at which a run's console logs rotate "
    "(3 kept)", _integer))  # fmt: skip
LOG_BUFFER = _define(Setting(
    "TRAINDESK_LOG_BUFFER", 100_000, "how many logged points may wait for the journal before "
    "run.log() waits (at least 1,000)", _integer))  # fmt: skip
APP_LOG_DIR = _define(Setting(
    "TRAINDESK_LOG_DIR", None, "the folder of the app's own log; unset: the user log folder",
    _optional_text))  # fmt: skip
RESOURCES = _define(Setting(
    "TRAINDESK_RESOURCES", None, "the folder of the recipe defaults; unset: the one installed "
    "with TrainDesk", _optional_text))  # fmt: skip

# ---------------------------------------------- set by TrainDesk for the processes it starts
RUN_DIR = _define(Setting(
    "TRAINDESK_RUN_DIR", None, "the run folder of a script or command started by trainer run",
    _optional_text, BY_TRAINDESK))  # fmt: skip
ENTRY = _define(Setting(
    "TRAINDESK_ENTRY", None, "the script a run records as its entry (for resume)",
    _optional_text, BY_TRAINDESK))  # fmt: skip
CAPTURE_FILE = _define(Setting(
    "TRAINDESK_CAPTURE_FILE", None, "where a command run's metrics go (the capture file)",
    _optional_text, BY_TRAINDESK))  # fmt: skip
COMMAND_CONFIG = _define(Setting(
    "TRAINDESK_COMMAND_CONFIG", "{}", "a command run's config overrides (--set, --config), "
    "as JSON", _text, BY_TRAINDESK))  # fmt: skip
RUN_NAME = _define(Setting(
    "TRAINDESK_RUN_NAME", None, "a command run's name (the W&B stand-in's run name)",
    _optional_text, BY_TRAINDESK))  # fmt: skip
FIRST_PAINT_FILE = _define(Setting(
    "TRAINDESK_FIRST_PAINT_FILE", None, "the app writes the time of its first frame here "
    "(bench/app_start.py)", _optional_text, BY_TRAINDESK))  # fmt: skip
LISTED_FILE = _define(Setting(
    "TRAINDESK_LISTED_FILE", None, "the app writes when its runs table is filled here "
    "(bench/many_runs.py)", _optional_text, BY_TRAINDESK))  # fmt: skip
PROBE_FILE = _define(Setting(
    "TRAINDESK_PROBE_FILE", None, "the app writes its probe's figures here (the benchmarks)",
    _optional_text, BY_TRAINDESK))  # fmt: skip

# ------------------------------------------------------------------------- set by others
DISPLAY = _define(Setting(
    "DISPLAY", None, "an X11 display: make run starts the app only with a display",
    _optional_text, BY_OTHERS))  # fmt: skip
WAYLAND_DISPLAY = _define(Setting(
    "WAYLAND_DISPLAY", None, "a Wayland display: as DISPLAY", _optional_text,
    BY_OTHERS))  # fmt: skip
TMPDIR = _define(Setting(
    "TMPDIR", None, "the temporary folder; each run gets a folder of its own under it",
    _optional_text, BY_OTHERS))  # fmt: skip
LOCAL_RANK = _define(Setting(
    "LOCAL_RANK", 0, "torchrun: this worker's rank on its node", _integer,
    BY_OTHERS))  # fmt: skip
GROUP_RANK = _define(Setting(
    "GROUP_RANK", None, "torchrun: this node's rank", _optional_integer,
    BY_OTHERS))  # fmt: skip
NODE_RANK = _define(Setting(
    "NODE_RANK", 0, "torchrun (older): this node's rank", _integer, BY_OTHERS))  # fmt: skip
RESTART_COUNT = _define(Setting(
    "TORCHELASTIC_RESTART_COUNT", 0, "torchrun: how often the workers were restarted",
    _integer, BY_OTHERS))  # fmt: skip


def current(environ: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """Each setting with its current value (None: unset), default and meaning, for
    ``trainer doctor``."""
    return [
        {"name": s.name, "value": s.raw(environ), "default": s.default, "set_by": s.set_by,
         "meaning": s.meaning, "problem": s.problem(environ)}
        for s in SETTINGS.values()
    ]  # fmt: skip


def markdown_table() -> str:
    """docs/settings.md's table (a test compares it with the file)."""
    rows = ["| variable | default | set by | meaning |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        default = "unset" if s.default in (None, "") else f"`{s.default}`"
        rows.append(f"| `{s.name}` | {default} | {s.set_by} | {s.meaning} |")
    return "\n".join(rows) + "\n"
