"""The questions the doctor asks the machine, each a small function tests can replace.

Qt-free and torch-free, so that the desktop app may import it: PySide6 is never imported
(its version comes from the package metadata) and torch is probed in a child process
(:func:`probe_torch`, where the module docstring of :mod:`trainer.diagnostics` says why).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Seconds the torch probe may take (importing torch with CUDA can take a while when cold).
TORCH_TIMEOUT_S = 120.0
#: Filesystem types (from /proc/mounts) that are network or host-shared filesystems: SQLite's
#: WAL needs shared memory between the processes that open a journal, which these do not give.
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "afs", "ncpfs", "ceph",
    "glusterfs", "lustre", "gpfs", "beegfs", "davfs", "sshfs", "vboxsf", "vmhgfs", "prl_fs",
})  # fmt: skip
#: FUSE filesystems (``fuse.NAME``) that reach the network.
NETWORK_FUSE = frozenset({
    "sshfs", "rclone", "s3fs", "gcsfuse", "glusterfs", "cephfs", "davfs", "smbnetfs",
    "vmhgfs-fuse", "goofys", "juicefs", "mountpoint-s3", "blobfuse", "blobfuse2",
})  # fmt: skip

_TORCH_CODE = """\
import json, torch
cuda = torch.cuda.is_available()
print(json.dumps({"version": torch.__version__, "cuda": cuda, "cuda_version": torch.version.cuda,
                  "devices": torch.cuda.device_count() if cuda else 0}))
"""


@dataclass(frozen=True)
class TorchInfo:
    """What the torch probe found. ``cuda_available`` is None when it could not be asked."""

    installed: bool
    version: str | None = None
    cuda_available: bool | None = None
    cuda_version: str | None = None  # torch.version.cuda: None for a CPU-only build
    devices: int = 0
    error: str | None = None  # the import failed or timed out: why


@dataclass(frozen=True)
class WalResult:
    """What a WAL trial in a folder gave: the journal mode SQLite reported, whether a second
    connection could read while the first held a write transaction, and any error."""

    mode: str | None
    concurrent_read: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.mode == "wal" and self.concurrent_read and self.error is None


@dataclass(frozen=True)
class Mount:
    """The mount a path lives on, from ``/proc/mounts``."""

    point: str
    fstype: str
    source: str = ""

    @property
    def network(self) -> bool:
        kind = self.fstype.lower()
        if kind.startswith("fuse."):
            return kind.removeprefix("fuse.") in NETWORK_FUSE
        return kind in NETWORK_FS or kind.startswith(("nfs", "smb"))


def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def module_found(name: str) -> bool:
    """Whether top-level module ``name`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def pyside6_version() -> str | None:
    """PySide6's version from its metadata (never imported), "unknown" when it is there
    without metadata, None when it is not installed."""
    if not module_found("PySide6"):
        return None
    return dist_version("PySide6") or dist_version("PySide6-Essentials") or "unknown"


def probe_torch() -> TorchInfo:
    """Import torch in a child Python and ask it for its version and CUDA.

    A child, not an import: the module stays torch-free for the desktop app, the caller does
    not load torch and CUDA (about 1 GB) to learn three facts, and a broken CUDA install that
    hangs or crashes on import takes down the probe, never the doctor.
    """
    version = dist_version("torch")
    if not module_found("torch"):
        return TorchInfo(installed=False)
    if getattr(sys, "frozen", False):  # a packaged app: sys.executable is not a Python
        return TorchInfo(installed=True, version=version)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TORCH_CODE], capture_output=True, text=True,
            timeout=TORCH_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return TorchInfo(True, version, error=f"import torch took over {TORCH_TIMEOUT_S:.0f} s")
    except OSError as exc:
        return TorchInfo(True, version, error=f"cannot start {sys.executable}: {exc}")
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return TorchInfo(True, version, error=f"import torch failed: {last}")
    data = json.loads(lines[-1])
    return TorchInfo(
        installed=True, version=str(data["version"]), cuda_available=bool(data["cuda"]),
        cuda_version=data["cuda_version"], devices=int(data["devices"]),
    )  # fmt: skip


def mount_of(path: Path, mounts_file: Path = Path("/proc/mounts")) -> Mount | None:
    """The mount ``path`` is on (the longest mount point above it), None if unknown."""
    try:
        text = mounts_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = os.path.realpath(path)
    best: Mount | None = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):  # later mounts win
            best = Mount(point, fields[2], _unescape(fields[0]))
    return best


def probe_wal(folder: Path) -> WalResult:
    """Try a journal's way of working in ``folder``: a throw-away SQLite file in WAL mode, one
    connection writing while a second reads. The files are removed afterwards."""
    fd, name = tempfile.mkstemp(prefix=".traindesk-doctor-", suffix=".sqlite", dir=folder)
    os.close(fd)
    mode: str | None = None
    conns: list[sqlite3.Connection] = []
    try:
        writer = sqlite3.connect(name, timeout=2.0, isolation_level=None)
        conns.append(writer)
        mode = str(writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        writer.execute("CREATE TABLE probe (x INTEGER)")
        writer.execute("INSERT INTO probe VALUES (1)")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO probe VALUES (2)")
        reader = sqlite3.connect(name, timeout=2.0, isolation_level=None)
        conns.append(reader)
        during = reader.execute("SELECT count(*) FROM probe").fetchone()[0]
        writer.execute("COMMIT")
        after = reader.execute("SELECT count(*) FROM probe").fetchone()[0]
    except sqlite3.Error as exc:
        return WalResult(mode, False, str(exc))
    finally:
        for conn in reversed(conns):
            conn.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)
    if (during, after) != (1, 2):
        return WalResult(mode, False, f"a reader saw {during} then {after} rows, not 1 then 2")
    return WalResult(mode, True)


def _unescape(field: str) -> str:
    """/proc/mounts writes a space as \\040, a tab as \\011 and so on."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
