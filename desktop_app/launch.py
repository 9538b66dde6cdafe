"""``make run``: the desktop app where there is a display, else a short headless recipe."""

from __future__ import annotations

import subprocess
import sys

from trainer.settings import DISPLAY, WAYLAND_DISPLAY

NO_DISPLAY_MESSAGE = (
    "No display found (DISPLAY is not set): running the 'spirals' recipe headless instead; "
    "start `traindesk` on a machine with a display to see the app."
)
HEADLESS_COMMAND = ("-m", "trainer", "run", "spirals", "--max-steps", "300")


def has_display() -> bool:
    """True where a window can be shown: macOS, Windows, or an X11/Wayland session."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(DISPLAY.raw() or WAYLAND_DISPLAY.raw())


def main() -> int:
    """Run the app, or the headless recipe; returns the exit code."""
    if has_display():
        from desktop_app.main import main as app_main

        return app_main([])
    print(NO_DISPLAY_MESSAGE, flush=True)
    return subprocess.call([sys.executable, *HEADLESS_COMMAND])


if __name__ == "__main__":
    sys.exit(main())
