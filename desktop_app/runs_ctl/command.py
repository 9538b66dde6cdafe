"""A command run's fields in the new-run dialog: the command line, its working directory, the
capture modes and the torchrun options, checked the way the trainer checks them. Qt-free.

Every ``*_problem`` function returns one line for the user, or "" when all is well.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from trainer.capture.printed import parser_for
from trainer.errors import UsageError

__all__ = [
    "PRINT_PRESETS",
    "CaptureChoice",
    "capture_problem",
    "command_problem",
    "cwd_problem",
    "rendezvous_problem",
    "split_command",
]

#: The printed-lines presets the dialog offers: (value, label). "regex" takes a pattern.
PRINT_PRESETS = (
    ("", "off"),
    ("kv", "key=value pairs (print:kv)"),
    ("dict", "printed dicts (print:dict)"),
    ("regex", "my own regex (print:REGEX)"),
)
_ENDPOINT = re.compile(r"^\[?[\w.:-]+\]?:\d{1,5}$")


def split_command(text: str) -> list[str]:
    """The argv of a command line, split as a POSIX shell would (quotes, backslashes);
    raises ValueError with a message for the user (an unclosed quote)."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split the command line: {exc}") from None


def cwd_problem(cwd: str) -> str:
    """Why ``cwd`` cannot be the command's working directory ("" is the app's own)."""
    if not cwd.strip():
        return ""
    path = Path(cwd.strip()).expanduser()
    if not path.is_dir():
        return f"the working directory {cwd.strip()} does not exist"
    return ""


def command_problem(text: str, cwd: str = "") -> str:
    """Why the command line ``text`` cannot run in ``cwd``: empty, badly quoted, or its
    program not found (on PATH, or as a path from ``cwd``), as ``trainer run -- CMD`` says."""
    try:
        argv = split_command(text)
    except ValueError as exc:
        return str(exc)
    if not argv:
        return "type the command to run, e.g. python train.py --lr 3e-4"
    program = argv[0]
    if os.sep in program or "/" in program:
        base = Path(cwd.strip()).expanduser() if cwd.strip() else Path.cwd()
        path = (base / Path(program).expanduser()).resolve()
        if not path.is_file():
            return f"{program} does not exist (from {base})"
        if not os.access(path, os.X_OK):
            return f"{program} is not executable: chmod +x it, or run it through its interpreter"
        return ""
    if shutil.which(program) is None:
        return f"command {program!r} not found on PATH: give its full path"
    return ""


@dataclass(frozen=True)
class CaptureChoice:
    """The capture modes ticked in the dialog; :meth:`specs` gives the ``--capture`` values."""

    wandb: bool = False
    tensorboard: bool = False
    tensorboard_dir: str = ""  # relative to the command's working directory; "" = runs
    printed: str = ""  # "", "kv", "dict" or "regex"
    regex: str = ""

    def specs(self) -> list[str]:
        out = []
        if self.wandb:
            out.append("wandb")
        if self.tensorboard:
            folder = self.tensorboard_dir.strip()
            out.append(f"tensorboard={folder}" if folder else "tensorboard")
        if self.printed in ("kv", "dict"):
            out.append(f"print:{self.printed}")
        elif self.printed == "regex":
            out.append(f"print:{self.regex}")
        return out

    def problem(self) -> str:
        """Why the choice cannot be used (a bad or empty regex), or ""."""
        if self.printed == "regex":
            if not self.regex:
                return r"type a regex with named groups, e.g. step (?P<step>\d+) loss (?P<loss>\S+)"
            return capture_problem(f"print:{self.regex}")
        return ""


def capture_problem(spec: str) -> str:
    """Why ``--capture spec`` would be refused by the trainer, or "" (a regex must compile
    and name a group for a metric besides ``step``, as the trainer checks it)."""
    if not spec.startswith("print:"):
        return ""
    pattern = spec.removeprefix("print:")
    if pattern in ("kv", "dict"):
        return ""
    try:
        names = set(re.compile(pattern).groupindex)
    except re.error as exc:
        return f"not a valid regex: {exc}"
    if not names - {"step"}:
        return r"no named group for a metric: write it like step (?P<step>\d+) loss (?P<loss>\S+)"
    try:
        parser_for(pattern)  # the trainer's own check, in case it asks more
    except UsageError as exc:
        return str(exc)
    return ""


def rendezvous_problem(nnodes: int, node_rank: int, endpoint: str) -> str:
    """Why the torchrun options of several nodes do not fit together, or ""."""
    if node_rank >= nnodes:
        return f"the node rank must be below the number of nodes ({nnodes})"
    if nnodes > 1 and not endpoint.strip():
        return "several nodes need a rendezvous endpoint HOST:PORT, the same on every node"
    if endpoint.strip() and not _ENDPOINT.match(endpoint.strip()):
        return f"{endpoint.strip()} is not HOST:PORT"
    return ""
