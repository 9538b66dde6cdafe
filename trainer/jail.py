"""A run folder is a jail: file operations on it never follow a symlink out of it.

A run folder may come from elsewhere (copied, downloaded, planted by another local user), so
every path the trainer opens, creates, removes or renames inside it goes through :func:`check`
first: the path, resolved with every symlink followed, must still be inside the run folder.
:func:`check_run_folder` checks the standard entries at once (resume does it before anything
else) and names the first one that leaves. Torch-free and Qt-free.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from trainer.errors import UsageError

#: The entries of a run folder that the trainer reads or writes (files and folders).
ENTRIES = (
    "journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "config.toml", "checkpoints",
    "logs", "control", "capture", "resources.json", "command.json", "run.lock", "ranks.json",
    "annotations.json",
)  # fmt: skip
#: Folders whose entries are checked one by one as well.
FOLDERS = ("checkpoints", "logs", "control", "capture")


class OutsideRunFolderError(UsageError):
    """A path in a run folder that leads out of it through a symlink."""


def _real_root(root: Path) -> Path:
    return Path(os.path.realpath(root))


def leaves(root: Path, path: Path) -> bool:
    """True if ``path`` (every symlink followed) is not inside ``root``."""
    real_root = _real_root(root)
    real = Path(os.path.realpath(path))
    return real != real_root and real_root not in real.parents


def check(root: Path, path: Path) -> Path:
    """``path`` itself, after checking that it does not lead out of the run folder ``root``;
    raise :class:`OutsideRunFolderError` naming the entry otherwise."""
    if leaves(root, path):
        try:
            shown = path.relative_to(root)
        except ValueError:
            shown = path
        target = os.path.realpath(path)
        raise OutsideRunFolderError(
            f"refusing {shown} in run folder {root}: it is a symlink that leads out of the "
            f"folder (to {target}); remove the link, or copy the file into the folder"
        )
    return path


def check_run_folder(root: Path) -> None:
    """Check the run folder's standard entries and the files in its sub-folders."""
    for name in ENTRIES:
        path = root / name
        if os.path.lexists(path):
            check(root, path)
    for folder in FOLDERS:
        for path in entries(root, root / folder):
            check(root, path)


def entries(root: Path, folder: Path) -> Iterator[Path]:
    """The entries of ``folder`` (in the run folder ``root``; checked), none if it is missing."""
    check(root, folder)
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in sorted(names):
        yield folder / name


def open_fd(root: Path, path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` of a file in the run folder: never through a symlink (``O_NOFOLLOW``) nor a
    folder that leads out of it."""
    check(root, path.parent)
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                       mode)  # fmt: skip
    except OSError as exc:
        if os.path.islink(path):
            check(root, path)  # names the entry if it leads out
            raise OutsideRunFolderError(
                f"refusing {path.relative_to(root)} in run folder {root}: it is a symlink; "
                "remove the link"
            ) from exc
        raise


def unlink(root: Path, path: Path) -> None:
    """Remove a file of the run folder (a symlink is removed itself, never its target)."""
    check(root, path.parent)
    path.unlink(missing_ok=True)


def replace(root: Path, src: Path, dst: Path) -> None:
    """Rename within the run folder (a symlink is renamed itself, never its target)."""
    check(root, src.parent)
    check(root, dst.parent)
    if os.path.islink(dst):
        check(root, dst)
    os.replace(src, dst)


def make_dir(root: Path, path: Path) -> Path:
    """Create a private folder (0700) in the run folder, or tighten an existing one; a symlink
    out of the run folder is refused."""
    check(root, path)
    if os.path.islink(path):
        return path  # leads inside the folder: it is the target's business
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
