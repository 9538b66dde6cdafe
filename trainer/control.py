"""The control channel: messages to a live run (stop, pause, resume, checkpoint, extend, limits).

Each message is a small JSON file written atomically into the run folder's ``control/``
folder by whoever sends it (the desktop app, ``trainer stop``, ...). The trainer, which is the
journal's only writer, reads and deletes them at its safe points and journals what it did.
It works the same for runs started by the app and by the CLI, and across app restarts.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import UsageError
from trainer.paths import RunPaths, make_private_dir, write_private_text

COMMANDS = frozenset({"stop", "pause", "resume", "checkpoint", "extend", "limits"})


@dataclass(frozen=True)
class ControlMessage:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    sent: float = 0.0


def send(run: RunPaths, command: str, **args: Any) -> Path:
    """Drop a message for the run's trainer; returns the message file."""
    if command not in COMMANDS:
        raise UsageError(f"unknown control command {command!r}: use one of {sorted(COMMANDS)}")
    make_private_dir(run.control)
    now = time.time()
    path = run.control / f"{time.time_ns():020d}-{secrets.token_hex(4)}.json"
    write_private_text(path, json.dumps({"command": command, "args": args, "sent": now}))
    return path


def receive(run: RunPaths) -> list[ControlMessage]:
    """Take every pending message, oldest first, deleting each (the trainer's side)."""
    try:
        entries = sorted(e.name for e in os.scandir(run.control) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []
    messages = []
    for name in entries:
        path = run.control / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            path.unlink()
        except (OSError, ValueError):
            continue  # a message being written, or garbage: never fatal
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
