"""The runs table's comparing columns as the user chose them, kept beside settings.toml.

``table.json`` in the app's config folder holds a :class:`~desktop_app.compare.columns.
ComparePrefs`: the metrics compared, best-low or best-high overrides, columns added and columns
hidden. Loading never fails (a missing or bad file gives the defaults); saving is atomic and
private (0600), like the settings.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from desktop_app.compare.columns import ComparePrefs
from desktop_app.settings.model import settings_path
from trainer.paths import make_private_dir, write_private_text

log = logging.getLogger(__name__)

PREFS_NAME = "table.json"


def prefs_path() -> Path:
    """``table.json`` next to the settings file."""
    return settings_path().with_name(PREFS_NAME)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str) and v)


def load_prefs(path: Path | None = None) -> ComparePrefs:
    """The saved choices; the defaults when there are none or they cannot be read."""
    path = prefs_path() if path is None else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ComparePrefs()
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s): the runs table shows its default columns", path, exc)
        return ComparePrefs()
    if not isinstance(data, dict):
        return ComparePrefs()
    directions = data.get("directions")
    return ComparePrefs(
        metrics=_strings(data.get("metrics")),
        directions={
            k: v
            for k, v in (directions if isinstance(directions, dict) else {}).items()
            if isinstance(k, str) and v in ("min", "max")
        },
        shown=_strings(data.get("shown")),
        hidden=_strings(data.get("hidden")),
    )


def save_prefs(prefs: ComparePrefs, path: Path | None = None) -> Path:
    """Write ``prefs`` atomically to a private file; returns the path."""
    path = prefs_path() if path is None else path
    data = {
        "metrics": list(prefs.metrics),
        "directions": dict(prefs.directions),
        "shown": list(prefs.shown),
        "hidden": list(prefs.hidden),
    }
    make_private_dir(path.parent)
    write_private_text(path, json.dumps(data, indent=1) + "\n")
    return path
