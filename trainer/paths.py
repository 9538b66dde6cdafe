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
        listing.json                    an ended run's listing: a hint, checked against the journal
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trainer import settings
from trainer.errors import UsageError

ENV_HOME = settings.HOME.name
ENV_RUN_DIR = settings.RUN_DIR.name
JOURNAL_NAME = "journal.sqlite"
#: An ended run's listing, kept beside its journal by the trainer (trainer.journal.listing_file).
LISTING_NAME = "listing.json"

_NAME_MAX = 100
_NAME_FORBIDDEN = ("/", "\\", ":", "*", "?", '"', "<", ">", "|")
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
)


def default_runs_dir() -> Path:
    """The platformdirs user data dir's ``runs`` folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("traindesk", appauthor=False)) / "runs"


def runs_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The runs directory: ``override`` (``--runs-dir``), else ``$TRAINDESK_HOME``, else default."""
    if override:
        return Path(override).expanduser()
    env = settings.HOME.raw()
    if env:
        return Path(env).expanduser()
    return default_runs_dir()


def check_runs_dir(path: Path, *, explicit: bool, create: bool) -> Path:
    """Make sure the runs directory ``path`` is there (or can be), with a one-line error if not.

    ``explicit``: the user named it (``--runs-dir``). A named folder that is missing is never
    made up silently: with ``create`` (a command that makes a run) it is created only where
    its parent exists, and a note says so on stderr; otherwise it is an error that names it.
    The default folder (``$TRAINDESK_HOME`` or the user data dir) is created when needed.
    """
    import sys

    if path.is_dir():
        return path
    if path.exists():
        raise UsageError(f"the runs directory {path} is a file, not a folder: choose another "
                         "with --runs-dir")  # fmt: skip
    if explicit and not create:
        raise UsageError(f"the runs directory {path} does not exist: check --runs-dir for a "
                         "typo (`trainer run` creates a new one)")  # fmt: skip
    if explicit and not path.parent.is_dir():
        raise UsageError(
            f"the runs directory {path} does not exist, nor does its parent: check "
            f"--runs-dir for a typo, or create it first (mkdir -p {path})"
        )
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the runs directory {path} ({exc.strerror}): fix the permissions "
            "of its parent or choose another with --runs-dir"
        ) from exc
    if explicit:
        print(f"note: created the runs directory {path}", file=sys.stderr, flush=True)
    return path


def validate_run_name(name: str) -> str:
    """Return ``name`` if it can be a folder name on every platform, else raise UsageError.

    Any printable name is accepted (spaces and letters of any script included), except the
    characters that Windows or a path gives a meaning to, a leading '-' (an option) or
    space, a trailing space or '.', and the names '.' and '..' and Windows' device names.
    """
    problem = run_name_problem(name)
    if problem:
        raise UsageError(f"run name {name!r} {problem}: {RUN_NAME_RULE}")
    return name


#: What a run name may be, as every message about a bad name says it.
RUN_NAME_RULE = (
    "use any printable characters (spaces and non-ASCII letters too) except "
    f"{' '.join(_NAME_FORBIDDEN)}, not starting with '-' or a space nor ending with '.' or "
    f"a space, at most {_NAME_MAX} characters"
)


def run_name_problem(name: str) -> str:
    """What is wrong with ``name`` as a run name ("" if nothing)."""
    if name in {"", ".", ".."}:
        return "is empty" if not name else "is not a folder name"
    if len(name) > _NAME_MAX:
        return f"is {len(name)} characters long"
    bad = sorted({c for c in name if c in _NAME_FORBIDDEN})
    if bad:
        what = "a path separator" if set(bad) & {"/", "\\"} else "a character"
        return f"contains {what} that a folder name cannot have ({' '.join(bad)})"
    if not name.isprintable():
        return "contains a control or unprintable character"
    if name[0] in "- ":
        return f"starts with {name[0]!r}"
    if name[-1] in ". ":
        return f"ends with {name[-1]!r}"
    if name.split(".")[0].upper() in _WINDOWS_DEVICES:
        return "is a device name on Windows"
    return ""


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) private (0700) whatever the umask, or tighten an
    existing one."""
    from trainer.private import private_dir

    return private_dir(path)


def write_private_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` atomically to a 0600 file (write, fsync, rename). ``durable=False``
    leaves out the fsync: for caches, rebuilt when lost, written while the app is idle."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
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

    env = settings.RESOURCES.raw()
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    shipped = files("trainer").joinpath("_resources")
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "resources"
