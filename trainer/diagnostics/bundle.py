"""``trainer doctor --bundle FILE.zip``: what a bug report needs, with no secrets in it.

The zip holds the doctor's report (text and JSON), the versions of TrainDesk and its key
dependencies, platform facts, an allow-list of environment variables, the app's settings
file if there is one, and for the most recent runs their config, resources, a summary and the
tails of their logs. Every file goes through :func:`trainer.diagnostics.scrub.scrub` on its way
in, and README.txt lists what was redacted where (names, never values). Never: checkpoints,
journals (the metric histories), other environment variables, other files of a run folder, nor
anything reached through a symlink (each is left out with a note).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import zipfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from trainer import jail
from trainer.diagnostics.checks import Report, run_checks
from trainer.diagnostics.probes import dist_version
from trainer.diagnostics.scrub import (
    REDACTED,
    SAFE_ENV_NAMES,
    is_secret_name,
    safe_environment,
    scrub,
)
from trainer.errors import JournalError, UsageError
from trainer.journal.reader import JournalReader
from trainer.paths import JOURNAL_NAME, RunPaths
from trainer.resources.limits import RESOURCES_FILE
from trainer.runs import list_run_folders, summarize

#: How much of the end of each log goes in.
TAIL_BYTES = 200 * 1024
#: Extra bytes read before a tail and scrubbed with it, so that a secret the cut would split
#: (a private key block) is still seen whole, then dropped.
_LEAD_BYTES = 16 * 1024
#: The newest events of a run in its summary.
MAX_EVENTS = 200
KEY_PACKAGES = (
    "traindesk", "torch", "PySide6", "PySide6-Essentials", "shiboken6", "pyqtgraph", "qasync",
    "nvidia-ml-py", "psutil", "peewee", "platformdirs", "numpy", "rich", "tenacity",
)  # fmt: skip
#: The desktop app's settings file, as ``desktop_app.settings.model.settings_path`` finds it
#: (the trainer may not import the app). A test keeps the two in step.
SETTINGS_NAME = "settings.toml"


def settings_file() -> Path:
    """``<platformdirs user config dir>/traindesk/settings.toml``: the app's settings."""
    import platformdirs

    return Path(platformdirs.user_config_dir("traindesk", appauthor=False)) / SETTINGS_NAME


