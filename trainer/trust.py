"""A run folder from elsewhere never makes code run without the user's word.

Resuming a command run (or a script run) runs what its journal names. The journal travels
with the folder, so a folder copied from another machine (or planted by someone else) could
name anything. When this machine creates such a run it records, outside the folder, in the
user's private data directory, which folder it made and what it runs; ``trainer resume`` runs
the command only if that record matches the folder it is given, else it shows the command and
asks for ``--trust`` (the app asks in a dialog). Torch-free and Qt-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trainer.errors import UsageError
from trainer.inert import inert
from trainer.paths import make_private_dir, write_private_text

#: Kinds of run whose resume runs nothing named by the folder (a built-in recipe).
SAFE_KINDS = frozenset({"recipe", "import"})


def store_dir() -> Path:
    """Where the records live: ``<user data dir>/traindesk/made-here`` (0700)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("traindesk", appauthor=False)) / "made-here"


def _record_path(run_id: str) -> Path:
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_")
    return store_dir() / f"{safe or 'run'}.json"


def record(folder: Path, run_id: str, entry: str) -> None:
    """Remember that this machine made ``folder`` (run ``run_id``) to run ``entry``."""
    make_private_dir(store_dir())
    data = {"folder": os.path.realpath(folder), "entry": entry}
    write_private_text(_record_path(run_id), json.dumps(data))


def made_here(folder: Path, run_id: str, entry: str) -> bool:
    """True if this machine made ``folder`` for run ``run_id`` to run ``entry``."""
    try:
        data = json.loads(_record_path(run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("folder") == os.path.realpath(folder)
        and data.get("entry") == entry
    )


def needs_trust(folder: Path, run_id: str, kind: str, entry: str) -> str | None:
    """What resuming ``folder`` would run, if that needs the user's word; else None."""
    if kind in SAFE_KINDS or made_here(folder, run_id, entry):
        return None
    return entry


def require(folder: Path, run_id: str, kind: str, entry: str, *, trusted: bool) -> None:
    """Refuse to go on unless the folder was made here or the user said ``--trust``; a
    trusted folder is recorded, so it is asked only once."""
    command = needs_trust(folder, run_id, kind, entry)
    if command is None:
        return
    if not trusted:
        what = "command" if kind in ("command", "distributed") else "script"
        raise UsageError(
            f"run {folder.name} was not made in this folder on this machine (copied or moved "
            f"here); resuming it runs the {what} `{inert(command)}`: check it, then resume "
            "with --trust"
        )
    record(folder, run_id, entry)
