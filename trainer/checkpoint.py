"""Atomic checkpoints: write to a temporary file, fsync, rename; keep the last K.

A checkpoint holds the caller's state (model, optimizer, scheduler, data position, ...), the
step, and the RNG states (torch, CUDA, Python), so that a resumed run repeats an uninterrupted
one exactly on the CPU. Loading uses ``torch.load(weights_only=True)``: a run folder that came
from elsewhere cannot execute code when opened or resumed.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

FORMAT = 1
_NAME_RE = re.compile(r"^ckpt-(\d{9,})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:09d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        match = _NAME_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)


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
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for _, old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


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
