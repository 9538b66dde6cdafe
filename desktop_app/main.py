"""The desktop app's entry point (``traindesk``, ``python -m desktop_app``).

One asyncio loop runs on the Qt event loop (qasync). The app ends in a fixed order: the window
closes, its timers stop, the worker thread finishes and the journal readers close, then our
tasks are cancelled and awaited, and only then does the loop end.

SIGTERM, SIGINT and SIGHUP (and a logout's commitDataRequest) close the window the same way,
without asking: the live runs it started are stopped with a checkpoint or left running, as the
"on quit" setting says; a second signal kills them at once. If Qt quits under us anyway
(``aboutToQuit`` with the loop already gone), the runs are asked to stop (or not) and let go.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import qasync
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from desktop_app.app_log import AppLog
from desktop_app.error_hooks import ErrorHooks
from desktop_app.main_window import DOCKS, MainWindow
from desktop_app.probe import Probe
from desktop_app.quit_signals import QuitSignals
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.settings.model import AppSettings, load_settings
from desktop_app.settings.theme import apply_theme
from trainer.errors import TrainDeskError
from trainer.paths import runs_dir
from trainer.resources.gpus import ENV_SIMULATED
from trainer.runs import resolve_run
from trainer.settings import FIRST_PAINT_FILE, HOME
from trainer.version import __version__

log = logging.getLogger("desktop_app")

#: Set to a file path to have the app write the time of its first paint there (bench/).
FIRST_PAINT_ENV = FIRST_PAINT_FILE.name
#: Longest wait for the first curve before ``--screenshot`` grabs the window anyway.
SCREENSHOT_WAIT_S = 1.5
#: With --quit-after, the screenshot is taken this long before the app closes.
SCREENSHOT_BEFORE_QUIT_S = 0.5
#: Time for the axes to settle on the new data before the grab.
SCREENSHOT_SETTLE_S = 0.2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="traindesk", description="TrainDesk: watch your training runs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--runs-dir", metavar="D", help="the runs directory to show")
    parser.add_argument(
        "--open", metavar="RUN", action="append", default=[],
        help="show and select a run (id, name or run folder path); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--screenshot", metavar="FILE", help="save a PNG of the window once the first data shows"
    )
    parser.add_argument(
        "--quit-after", metavar="SECONDS", type=float, help="close the app after SECONDS"
    )
    parser.add_argument(
        "--launch", metavar="RECIPE", action="append", default=[],
        help="start a run of RECIPE (or a script.py) at once; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
        help="a config value for the --launch runs (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--name", metavar="N", action="append", default=[],
        help="the name of the --launch run (repeatable: the n-th names the n-th run)",
    )  # fmt: skip
    parser.add_argument(
        "--dump-state", metavar="FILE",
        help="when the app ends, write what its window showed (the runs, the status bar) as JSON",
    )  # fmt: skip
    parser.add_argument(
        "--simulate-gpus", metavar="SPEC",
        help="show simulated GPUs, e.g. 2x80GiB (for demos and tests; marked 'simulated')",
    )  # fmt: skip
    parser.add_argument(
        "--show-dock", metavar="NAME", action="append", default=[], choices=DOCKS,
        help=f"show and raise a dock ({', '.join(DOCKS)}); repeatable",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the app; returns the process exit code."""
    multiprocessing.freeze_support()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The console stays at INFO; the app's log file may record more (its level setting).
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and handler.level == logging.NOTSET:
            handler.setLevel(logging.INFO)
    problem = display_problem()
    if problem:
        print(f"traindesk: {problem}", file=sys.stderr, flush=True)
        return EXIT_NO_DISPLAY
    app = QApplication.instance() or make_application()
    app.setApplicationName("TrainDesk")
    if args.simulate_gpus:
        os.environ[ENV_SIMULATED] = args.simulate_gpus
    # The app ends when run_app returns, not when Qt sees the last window go.
    if isinstance(app, QApplication):
        app.setQuitOnLastWindowClosed(False)
    result: int = qasync.run(run_app(args))
    return result


#: traindesk's exit code when it cannot open a window (no display, no usable Qt platform).
EXIT_NO_DISPLAY = 2
_HEADLESS_HINT = (
    "start it in a desktop session (or over `ssh -X`), or set QT_QPA_PLATFORM=offscreen; "
    "to train without a display use `trainer run` (see `trainer --help`)"
)


