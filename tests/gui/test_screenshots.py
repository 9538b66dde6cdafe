"""The main window as a person sees it: 1280x800 and 1920x1080, light and dark, with a run of
15 metrics and a small learning-rate sweep, all selected.

Each test grabs the window, writes the picture to ``$TRAINDESK_SCREENSHOTS`` (default
``build/screenshots``, ignored by git) and asserts what the picture shows: how many charts
are whole on screen, the charts' background, and that a run's swatch in the table has the
colour of its line in the charts (sampled from the grabbed image).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.charts.panel import ChartsPanel
from desktop_app.charts.plot import MetricPlot
from desktop_app.charts.readout import SMALL_READOUT
from desktop_app.main import restyle
from desktop_app.main_window import MainWindow
from desktop_app.runs_table import NAME_COLUMN
from desktop_app.settings.model import AppSettings
from desktop_app.settings.theme import apply_theme, palette_is_dark
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths
from trainer.settings import SCREENSHOTS

pytestmark = pytest.mark.gui

TIMEOUT_MS = 20_000
ROOT = Path(__file__).resolve().parents[2]
STEPS = 400
#: The 15 metrics of the big run: losses, accuracies, a schedule, counters, timings.
BIG_KEYS = (
    "train/loss", "train/accuracy", "train/lr", "train/grad_norm", "train/epoch",
    "val/loss", "val/accuracy", "val/perplexity", "val/f1", "val/bleu",
    "perf/steps_per_s", "perf/samples_per_s", "perf/gpu_mem_gb", "perf/data_time_s",
    "perf/step_time_s",
)  # fmt: skip
SWEEP = (3e-4, 1e-3, 3e-3)
MIN_WHOLE = {(1280, 800): 4, (1920, 1080): 6}


def screenshot_dir() -> Path:
    folder = Path(SCREENSHOTS.get() or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _curve(key: str, steps: np.ndarray, lr: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = steps / STEPS
    noise = rng.normal(0.0, 0.04, len(steps))
    if key.endswith("lr"):
        warm = np.minimum(1.0, steps / 40)
        return lr * warm * np.where(steps < 250, 1.0, 0.1)
    if key.endswith("epoch"):
        return np.floor(steps / 100)
    if "loss" in key or "perplexity" in key:
        base = 2.5 * np.exp(-t * (3 + 1000 * lr)) + 0.3
        return base * (np.exp(base) if "perplexity" in key else 1.0) + noise
    if "accuracy" in key or "f1" in key or "bleu" in key:
        return 1.0 - 0.9 * np.exp(-t * (2 + 800 * lr)) + noise / 2
    if "grad_norm" in key:
        values = 1.5 * np.exp(-t) + np.abs(noise) * 5
        values[len(values) // 2] = 40.0  # one spike
        return values
    return 50 + 10 * np.sin(t * 6) + noise * 50


def _write_run(runs_dir: Path, name: str, keys: tuple[str, ...], lr: float, seed: int) -> None:
    paths = RunPaths(runs_dir / name).create()
    writer = JournalWriter.create(
        paths.journal, run_id=name, name=name, entry="lm", kind="recipe",
        config={"optim": {"lr": lr}, "seed": seed, "model": {"width": 256}}, max_steps=STEPS,
    )  # fmt: skip
    try:
        writer.set_status("running")
        steps = np.arange(STEPS)
        curves = {key: _curve(key, steps, lr, seed) for key in keys}
        for i, step in enumerate(steps):
            writer.log_scalars({key: float(values[i]) for key, values in curves.items()}, int(step))
        writer.set_status("finished", exit_reason="finished", step=STEPS - 1)
    finally:
        writer.close()


@pytest.fixture
def sweep_dir(runs_dir: Path) -> Path:
    """One run of 15 metrics, three sweep runs with the usual few."""
    _write_run(runs_dir, "lm-big", BIG_KEYS, 1e-3, 0)
    few = ("train/loss", "train/lr", "val/loss", "val/accuracy", "perf/steps_per_s")
    for i, lr in enumerate(SWEEP):
        _write_run(runs_dir, f"sweep-lr{lr:g}", few, lr, i + 1)
    return runs_dir


@pytest.fixture(params=["light", "dark"])
def theme(request: pytest.FixtureRequest, qapp: QApplication) -> Iterator[str]:
    """The app in a light or dark theme; the app's style, palette and plot defaults as they
    were afterwards."""
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    options = {k: pg.getConfigOption(k) for k in ("background", "foreground")}
    apply_theme(qapp, AppSettings(theme=request.param))
    yield str(request.param)
    hints = qapp.styleHints()
    if hasattr(hints, "unsetColorScheme"):
        hints.unsetColorScheme()
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setProperty("traindeskPalette", False)
    pg.setConfigOptions(**options)


@pytest.fixture
def window(qtbot: QtBot, sweep_dir: Path, theme: str) -> Iterator[MainWindow]:
    win = MainWindow(sweep_dir, settings=AppSettings(theme=theme))  # type: ignore[arg-type]
    qtbot.addWidget(win)
    yield win
    win.close()


def show_all_runs(qtbot: QtBot, win: MainWindow, size: tuple[int, int]) -> None:
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.table_model.rowCount() == 1 + len(SWEEP), timeout=TIMEOUT_MS)
    win.table.selectAll()
    panel = win.charts
    qtbot.waitUntil(lambda: len(panel.plots) == len(BIG_KEYS), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: all_drawn(panel), timeout=TIMEOUT_MS)


def all_drawn(panel: ChartsPanel) -> bool:
    """Every run's line in every chart on screen holds all its points, layout settled."""
    if panel.charts.height() < panel.charts.minimumSizeHint().height():
        return False  # the grid is not laid out yet
    if panel.scroll_area.horizontalScrollBar().maximum() > 0:
        return False  # nor fitted to the width the vertical scroll bar leaves
    for plot in whole_charts(panel):
        for folder in plot.runs:
            raw = plot.items_of(folder)[0]
            if raw.xData is None or len(raw.xData) < STEPS // 2:
                return False
        if plot.dirty:
            return False
    return bool(whole_charts(panel))