def build_bundle(
    path: Path,
    runs_dir: Path,
    *,
    recent: int = 5,
    force: bool = False,
    report: Report | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the diagnostics zip to ``path``; returns the names of the files in it.

    ``report`` is the doctor's (run now if not given). An existing ``path`` is refused
    (UsageError) unless ``force``. The zip is written to a temporary file and renamed, private
    to the user (0600).
    """
    if path.exists() and not force:
        raise UsageError(f"{path} already exists: choose another FILE or add --force")
    if recent < 0:
        raise UsageError(f"--runs {recent}: give 0 or more runs")
    report = report if report is not None else run_checks(runs_dir)
    files: dict[str, str] = {
        "report.txt": report.table() + "\n",
        "report.json": _json(report.to_json()),
        "versions.json": _json(versions()),
        "platform.json": _json(platform_info()),
        "environment.json": _json(safe_environment(os.environ if environ is None else environ)),
    }
    env = os.environ if environ is None else environ
    hidden = [n for n in safe_environment(env) if is_secret_name(n) and env[n] != REDACTED]
    notes: list[str] = []
    found_in: dict[str, list[str]] = {"environment.json": hidden}  # what was redacted where
    settings = settings_file()
    if settings.is_file():
        found_in["app/settings.toml"] = []
        _add(files, notes, "app/settings.toml",
             partial(_read_tail, settings, found=found_in["app/settings.toml"]))  # fmt: skip
    for folder in recent_runs(runs_dir, recent):
        _add_run(files, notes, folder, found_in)
    redacted: list[str] = []
    for name in sorted(files):
        found = found_in.get(name, [])
        files[name] = scrub(files[name], found)
        if found:
            counts = {what: found.count(what) for what in dict.fromkeys(found)}
            redacted.append(f"{name}: " + ", ".join(
                f"{what} x{n}" if n > 1 else what for what, n in counts.items()))  # fmt: skip
    files["README.txt"] = _readme(sorted(files), notes, redacted)
    _write_zip(path, files)
    return sorted(files)


def versions() -> dict[str, Any]:
    """Python, SQLite and the installed versions of our package and its key dependencies."""
    return {
        "python": sys.version,
        "sqlite": sqlite3.sqlite_version,
        "packages": {name: dist_version(name) for name in KEY_PACKAGES},
    }


def platform_info() -> dict[str, Any]:
    import psutil

    return {
        "platform": platform.platform(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "frozen": bool(getattr(sys, "frozen", False)),
        "cpu_count": os.cpu_count(),
        "memory_total": psutil.virtual_memory().total,
    }


def recent_runs(runs_dir: Path, count: int) -> list[Path]:
    """The ``count`` run folders of ``runs_dir`` that changed last, newest first."""

    def changed(folder: Path) -> float:
        run = RunPaths(folder)
        found = [run.journal, folder / f"{JOURNAL_NAME}-wal", run.stdout_log, run.stderr_log,
                 run.structured_log]  # fmt: skip
        return max((p.stat().st_mtime for p in found if p.exists()), default=0.0)

    return sorted(list_run_folders(runs_dir), key=changed, reverse=True)[:count]


def run_summary(folder: Path) -> dict[str, Any]:
    """A run as ``trainer show --json`` shows it (its newest :data:`MAX_EVENTS` events)."""
    out: dict[str, Any] = summarize(folder).to_json()
    try:
        with JournalReader(folder) as reader:
            info = reader.run_info()
            events = reader.events()
    except JournalError as exc:
        out["journal_error"] = str(exc)
        return out
    out.update(
        config=info.config, host=info.host, pid=info.pid, heartbeat=info.heartbeat_wall,
        events=[{"wall": e.wall, "attempt": e.attempt, "step": e.step, "kind": e.kind,
                 "message": e.message} for e in events[-MAX_EVENTS:]],
    )  # fmt: skip
    return out


# ---------------------------------------------------------------------------- internals
def _add_run(
    files: dict[str, str], notes: list[str], folder: Path, found_in: dict[str, list[str]]
) -> None:
    run = RunPaths(folder)
    base = f"runs/{folder.name}"
    _add(files, notes, f"{base}/summary.json", lambda: _json(run_summary(folder)))
    for source in (run.config, folder / RESOURCES_FILE, run.stdout_log, run.stderr_log,
                   run.structured_log):  # fmt: skip
        name = f"{base}/{source.relative_to(folder).as_posix()}"
        if os.path.islink(source) or (os.path.lexists(source) and jail.leaves(folder, source)):
            notes.append(f"{name}: not included (a symlink: never followed)")
        elif source.is_file():
            _add(
                files, notes, name, partial(_read_tail, source, found=found_in.setdefault(name, []))
            )


def _add(files: dict[str, str], notes: list[str], name: str, read: Callable[[], str]) -> None:
    """Add one file; one that cannot be read becomes a note in README.txt."""
    try:
        files[name] = read()
    except (OSError, ValueError) as exc:
        notes.append(f"{name}: not included ({exc})")


def _read_tail(path: Path, limit: int = TAIL_BYTES, found: list[str] | None = None) -> str:
    """The last ``limit`` bytes of ``path`` as text, whole lines, scrubbed."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # never a link's target
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fd).st_size
        start = max(0, size - limit - _LEAD_BYTES)
        fh.seek(start)
        text = fh.read().decode("utf-8", errors="replace")
    if start:
        text = text.partition("\n")[2]
    text = scrub(text, found)
    data = text.encode("utf-8")
    if start == 0 and len(data) <= limit:
        return text
    kept = data[-limit:].decode("utf-8", errors="ignore").partition("\n")[2]
    return f"[... the first part of this {size}-byte file is left out ...]\n{kept}"


def _readme(names: list[str], notes: list[str], redacted: list[str]) -> str:
    lines = [
        "TrainDesk diagnostics bundle (trainer doctor --bundle)",
        "",
        "Files:",
        *(f"  {name}" for name in [*names, "README.txt"]),
        "",
        "Every file was scrubbed: values of keys that name a secret (token, secret, password,",
        "passwd, auth, credential, names ending in key, ...), netrc-style login and password",
        "values and anything shaped like a credential read [redacted].",
        "Environment variables: only TRAINDESK_* and " + ", ".join(sorted(SAFE_ENV_NAMES)) + ".",
        "Never included: checkpoints, journals (metric histories), other environment variables.",
    ]
    lines += ["", "Redacted:", *(f"  {r}" for r in redacted or ["nothing"])]
    if notes:
        lines += ["", "Left out:", *(f"  {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"


def _write_zip(path: Path, files: Mapping[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in sorted(files.items()):
                zf.writestr(name, scrub(text))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(
            f"cannot write {path} ({exc.strerror or exc}): choose another FILE"
        ) from None
