"""The benchmark probe: event-loop lag and display latency samples, written as JSON at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.charts.panel import ChartsPanel
from desktop_app.probe import PROBE_ENV, Probe
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter

pytestmark = pytest.mark.gui

MakeRun = Callable[..., JournalWriter]  # the make_run fixture (conftest.py)
TIMEOUT_MS = 10_000


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[ChartsPanel]:
    """A shown charts panel whose own reads are refused: the tests feed it batches."""
    io = BackgroundIO()
    io.close()
    widget = ChartsPanel(io)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def test_off_without_the_variable(panel: ChartsPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROBE_ENV, raising=False)
    assert Probe.from_env(panel) is None


def test_records_lag_and_latency_and_writes_them(
    qtbot: QtBot,
    panel: ChartsPanel,
    make_run: MakeRun,
    runs_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "probe" / "samples.json"
    monkeypatch.setenv(PROBE_ENV, str(out))
    probe = Probe.from_env(panel)
    assert probe is not None
    qtbot.waitUntil(lambda: len(probe.lag_ms) >= 5, timeout=TIMEOUT_MS)
    assert all(lag >= 0.0 for lag in probe.lag_ms)

    make_run("live", losses=[3.0, 2.0, 1.0])
    folder = runs_dir / "live"
    with JournalReader(folder) as reader:
        batch = reader.tail()
    panel.set_runs([(folder, "live")])
    panel.apply_batch(folder, batch)
    qtbot.waitUntil(lambda: len(probe.latency_ms) == 1, timeout=TIMEOUT_MS)
    newest = batch.points["train/loss"].walls[-1]
    assert 0.0 <= probe.latency_ms[0] <= (time.time() - newest) * 1000.0
    panel.set_smoothing("none")  # redraws the same points: no new sample
    panel.redraw()
    assert len(probe.latency_ms) == 1

    probe.finish()
    probe.finish()  # idempotent
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == {"lag_ms": probe.lag_ms, "latency_ms": probe.latency_ms}
    count = len(probe.lag_ms)
    qtbot.wait(100)
    assert len(probe.lag_ms) == count  # stopped