def whole_charts(panel: ChartsPanel) -> list[MetricPlot]:
    """The charts wholly inside the charts' viewport (and so in the window)."""
    viewport = panel.scroll_area.viewport()
    window = panel.window()
    out = []
    for plot in panel.plots.values():
        if not plot.isVisible():
            continue
        rect = QRect(plot.mapTo(viewport, QPoint(0, 0)), plot.size())
        in_window = QRect(plot.mapTo(window, QPoint(0, 0)), plot.size())
        if viewport.rect().contains(rect) and window.rect().contains(in_window):
            out.append(plot)
    return out


def grab(win: MainWindow, name: str) -> QImage:
    image = win.grab().toImage()
    path = screenshot_dir() / f"{name}.png"
    assert image.save(str(path)), f"cannot write {path}"
    return image


def pixel_at(image: QImage, widget: QWidget, win: QWidget, point: QPoint) -> QColor:
    scale = image.devicePixelRatio()
    at = widget.mapTo(win, point)
    return image.pixelColor(int(at.x() * scale), int(at.y() * scale))


def line_colours(image: QImage, plot: MetricPlot, win: QWidget) -> set[str]:
    """The colours of the pixels of ``plot``'s plot area, as ``#rrggbb``."""
    rect = plot.vb.sceneBoundingRect().toRect()
    found = set()
    for y in range(rect.top() + 2, rect.bottom() - 2, 2):
        for x in range(rect.left() + 2, rect.right() - 2, 2):
            found.add(pixel_at(image, plot.viewport(), win, QPoint(x, y)).name())
    return found


