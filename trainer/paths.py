"""Where runs live and what a run folder holds. Qt-free and torch-free.

A run folder is self-contained; copied to another machine, it opens::

    <runs dir>/<run name>/
        journal.sqlite (+ -wal, -shm)   metrics, status, events, heartbeats, system samples
        config.toml                     the resolved training config
        checkpoints/ckpt-000001000.pt   atomic, the last K kept
        logs/stdout.log, stderr.log     the trainer's console output
        logs/trainer.jsonl              structured log, one JSON object per line
        control/                        messages to the run (stop, pause, ...), see control.py
        resources.json                  the GPUs, priority and limits it asked for
        capture/                        a command run's captured records (trainer.capture)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import UsageError

ENV_HOME = "TRAINDESK_HOME"
ENV_RUN_DIR = "TRAINDESK_RUN_DIR"
JOURNAL_NAME = "journal.sqlite"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def default_runs_dir() -> Path:
    """The platformdirs user data dir's ``runs`` folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("traindesk", appauthor=False)) / "runs"


def runs_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The runs directory: ``override`` (``--runs-dir``), else ``$TRAINDESK_HOME``, else default."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    return default_runs_dir()


def validate_run_name(name: str) -> str:
    """Return ``name`` if it can be a folder name on every platform, else raise UsageError."""
    if "/" in name or "\\" in name or ".." in name or name in {".", ""}:
        raise UsageError(
            f"run name {name!r} contains a path separator or '..': "
            "use letters, digits, '.', '_', '+' or '-'"
        )
    if not _NAME_RE.match(name):
        raise UsageError(
            f"run name {name!r} is not allowed: start with a letter or digit and use only "
            "letters, digits, '.', '_', '+' or '-' (at most 100 characters)"
        )
    return name


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) private (0700) whatever the umask, or tighten an
    existing one."""
    from trainer.private import private_dir

    return private_dir(path)


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` atomically to a 0600 file (write, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RunPaths:
    """The files and folders of one run folder."""

    root: Path

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_NAME

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stdout_log(self) -> Path:
        return self.logs / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.logs / "stderr.log"

    @property
    def structured_log(self) -> Path:
        return self.logs / "trainer.jsonl"

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def name(self) -> str:
        return self.root.name

    def create(self) -> RunPaths:
        """Create the folder tree, private to the user. The run folder itself must be new."""
        from trainer.private import private_dir

        private_dir(self.root.parent, "runs directory")
        self.root.mkdir(mode=0o700)  # FileExistsError if the name is taken
        os.chmod(self.root, 0o700)
        for sub in (self.checkpoints, self.logs, self.control):
            make_private_dir(sub)
        return self

    def ensure_subdirs(self) -> None:
        """Recreate missing sub-folders of an existing run folder (e.g. an emptied logs/)."""
        for sub in (self.checkpoints, self.logs, self.control):
            make_private_dir(sub)

    def is_run_folder(self) -> bool:
        return self.journal.is_file()


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (recipe defaults): installed, in a bundle or a checkout.

    An installed wheel carries it as the package data ``trainer/_resources`` (see setup.py),
    found through importlib.resources; the PyInstaller bundle as ``<bundle>/resources``; a
    checkout (or an editable install) has the top-level ``resources/`` beside ``trainer/``.
    """
    import sys
    from importlib.resources import files

    env = os.environ.get("TRAINDESK_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    shipped = files("trainer").joinpath("_resources")
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "resources"
