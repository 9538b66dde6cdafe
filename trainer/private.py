"""Private folders and files (0700/0600) whatever the umask, and tightening of open ones.

The runs directory, the lease store's folder and everything in them belong to one user: with
group or world access another local user could plant run folders, leases or symlinks. Folders
this module creates (parents included) are 0700 and files 0600 even under ``umask 000``; an
existing one that others can reach is tightened, with a note on stderr and in the log.
Torch-free and Qt-free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def private_dir(path: Path, what: str = "folder") -> Path:
    """Create ``path`` and any missing parents as 0700, or tighten an existing ``path``."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    if not missing:
        tighten(path, 0o700, what)
    return path


def private_file(path: Path, what: str = "file") -> Path:
    """Create ``path`` empty as 0600 if missing, or tighten an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)  # fmt: skip
    except FileExistsError:
        tighten(path, 0o600, what)
        return path
    os.fchmod(fd, 0o600)
    os.close(fd)
    return path


def tighten(path: Path, mode: int, what: str) -> bool:
    """Remove group and other access from ``path`` (never through a symlink); True if it had
    any. A path we do not own is left as it is, with a warning."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_IMODE(st.st_mode) & 0o077:
        return False
    old = stat.S_IMODE(st.st_mode)
    try:
        os.chmod(path, mode)
    except OSError as exc:
        message = (f"the {what} {path} is open to other users ({old:04o}) and cannot be made "
                   f"private ({exc.strerror}): fix it with chmod {mode:o}")  # fmt: skip
    else:
        message = f"the {what} {path} was open to other users ({old:04o}): made it {mode:04o}"
    log.warning("%s", message)
    with contextlib.suppress(OSError, ValueError):
        print(f"note: {message}", file=sys.stderr, flush=True)
    return True