def swatch_colour(win: MainWindow, run_name: str) -> str:
    model = win.table_model
    for row in range(model.rowCount()):
        if model.index(row, NAME_COLUMN).data() == run_name:
            icon = model.index(row, NAME_COLUMN).data(Qt.ItemDataRole.DecorationRole)
            pixmap = icon.pixmap(16, 16).toImage()
            return str(pixmap.pixelColor(pixmap.width() // 2, pixmap.height() // 2).name())
    raise AssertionError(f"no row for {run_name}")


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def test_the_window_shows_whole_charts_in_the_theme(
    qtbot: QtBot, window: MainWindow, theme: str, size: tuple[int, int]
) -> None:
    show_all_runs(qtbot, window, size)
    panel = window.charts
    image = grab(window, f"main-{size[0]}x{size[1]}-{theme}")

    whole = whole_charts(panel)
    assert len(whole) >= MIN_WHOLE[size], [p.key for p in whole]

    # The charts' backgrounds follow the theme: sampled in a corner of each plot area.
    for plot in whole:
        corner = plot.vb.sceneBoundingRect().toRect().topLeft() + QPoint(3, 3)
        lightness = pixel_at(image, plot.viewport(), window, corner).lightness()
        assert (lightness < 80) if theme == "dark" else (lightness > 200), (plot.key, lightness)

    # A run's table swatch has its line's colour, in the picture.
    loss = panel.plots["train/loss"]
    assert loss in whole
    drawn = line_colours(image, loss, window)
    for folder, name in panel.runs:
        swatch = swatch_colour(window, name)
        assert swatch == panel.colors[folder]
        assert swatch in drawn, (name, swatch)


def test_grouped_sweep(qtbot: QtBot, window: MainWindow, theme: str) -> None:
    """The sweep grouped by its learning rate: one mean line and band per value."""
    show_all_runs(qtbot, window, (1280, 800))
    panel = window.charts
    panel.set_group_by("optim.lr")
    assert [spec.label for spec in panel.group_specs] == [
        "optim.lr=0.0003",
        "optim.lr=0.001",
        "optim.lr=0.003",
    ]
    loss = panel.plots["train/loss"]
    qtbot.waitUntil(lambda: loss.bands.specs == list(panel.group_specs), timeout=TIMEOUT_MS)
    mean, _band = loss.bands.items_of("optim.lr=0.001")
    qtbot.waitUntil(lambda: mean.xData is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not loss.dirty, timeout=TIMEOUT_MS)
    assert "(2 runs)" in panel.legend.text()  # lm-big and sweep-lr0.001 share lr=1e-3
    image = grab(window, f"grouped-1280x800-{theme}")
    drawn = line_colours(image, loss, window)
    assert all(spec.color in drawn for spec in panel.group_specs)


def test_a_theme_chosen_in_the_settings_applies_at_once(
    qtbot: QtBot, window: MainWindow, theme: str, qapp: QApplication
) -> None:
    show_all_runs(qtbot, window, (1280, 800))
    other = "light" if theme == "dark" else "dark"
    restyle(window, qapp, AppSettings(theme=other))  # type: ignore[arg-type]
    window.charts.redraw()
    dark = other == "dark"
    qtbot.waitUntil(lambda: palette_is_dark(window.table.palette()) == dark, timeout=TIMEOUT_MS)
    image = grab(window, f"switched-to-{other}")
    plot = window.charts.plots["train/loss"]
    corner = plot.vb.sceneBoundingRect().toRect().topLeft() + QPoint(3, 3)
    lightness = pixel_at(image, plot.viewport(), window, corner).lightness()
    assert (lightness < 80) if other == "dark" else (lightness > 200), lightness


def test_the_crosshair_on_every_chart(qtbot: QtBot, window: MainWindow, theme: str) -> None:
    show_all_runs(qtbot, window, (1280, 800))
    panel = window.charts
    loss = panel.plots["train/loss"]
    loss.scene().sigMouseMoved.emit(loss.vb.mapViewToScene(QPointF(150.0, 1.0)))
    whole = whole_charts(panel)
    qtbot.waitUntil(lambda: all(p.crosshair.isVisible() for p in whole), timeout=TIMEOUT_MS)
    grab(window, f"crosshair-1280x800-{theme}")
    text = loss.readout.textItem.toPlainText()
    assert "step 150" in text and all(name in text for _folder, name in panel.runs), text
    for plot in whole:
        # Every chart: the line at the step and a dot on each of its curves there; a readout
        # on the others only while it is small (four runs' would cover their curves).
        assert plot.crosshair.value() == pytest.approx(150.0)
        assert plot.value_dots.isVisible() and len(plot.value_dots.data) == len(plot.runs)
        assert plot.readout.isVisible() == (plot is loss or len(plot.runs) <= SMALL_READOUT)
        if plot.readout.isVisible():
            text = plot.readout.textItem.toPlainText()
            assert "step 150" in text and "lm-big" in text, (plot.key, text)


DOZEN = 12


@pytest.fixture
def dozen_window(qtbot: QtBot, runs_dir: Path, theme: str) -> Iterator[MainWindow]:
    """A sweep of a dozen runs (learning rate x seed), in the theme."""
    few = ("train/loss", "train/lr", "val/loss", "val/accuracy", "perf/steps_per_s")
    for n in range(DOZEN):
        lr = (3e-4, 1e-3, 3e-3, 1e-2)[n % 4]
        _write_run(runs_dir, f"dozen-lr{lr:g}-seed{n // 4}", few, lr, n)
    win = MainWindow(runs_dir, settings=AppSettings(theme=theme))  # type: ignore[arg-type]
    qtbot.addWidget(win)
    yield win
    win.close()


def visible_rows(win: MainWindow) -> int:
    """The runs table's rows wholly in sight."""
    viewport = win.table.viewport().rect()
    model = win.table.model()
    return sum(
        viewport.contains(win.table.visualRect(model.index(row, 0)))
        for row in range(model.rowCount())
    )


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def test_a_dozen_runs_in_the_table_and_the_charts(
    qtbot: QtBot, dozen_window: MainWindow, theme: str, size: tuple[int, int]
) -> None:
    """A sweep of 12: the table lists more than a handful (all of them on a big screen) and the
    charts keep their whole charts, their legend wrapping between run names only."""
    win = dozen_window
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.table_model.rowCount() == DOZEN, timeout=TIMEOUT_MS)
    win.table.selectAll()
    panel = win.charts
    qtbot.waitUntil(lambda: len(panel.plots) == 5, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(panel.plots["train/loss"].runs) == DOZEN, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: all_drawn(panel), timeout=TIMEOUT_MS)
    grab(win, f"dozen-{size[0]}x{size[1]}-{theme}")
    assert visible_rows(win) >= (DOZEN if size == (1920, 1080) else 5)
    # Two rows of the groups' charts: train/* and val/* (two each), whole.
    assert len(whole_charts(panel)) >= 4, [p.key for p in whole_charts(panel)]
    assert panel.legend.height() <= 2 * panel.legend.fontMetrics().lineSpacing() + 8
    assert panel.width() <= win.width()  # the legend never widens the window

    # The crosshair over a dozen curves: the hovered chart's readout stays inside its plot,
    # the values nearest the mouse listed, highest first; the other charts show dots only.
    loss = panel.plots["train/loss"]
    loss.scene().sigMouseMoved.emit(loss.vb.mapViewToScene(QPointF(150.0, 1.0)))
    qtbot.waitUntil(lambda: loss.readout.isVisible(), timeout=TIMEOUT_MS)
    grab(win, f"dozen-crosshair-{size[0]}x{size[1]}-{theme}")
    box = loss.vb.boundingRect()
    readout = loss.readout.mapRectToParent(loss.readout.boundingRect())
    assert box.contains(readout), (box, readout)
    # A scroll bar that comes or goes as the last deltas land re-lays the grid out: wait.
    qtbot.waitUntil(lambda: len(whole_charts(panel)) >= 4, timeout=TIMEOUT_MS)
    others = [p for p in whole_charts(panel) if p is not loss]
    assert others and all(not p.readout.isVisible() for p in others)
    assert all(len(p.value_dots.data) == DOZEN for p in others)
