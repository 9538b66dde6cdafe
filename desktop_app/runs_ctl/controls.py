"""What each run action does, and when it is allowed. Qt-free and torch-free.

Actions act on a run folder through the same channels as the ``trainer`` CLI: control
messages (stop, pause, resume, checkpoint, extend), ``trainer resume`` as a child process
(restart), the journal (export) and the file system (delete). Which actions are enabled
follows the run's *derived* status (``trainer.journal.status``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from trainer import control, jail
from trainer.errors import JournalError
from trainer.export import read_series, write_csv
from trainer.journal.reader import JournalReader
from trainer.journal.status import LIVE
from trainer.paths import JOURNAL_NAME, RunPaths
from trainer.runs import summarize


class Action(StrEnum):
    """The run actions, in menu order."""

    NEW = "new"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    CHECKPOINT = "checkpoint"
    EXTEND = "extend"
    RESTART = "restart"
    OPEN_FOLDER = "open_folder"
    EXPORT_CSV = "export_csv"
    DELETE = "delete"


@dataclass(frozen=True)
class ActionInfo:
    """How an action is presented: its label, keyboard shortcut and tooltip."""

    label: str
    shortcut: str
    tip: str


ACTIONS: dict[Action, ActionInfo] = {
    Action.NEW: ActionInfo(
        "&New run…", "Ctrl+N", "Launch a recipe, a script or a command as a new run"
    ),
    Action.STOP: ActionInfo(
        "&Stop", "Ctrl+.", "Stop at the next safe point, with a checkpoint (can be restarted)"
    ),
    Action.PAUSE: ActionInfo("&Pause", "Space", "Pause at the next safe point"),
    Action.RESUME: ActionInfo("Res&ume", "Space", "Continue a paused run"),
    Action.CHECKPOINT: ActionInfo("&Checkpoint now", "Ctrl+S", "Save a checkpoint now"),
    Action.EXTEND: ActionInfo("E&xtend…", "Ctrl+Shift+X", "Train N more steps"),
    Action.RESTART: ActionInfo(
        "&Restart from checkpoint", "Ctrl+R", "Continue a stopped, crashed or failed run"
    ),
    Action.OPEN_FOLDER: ActionInfo("&Open run folder", "Ctrl+Shift+O", "Show the run's files"),
    Action.EXPORT_CSV: ActionInfo("&Export CSV…", "Ctrl+E", "Export metrics to a CSV file"),
    Action.DELETE: ActionInfo("&Delete run…", "Del", "Delete the run folder (asks first)"),
}

#: Statuses a control message can reach (a trainer process is there to read it).
STOPPABLE = frozenset({"starting", "running", "paused", "unresponsive"})
#: Statuses ``trainer resume`` restarts from the last checkpoint.
RESTARTABLE = frozenset({"stopped", "crashed", "failed"})


class ActionRefused(Exception):
    """An action that does not apply to the run as it is now; the message says why."""


def is_live(status: str | None, *, child: bool = False) -> bool:
    """A run with a process that may still write to its folder."""
    return child or status in LIVE or status == "unresponsive"


def enabled_actions(status: str | None, *, child: bool = False) -> frozenset[Action]:
    """The actions that apply to a run with this derived ``status`` (None: no run selected).

    ``child`` says the run is a live child of the app's supervisor (even before its journal
    exists).
    """
    enabled = {Action.NEW}
    if status is None and not child:
        return frozenset(enabled)
    enabled.add(Action.OPEN_FOLDER)
    if status not in (None, "unreadable"):
        enabled.add(Action.EXPORT_CSV)
    if status in STOPPABLE or child:  # our child: asked again, the supervisor escalates
        enabled.add(Action.STOP)
    if status == "running":
        enabled |= {Action.PAUSE, Action.CHECKPOINT, Action.EXTEND}
    if status == "paused":
        enabled |= {Action.RESUME, Action.EXTEND}
    if not is_live(status, child=child):
        if status in RESTARTABLE:
            enabled.add(Action.RESTART)
        enabled.add(Action.DELETE)
    return frozenset(enabled)


def check(action: Action, status: str | None, *, child: bool = False) -> None:
    """Raise :class:`ActionRefused` if ``action`` does not apply to a run in ``status``."""
    if action not in enabled_actions(status, child=child):
        label = ACTIONS[action].label.replace("&", "").rstrip("…")
        raise ActionRefused(f"{label}: not possible while the run is {status or 'not selected'}")


def send_control(folder: Path, action: Action, *, steps: int | None = None) -> Path:
    """Send the control message of ``action`` (stop/pause/resume/checkpoint/extend)."""
    commands = {
        Action.STOP: "stop",
        Action.PAUSE: "pause",
        Action.RESUME: "resume",
        Action.CHECKPOINT: "checkpoint",
        Action.EXTEND: "extend",
    }
    if action not in commands:
        raise ValueError(f"{action} is not a control message")
    if action == Action.EXTEND:
        if not steps or steps <= 0:
            raise ActionRefused(f"extend by {steps} steps: give a positive number of steps")
        return control.send(RunPaths(folder), "extend", steps=steps)
    return control.send(RunPaths(folder), commands[action])


def delete_run(folder: Path, *, confirmed: bool, child: bool = False) -> None:
    """Delete a run folder: only a confirmed, non-live run folder (one with a journal)."""
    if not (folder / JOURNAL_NAME).is_file():
        raise ActionRefused(f"{folder} is not a run folder (it has no {JOURNAL_NAME})")
    status = summarize(folder, with_latest=False).status
    if is_live(status, child=child):
        raise ActionRefused(f"run {folder.name} is {status}: stop it before deleting it")
    if not confirmed:
        raise ActionRefused(f"deleting run {folder.name} needs a confirmation")
    shutil.rmtree(folder)


def metric_keys(folder: Path) -> list[str]:
    """The run's metric names (for the export's key chooser)."""
    with JournalReader(folder) as reader:
        return reader.keys()


def export_csv(
    folders: Path | Sequence[Path],
    path: Path,
    keys: Iterable[str] | None = None,
    *,
    all_attempts: bool = False,
) -> int:
    """Write ``keys`` (default: all) of one run to ``path`` as ``trainer export --format csv``
    does (``key, step, value, wall_time, attempt``), or of several runs with a leading ``run``
    column. Written to a temporary file, then renamed. Returns the number of points written.
    Blocking: call it off the GUI thread."""
    runs = list(folders) if not isinstance(folders, Path) else [folders]
    wanted = None if keys is None else list(keys)
    try:
        for folder in runs:  # never export a journal linked in from elsewhere
            jail.check(folder, folder / JOURNAL_NAME)
        series = [(f.name, read_series(f, wanted, all_attempts=all_attempts)) for f in runs]
    except (JournalError, jail.OutsideRunFolderError) as exc:
        raise ActionRefused(str(exc)) from None
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            count = write_csv(fh, series, run_column=not isinstance(folders, Path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return count


def untrusted_command(folder: Path) -> str | None:
    """The command or script that restarting ``folder`` would run, if the folder was made
    elsewhere (copied here) and so needs the user's confirmation; None otherwise."""
    from trainer import trust

    try:
        with JournalReader(folder) as reader:
            info = reader.run_info()
    except JournalError:
        return None  # `trainer resume` reports an unreadable journal itself
    return trust.needs_trust(folder, info.id, info.kind, info.entry)