def display_problem(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ
) -> str | None:
    """Why no window can be shown here (None: a display seems to be there).

    On Linux without ``QT_QPA_PLATFORM`` naming a platform that needs no display, an X11 or
    Wayland session must be named by ``DISPLAY`` or ``WAYLAND_DISPLAY``; Qt would otherwise
    abort the process (SIGABRT) while starting.
    """
    if not platform.startswith("linux"):
        return None
    qpa = environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if qpa and not qpa.startswith(("xcb", "wayland")):
        return None  # offscreen, minimal, vnc, eglfs, linuxfb: no display server needed
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    unset = "DISPLAY and WAYLAND_DISPLAY are unset"
    return f"no display to open a window on ({unset}): {_HEADLESS_HINT}"


def make_application() -> QApplication:
    """The QApplication; if Qt cannot start a platform (a display that does not answer, a
    missing xcb library), one line and exit code :data:`EXIT_NO_DISPLAY` instead of Qt's
    abort (SIGABRT)."""
    said: list[str] = []

    def on_qt_message(mode: QtMsgType, _context: object, message: str) -> None:
        if mode == QtMsgType.QtFatalMsg:
            cause = (said[-1] if said else message).splitlines()[0]
            print(f"traindesk: cannot open a window ({cause}): {_HEADLESS_HINT}",
                  file=sys.stderr, flush=True)  # fmt: skip
            os._exit(EXIT_NO_DISPLAY)  # Qt aborts once this returns
        said.append(message)
        print(message, file=sys.stderr)

    previous = qInstallMessageHandler(on_qt_message)
    try:
        return QApplication([sys.argv[0]])
    finally:
        qInstallMessageHandler(previous)


async def run_app(args: argparse.Namespace) -> int:
    """Show the window and wait until it is closed (by the user or ``--quit-after``)."""
    loop = asyncio.get_running_loop()
    hooks = ErrorHooks()
    hooks.install(loop)
    # Collect garbage on the GUI thread only, on a timer: a collection that starts on a worker
    # thread could destroy Qt objects held in reference cycles there, and Qt would then wait
    # for the GUI thread, which waits for the GIL.
    collector = GarbageCollector(interval=1.0)
    settings, warnings = load_settings()
    app_log = AppLog()
    log_warning = app_log.install(settings.log_level)
    if log_warning:
        warnings = [*warnings, log_warning]
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, settings)  # before any plot exists: plots take the theme's colours
    window = MainWindow(
        choose_runs_dir(args.runs_dir, settings), settings=settings,
        create_runs_dir=not args.runs_dir,  # a --runs-dir typo is said, not created
    )  # fmt: skip
    probe = Probe.from_env(window.charts)  # None unless $TRAINDESK_PROBE_FILE (bench/)
    hooks.show = window.show_error
    window.settingsChanged.connect(lambda new: app_log.set_level(new.log_level))
    if isinstance(app, QApplication):
        window.settingsChanged.connect(lambda new: restyle(window, app, new))
    for name in args.show_dock:
        window.show_dock(name)
    for warning in warnings:
        window.show_error(warning)
    closed: asyncio.Future[None] = loop.create_future()
    window.closed.connect(lambda: None if closed.done() else closed.set_result(None))

    tasks: set[asyncio.Task[Any]] = set()  # strong references until the app ends

    def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = loop.create_task(coro, name=name)
        tasks.add(task)
        hooks.watch(task)
        return task

    signals_seen: list[str] = []

    def on_quit_signal(name: str) -> None:
        signals_seen.append(name)
        if len(signals_seen) == 1:
            spawn(window.close_unattended(f"{name} received"), "close-on-signal")
        else:  # asked again: do not wait for safe points
            log.warning("%s received again: killing the live runs now", name)
            window.supervisor.kill_all()

    quit_signals = QuitSignals(loop, on_quit_signal)
    if isinstance(app, QGuiApplication):
        app.commitDataRequest.connect(lambda _manager: on_quit_signal("logout"))
        app.aboutToQuit.connect(lambda: quit_under_us(window))

    window.show()
    first_paint = FIRST_PAINT_FILE.raw()
    if first_paint:
        loop.call_soon(record_first_frame, window, Path(first_paint))
    for i, spec in enumerate(args.open):
        open_run(window, spec, add=i > 0)  # every run named is shown, selected together
    for i, target in enumerate(args.launch):
        if target.endswith(".py"):
            target = str(Path(target).expanduser().resolve())
        name = args.name[i] if i < len(args.name) else None
        window.launch(LaunchSpec(target, list(args.overrides), name=name))
    shot: asyncio.Task[Any] | None = None
    if args.screenshot:
        # With --quit-after, the picture is taken just before the app closes, so a run it
        # launched has had time to draw its curves.
        at = max(0.0, args.quit_after - SCREENSHOT_BEFORE_QUIT_S) if args.quit_after else None
        shot = spawn(take_screenshot(window, Path(args.screenshot), at), "screenshot")
    if args.quit_after is not None:
        spawn(quit_after(window, args.quit_after, shot), "quit-after")
    try:
        await closed
    finally:
        quit_signals.remove()
        if probe is not None:
            probe.finish()
        if args.dump_state:
            dump_state(window, Path(args.dump_state))
        window.shutdown()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hooks.uninstall()
        collector.timer.stop()
        gc.enable()
        app_log.close()
    saved = shot is None or (shot.done() and not shot.cancelled() and shot.exception() is None)
    return 0 if saved and hooks.count == 0 else 1


