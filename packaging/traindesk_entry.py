"""The bundle's one executable: ``traindesk`` is the desktop app, ``traindesk trainer ...`` the
headless trainer.

The app launches its runs as ``[sys.executable, "trainer", ...]`` when frozen
(``trainer.supervision.process.trainer_command``), and so does ``trainer run --max-restarts``
for its attempts: both land here. PyInstaller builds this script (``packaging/traindesk.spec``);
from a checkout it also runs as ``python packaging/traindesk_entry.py [trainer] ...``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import TextIO

NO_DISPLAY_MESSAGE = (
    "traindesk: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so the desktop app "
    "cannot start. Use the headless trainer from the same bundle, e.g. "
    "`{exe} trainer run spirals`, or set QT_QPA_PLATFORM=offscreen."
)


def ensure_streams() -> None:
    """Give a windowed build (no console: ``sys.stdout``/``sys.stderr`` are None) somewhere to
    write, before anything prints or logs: ``console.log`` in the user log folder (beside the
    app's ``app.jsonl``; ``$TRAINDESK_LOG_DIR`` if set), else the null device."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    # Open for the life of the process, never closed.
    sink = _log_file() or open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = sink
    if sys.stderr is None:
        sys.stderr = sink


def _log_file() -> TextIO | None:
    try:
        import platformdirs

        folder = os.environ.get("TRAINDESK_LOG_DIR") or platformdirs.user_log_dir(
            "traindesk", appauthor=False
        )
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "console.log")
        return open(path, "a", encoding="utf-8", buffering=1)
    except OSError:
        return None


def can_show_window() -> bool:
    """True where Qt can open a window: macOS, Windows, X11/Wayland, or a QT_QPA_PLATFORM set
    by hand (offscreen for tests and screenshots)."""
    from desktop_app.launch import has_display

    return bool(os.environ.get("QT_QPA_PLATFORM")) or has_display()


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch on the first argument: ``trainer`` -> the trainer's CLI, else the app."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["trainer"]:
        from trainer.cli.main import main as trainer_main

        return trainer_main(args[1:])
    if not can_show_window():
        print(NO_DISPLAY_MESSAGE.format(exe=sys.argv[0]), file=sys.stderr)
        return 2
    from desktop_app.main import main as app_main

    return app_main(args)


if __name__ == "__main__":
    # First of all: in a child that multiprocessing started (spawn, forkserver, the resource
    # tracker), this runs the child's work and exits, instead of starting another app.
    multiprocessing.freeze_support()
    ensure_streams()
    sys.exit(main())
