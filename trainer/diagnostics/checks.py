"""``trainer doctor``'s checks: each one a pass, warn or fail with a one-line fix.

:func:`run_checks` asks the machine through :class:`Probes`; tests swap single probes to
simulate what they cannot have (a network filesystem, GPUs without a CUDA torch, PySide6
6.12.0 on Python 3.11).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainer.diagnostics.probes import (
    Mount,
    TorchInfo,
    WalResult,
    mount_of,
    probe_torch,
    probe_wal,
    pyside6_version,
)
from trainer.errors import UsageError
from trainer.resources.gpus import ENV_SIMULATED, NO_DRIVER, GpuBackend, backend_from_env
from trainer.resources.store import ENV_LEASES, LeaseStore, store_path

Status = Literal["pass", "warn", "fail"]
MiB = 1024**2
GiB = 1024**3
#: Free space in the runs directory under which the doctor warns, and fails.
DISK_WARN = 2 * GiB
DISK_FAIL = 512 * MiB
SUPPORTED_PYTHON = ((3, 11), (3, 13))
PYSIDE_PIN = "PySide6-Essentials>=6.9,<6.12"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``fix`` says what to do about a warn or fail."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Report:
    """Every check, in the order shown, and the runs directory they looked at."""

    runs_dir: Path
    checks: list[Check]

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """``trainer doctor``'s exit code: 1 when a check failed, else 0."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in ("pass", "warn", "fail")}

    def table(self) -> str:
        """One line per check (``PASS  python  3.11.7``), then the counts."""
        width = max((len(c.name) for c in self.checks), default=0)
        lines = []
        for c in self.checks:
            fix = f"  fix: {c.fix}" if c.fix else ""
            lines.append(f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}{fix}")
        n = self.counts()
        warnings = "1 warning" if n["warn"] == 1 else f"{n['warn']} warnings"
        lines.append(
            f"\n{n['pass']} passed, {warnings}, {n['fail']} failed "
            f"(runs directory: {self.runs_dir})"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs_dir": str(self.runs_dir),
            "counts": self.counts(),
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class Probes:
    """Where the checks get their facts; each field can be replaced (``dataclasses.replace``)."""

    python: tuple[int, int, int] = (sys.version_info[0], sys.version_info[1], sys.version_info[2])
    platform: str = sys.platform
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    torch: Callable[[], TorchInfo] = probe_torch
    gpu_backend: Callable[[Mapping[str, str]], GpuBackend] = backend_from_env
    pyside6: Callable[[], str | None] = pyside6_version
    sqlite_version: str = sqlite3.sqlite_version
    mount: Callable[[Path], Mount | None] = mount_of
    wal: Callable[[Path], WalResult] = probe_wal
    disk_free: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free
    lease_store: Callable[[], Path] = store_path


def run_checks(runs_dir: Path, probes: Probes | None = None) -> Report:
    """Run every check against ``runs_dir`` (which need not exist yet). Never raises for
    what it finds; a slow part is the torch probe (a child Python importing torch)."""
    p = probes if probes is not None else Probes()
    runs_dir = runs_dir.expanduser().absolute()
    gpus, nvml = check_nvml(p)
    where = existing_folder(runs_dir)
    writable = check_writable(runs_dir, where)
    checks = [
        check_python(p.python),
        check_torch(p.torch(), gpus, p.environ),
        nvml,
        check_pyside6(p.pyside6(), p.python),
        check_display(p.platform, p.environ),
        Check("sqlite", "pass", f"SQLite {p.sqlite_version}"),
        writable,
        check_wal(where, p, tested=writable.status != "fail"),
        check_disk(where, p),
        check_leases(p),
    ]
    return Report(runs_dir, checks)


# ---------------------------------------------------------------------------- the checks
def check_python(version: tuple[int, int, int]) -> Check:
    text = ".".join(map(str, version))
    (low, high) = SUPPORTED_PYTHON
    if low <= version[:2] <= high:
        return Check("python", "pass", text)
    return Check(
        "python",
        "fail",
        f"{text} is not supported (3.11 to 3.13 are)",
        "install Python 3.11, 3.12 or 3.13 and recreate .venv (make run)",
    )


def check_nvml(p: Probes) -> tuple[int, Check]:
    """The GPUs NVML (or the simulation) sees, and the check. The count is of real GPUs."""
    backend = p.gpu_backend(p.environ)
    backend.init()
    try:
        devices = backend.devices()
    finally:
        backend.shutdown()
    reason = backend.unavailable_reason
    if backend.simulated:
        spec = p.environ.get(ENV_SIMULATED, "")
        return 0, Check("nvml", "pass", f"simulated: {len(devices)} GPUs ({ENV_SIMULATED}={spec})")
    if backend.label == "none":  # a bad simulation spec
        return 0, Check(
            "nvml", "fail", str(reason), f"set {ENV_SIMULATED} to e.g. 2x80GiB, or unset it"
        )
    if devices:
        names = ", ".join(sorted({d.name or "?" for d in devices}))
        return len(devices), Check("nvml", "pass", f"{len(devices)} GPUs: {names}")
    if reason == NO_DRIVER or (reason or "").startswith("No NVIDIA GPU"):
        return 0, Check("nvml", "pass", f"{reason}: CPU only")
    if reason and "not installed" in reason:
        return 0, Check("nvml", "warn", reason, "pip install nvidia-ml-py")
    return 0, Check(
        "nvml",
        "warn",
        reason or "NVML found no GPU",
        "check the driver with nvidia-smi; runs train on the CPU meanwhile",
    )


def check_torch(info: TorchInfo, gpus: int, environ: Mapping[str, str]) -> Check:
    """torch's version and CUDA; a CPU-only torch on a machine with GPUs is a warning."""
    if not info.installed:
        return Check(
            "torch",
            "fail",
            "torch is not installed",
            "pip install -c packaging/constraints.txt torch (or: make run)",
        )
    if info.error:
        return Check(
            "torch",
            "fail",
            f"torch {info.version or '?'}: {info.error}",
            "reinstall torch: pip install --force-reinstall torch",
        )
    if info.cuda_available is None:
        return Check("torch", "pass", f"{info.version} (CUDA not probed in a packaged app)")
    if info.cuda_available:
        return Check(
            "torch", "pass", f"{info.version}, CUDA {info.cuda_version}, {info.devices} GPUs"
        )
    if gpus == 0:
        simulated = " (GPUs simulated)" if environ.get(ENV_SIMULATED) else ""
        return Check("torch", "pass", f"{info.version}: CPU only{simulated}")
    if info.cuda_version is None:
        return Check(
            "torch",
            "warn",
            f"{info.version} is a CPU-only build but NVML sees {gpus} GPUs",
            "install a CUDA build of torch (https://pytorch.org/get-started/locally/)",
        )
    hidden = environ.get("CUDA_VISIBLE_DEVICES")
    why = f"CUDA_VISIBLE_DEVICES={hidden!r}" if hidden is not None else "check the driver"
    return Check(
        "torch",
        "warn",
        f"{info.version} (CUDA {info.cuda_version}) cannot use the {gpus} GPUs NVML sees",
        f"{why}; the driver may be older than CUDA {info.cuda_version} needs",
    )


def check_pyside6(version: str | None, python: tuple[int, int, int]) -> Check:
    """PySide6 from its metadata (never imported: the trainer stays Qt-free)."""
    if version is None:
        return Check(
            "pyside6",
            "warn",
            "not installed: the trainer works, the app needs it",
            f"pip install '{PYSIDE_PIN}'",
        )
    parsed = _release(version)
    if parsed[:3] == (6, 12, 0) and python[:2] == (3, 11):
        return Check(
            "pyside6",
            "fail",
            f"{version} crashes Python 3.11 (a None refcount bug: none_dealloc)",
            f"pip install '{PYSIDE_PIN}' (6.11.3 is clean)",
        )
    if parsed[:3] == (6, 8, 0):
        return Check(
            "pyside6", "fail", f"{version} segfaults on import", f"pip install '{PYSIDE_PIN}'"
        )
    if not (6, 9) <= parsed[:2] < (6, 12):
        return Check(
            "pyside6",
            "warn",
            f"{version} is untested (the app pins >=6.9,<6.12)",
            f"pip install '{PYSIDE_PIN}'",
        )
    return Check("pyside6", "pass", version)


def check_display(platform: str, environ: Mapping[str, str]) -> Check:
    """A display for the app. None is a warning: the trainer needs none."""
    qpa = environ.get("QT_QPA_PLATFORM", "")
    if qpa in ("offscreen", "minimal"):
        return Check(
            "display",
            "pass",
            f"headless (QT_QPA_PLATFORM={qpa}): fine for the trainer; the app draws offscreen",
        )
    if not platform.startswith("linux"):
        return Check("display", "pass", f"the desktop session ({platform})")
    if environ.get("WAYLAND_DISPLAY"):
        return Check("display", "pass", f"Wayland {environ['WAYLAND_DISPLAY']}")
    if environ.get("DISPLAY"):
        return Check("display", "pass", f"X11 {environ['DISPLAY']}")
    return Check(
        "display",
        "warn",
        "none (DISPLAY, WAYLAND_DISPLAY unset): fine for the trainer; the app needs one",
        "start the app in a desktop session (or ssh -X), set QT_QPA_PLATFORM=offscreen, "
        "or train headless with `trainer run`",
    )


def check_writable(runs_dir: Path, where: Path) -> Check:
    """Write permission in the runs directory (or, before the first run, where it will be)."""
    if runs_dir.exists() and not runs_dir.is_dir():
        return Check(
            "runs-dir",
            "fail",
            f"{runs_dir} is not a folder",
            "choose a folder with --runs-dir (or $TRAINDESK_HOME)",
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".traindesk-doctor-", dir=where)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return Check(
            "runs-dir",
            "fail",
            f"cannot write in {where}: {exc.strerror or exc}",
            f"make it writable (chmod u+w {where}; chattr -i if immutable) or choose "
            "another with --runs-dir",
        )
    if where != runs_dir:
        return Check(
            "runs-dir", "pass", f"{runs_dir} will be made by the first run ({where} is writable)"
        )
    return Check("runs-dir", "pass", f"{runs_dir} is writable")


def check_wal(where: Path, p: Probes, *, tested: bool) -> Check:
    """SQLite WAL in the runs directory: the mode sticks and a reader reads while a writer
    writes; a network filesystem is a warning even when the trial passes."""
    mount = p.mount(where)
    on = f" ({mount.fstype})" if mount else ""
    local_fix = "keep the runs directory on a local disk: --runs-dir or $TRAINDESK_HOME"
    if not tested:
        return Check(
            "wal", "warn", f"not tried: cannot write in {where}", "fix the runs-dir check first"
        )
    try:
        result = p.wal(where)
    except OSError as exc:
        return Check("wal", "fail", f"cannot make a trial database in {where}: {exc}", local_fix)
    if result.mode != "wal":
        return Check(
            "wal", "fail", f"journal_mode=WAL gave {result.mode!r} in {where}{on}", local_fix
        )
    if not result.ok:
        return Check(
            "wal",
            "fail",
            f"a reader could not read while a writer wrote in {where}{on}: {result.error}",
            local_fix,
        )
    if mount is not None and mount.network:
        return Check(
            "wal",
            "warn",
            f"{where} is on {mount.fstype}, a network filesystem: WAL journals can break there",
            local_fix,
        )
    return Check("wal", "pass", f"works in {where}{on}")


def check_disk(where: Path, p: Probes) -> Check:
    try:
        free = p.disk_free(where)
    except OSError as exc:
        return Check(
            "disk",
            "warn",
            f"cannot read the free space of {where}: {exc}",
            "check the runs directory with df",
        )
    text = f"{free / GiB:.1f} GiB free in {where}"
    fix = "free some space (old checkpoints, `trainer ls`) or use --runs-dir on a bigger disk"
    if free < DISK_FAIL:
        return Check("disk", "fail", f"{text} (under {DISK_FAIL // MiB} MiB)", fix)
    if free < DISK_WARN:
        return Check("disk", "warn", f"{text} (under {DISK_WARN // GiB} GiB)", fix)
    return Check("disk", "pass", text)


def check_leases(p: Probes) -> Check:
    """The machine's GPU lease store opens and reads."""
    path = p.lease_store()
    try:
        with LeaseStore(path) as store:
            leases, queued = len(store.leases()), len(store.queue())
    except (UsageError, sqlite3.Error, OSError) as exc:
        cause = exc.__context__ if isinstance(exc, UsageError) and exc.__context__ else exc
        return Check(
            "leases",
            "fail",
            f"{path} cannot be opened: {cause}",
            f"make its folder writable, or set ${ENV_LEASES} to another file",
        )
    return Check("leases", "pass", f"{path} ({leases} leases, {queued} queued)")


def existing_folder(path: Path) -> Path:
    """``path`` if it exists, else its nearest existing parent (where it would be made)."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _release(version: str) -> tuple[int, ...]:
    """``6.12.0`` -> (6, 12, 0); stops at the first part that is not a number."""
    parts: list[int] = []
    for part in version.split("."):
        number = re.match(r"\d+", part)
        if number is None:
            break
        parts.append(int(number.group()))
        if number.end() != len(part):
            break
    return tuple(parts)