def restyle(window: MainWindow, app: QApplication, settings: AppSettings) -> None:
    """Apply ``settings``' theme now: the palette, the charts and the docks' plots."""
    theme = apply_theme(app, settings)
    window.charts.set_theme(theme)
    window.config_view.set_theme(theme)
    window.system.set_theme(theme)
    window.health.set_theme(theme)


def quit_under_us(window: MainWindow) -> None:
    """``aboutToQuit``: the loop is gone (a logout that did not wait, a ``quit()`` from Qt),
    or the app ended normally (nothing left to do). Synchronous: ask the live runs to stop,
    unless the setting leaves them running, then let them go; stop the window's work."""
    window.supervisor.abandon(stop_children=window.settings.on_quit != "leave")
    window.shutdown()


def dump_state(window: MainWindow, path: Path) -> None:
    """Write the runs the window lists (as shown) and its status bar to ``path`` as JSON."""
    model = window.table_model
    runs = []
    for row in range(model.rowCount()):
        run = model.run_at(row)
        if run is not None:
            runs.append({"name": run.name, "path": run.path, "status": run.status,
                         "shown": model.status_text(run), "step": run.step,
                         "attempt": run.attempt})  # fmt: skip
    state = {
        "runs": runs,
        "status_bar": window.statusBar().currentMessage(),
        "error": window.error_label.toolTip(),
        "live_children": window.supervisor.running(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1), encoding="utf-8")


def choose_runs_dir(override: str | None, settings: AppSettings) -> Path:
    """``--runs-dir``, else ``$TRAINDESK_HOME``, else the saved setting, else the default."""
    if override or HOME.raw() or not settings.runs_dir:
        return runs_dir(override)
    return Path(settings.runs_dir).expanduser()


def record_first_frame(window: MainWindow, path: Path) -> None:
    """Render the window once and write the wall time to ``path`` (for bench/app_start.py)."""
    window.grab()
    path.write_text(repr(time.time()), encoding="utf-8")


def open_run(window: MainWindow, spec: str, *, add: bool = False) -> None:
    """Select ``spec`` (an id, a name or a folder); an unknown one is shown as an error.
    ``add``: along with the runs selected now."""
    try:
        folder = resolve_run(spec, window.runs.runs_dir).root
    except TrainDeskError as exc:
        window.show_error(str(exc))
        return
    window.open_folder(folder, add=add)


async def take_screenshot(window: MainWindow, path: Path, at: float | None = None) -> None:
    """Save a PNG of ``window`` ``at`` seconds after the start, or once its charts have drawn
    data (or after a short wait)."""
    if at is not None:
        await asyncio.sleep(at)
    elif not window.charts.has_drawn:
        drawn: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_drawn() -> None:
            if not drawn.done():
                drawn.set_result(None)

        window.charts.firstDataDrawn.connect(on_drawn)
        try:
            await asyncio.wait_for(drawn, SCREENSHOT_WAIT_S)
        except TimeoutError:
            pass
        finally:
            window.charts.firstDataDrawn.disconnect(on_drawn)
    await asyncio.sleep(SCREENSHOT_SETTLE_S)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not save the screenshot to {path}")
    logging.getLogger("desktop_app").info("screenshot saved to %s", path)


async def quit_after(window: MainWindow, seconds: float, first: asyncio.Task[Any] | None) -> None:
    """Close ``window`` after ``seconds`` (after the pending screenshot, if any), leaving
    runs it started training."""
    await asyncio.sleep(seconds)
    if first is not None:
        await asyncio.wait([first])
    await window.close_leaving_runs()  # runs go on without the app; it re-attaches them


if __name__ == "__main__":
    sys.exit(main())
