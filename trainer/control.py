"""The control channel: messages to a live run (stop, pause, resume, checkpoint, extend, limits).

Each message is a small JSON file written atomically into the run folder's ``control/``
folder by whoever sends it (the desktop app, ``trainer stop``, ...). The trainer, which is the
journal's only writer, reads and deletes them at its safe points and journals what it did.
It works the same for runs started by the app and by the CLI, and across app restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer import jail
from trainer.errors import UsageError
from trainer.paths import RunPaths, write_private_text
from trainer.retry import transient

log = logging.getLogger(__name__)

COMMANDS = frozenset({"stop", "pause", "resume", "checkpoint", "extend", "limits"})
#: What a file that another process (a virus scanner, a sync client) holds open for a moment
#: gives on Windows and on Windows shares: the rename of a just-written message can fail so.
_FILE_BUSY = (PermissionError, BlockingIOError)


@dataclass(frozen=True)
class ControlMessage:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    sent: float = 0.0


def send(run: RunPaths, command: str, **args: Any) -> Path:
    """Drop a message for the run's trainer; returns the message file."""
    if command not in COMMANDS:
        raise UsageError(f"unknown control command {command!r}: use one of {sorted(COMMANDS)}")
    jail.make_dir(run.root, run.control)  # refuses a control/ that leads out of the folder
    now = time.time()
    path = run.control / f"{time.time_ns():020d}-{secrets.token_hex(4)}.json"
    text = json.dumps({"command": command, "args": args, "sent": now})
    # Short waits: the app sends from its GUI thread.
    retrying = transient(
        f"sending {command!r} to {run.root.name}",
        attempts=3,
        first_wait=0.02,
        max_wait=0.1,
        retry_on=_FILE_BUSY,
    )
    retrying(write_private_text, path, text)
    return path


def receive(run: RunPaths) -> list[ControlMessage]:
    """Take every pending message, oldest first, deleting each (the trainer's side)."""
    if jail.leaves(run.root, run.control):
        log.warning("%s: control/ leads out of the run folder: messages ignored", run.root.name)
        return []
    try:
        entries = sorted(e.name for e in os.scandir(run.control) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []
    messages = []
    for name in entries:
        path = run.control / name
        if os.path.islink(path):  # never read through (nor rename) a link: drop it
            log.warning("%s: control/%s is a symlink: removed unread", run.root.name, name)
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            path.unlink()
        except ValueError:
            # Messages are renamed into place whole, so this is garbage, not a half-written
            # message: set it aside (kept for a look) rather than read it at every safe point.
            with contextlib.suppress(OSError):
                path.replace(path.with_name(name + ".bad"))
            continue
        except OSError:
            # A message being written, held open (Windows), or garbage: never fatal. One we
            # could not read or delete stays, and the heartbeat flags it for the next safe
            # point: that is its retry, without holding up the training thread here.
            continue
        if isinstance(data, dict) and data.get("command") in COMMANDS:
            messages.append(
                ControlMessage(data["command"], dict(data.get("args") or {}), data.get("sent", 0))
            )
    return messages


def pending(run: RunPaths) -> bool:
    """Cheap check: is any message waiting?"""
    try:
        with os.scandir(run.control) as it:
            return any(e.name.endswith(".json") for e in it)
    except FileNotFoundError:
        return False
