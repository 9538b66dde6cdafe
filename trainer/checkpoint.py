"""Atomic checkpoints: write to a temporary file, fsync, rename; keep the last K.

A checkpoint holds the caller's state (model, optimizer, scheduler, data position, ...), the
step, and the RNG states (torch, CUDA, Python), so that a resumed run repeats an uninterrupted
one exactly on the CPU. Loading uses ``torch.load(weights_only=True)``: a run folder that came
from elsewhere cannot execute code when opened or resumed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import torch

from trainer import jail

log = logging.getLogger(__name__)

FORMAT = 1
_NAME_RE = re.compile(r"^ckpt-(\d{9,})\.pt$")
_PARTIAL_RE = re.compile(r"^\.ckpt-\d{9,}\.pt\.\d+\.tmp$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:09d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file, oldest first (a symlink out of the run folder is
    left out, with a warning)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        match = _NAME_RE.match(entry.name)
        if match:
            path = Path(entry.path)
            if jail.leaves(folder.parent, path):
                log.warning("checkpoint %s is a symlink out of the run folder: ignored", path)
                continue
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_partial(folder: Path) -> list[str]:
    """Remove temporary files left by attempts killed while saving; returns their names.
    Call only while holding the run's lock (no live attempt is writing one)."""
    removed = []
    try:
        names = [e.name for e in os.scandir(folder)]
    except OSError:
        return []
    for name in sorted(names):
        if _PARTIAL_RE.match(name):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                removed.append(name)
    if removed:
        log.info("removed %d partial checkpoint file(s) left by a killed attempt: %s",
                 len(removed), ", ".join(removed))  # fmt: skip
    return removed


def looks_complete(path: Path) -> bool:
    """A cheap test that a file is a whole checkpoint: torch's zip format with its central
    directory and pickle (a truncated or foreign file fails it). Reads no tensors."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl")
                       for name in archive.namelist())  # fmt: skip
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def rng_state() -> dict[str, Any]:
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(folder: Path, step: int, state: dict[str, Any], *, keep: int = 3) -> Path:
    """Save atomically as ``ckpt-<step>.pt`` (0600), then delete all but the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = checkpoint_path(folder, step)
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    payload = {"format": FORMAT, "step": step, "state": state, "rng": rng_state()}
    jail.check(folder.parent, folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    writer: _Writes | None = None
    try:
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "wb") as fh:
            writer = _Writes(fh)
            torch.save(payload, writer)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(folder)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        # torch reports a failed write as a RuntimeError: give the OSError beneath it.
        if writer is not None and writer.error is not None and not isinstance(exc, OSError):
            raise writer.error from exc
        raise
    _prune(folder, final, keep)
    return final


class _Writes:
    """A file object for torch.save that remembers the OSError of a failed write."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self._fh.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def _prune(folder: Path, final: Path, keep: int) -> None:
    """Keep the checkpoint just saved and the newest others that are whole, ``keep`` in all.
    A damaged file never counts (so it never pushes a good one out) and is kept for a look."""
    if keep <= 0:
        return
    good = 1  # the one just saved
    for _step, path in reversed(list_checkpoints(folder)):
        if path == final or not looks_complete(path):
            continue
        if good < keep:
            good += 1
        else:
            path.unlink(missing_ok=True)


def load_latest(folder: Path) -> dict[str, Any] | None:
    """The newest checkpoint that loads, as saved (``step``, ``state``, ``rng``); None if none.

    A damaged newest file is skipped with a warning (never deleted), falling back to the one
    before it.
    """
    for _step, path in reversed(list_checkpoints(folder)):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file: skip it, keep it for inspection
            log.warning("checkpoint %s cannot be loaded (%s); trying an older one", path, exc)
            continue
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            return payload
        log.warning("checkpoint %s is not a TrainDesk checkpoint; skipped", path)
    return None


def latest_step(folder: Path) -> int | None:
    found = list_checkpoints(folder)
    return found[-1][0] if found else None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
