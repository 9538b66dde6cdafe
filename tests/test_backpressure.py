"""Back-pressure: flat-out logging loses nothing, memory stays bounded, finish writes all."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import ROOT, trainer_env
from trainer.journal.reader import JournalReader

FLAT_OUT = ROOT / "bench" / "scripts" / "flat_out.py"  # the benchmark's own program


def test_flat_out_logging_loses_nothing_with_a_small_buffer(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(FLAT_OUT), str(runs), "4", "10"],
        capture_output=True, text=True, timeout=300,
        env=trainer_env(TRAINDESK_LOG_BUFFER="2000"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["max_queued"] == 2000
    # The writer (about 1.5 µs a point) cannot keep up with 10 keys per step flat out: log()
    # must have waited, and said so.
    assert report["throttled_s"] > 0
    steps = report["steps"]
    folder = runs / "flat"
    with JournalReader(folder) as reader:
        info = reader.run_info()
        assert info.status == "finished"
        assert info.step == steps
        for i in range(10):
            series = reader.series(f"k{i}")
            assert len(series.steps) == steps, f"k{i}: {len(series.steps)} of {steps}"
            # Each step keeps its own values although one dict was reused for every step.
            assert series.values[0] == pytest.approx(1 + i / 100)
            assert series.values[-1] == pytest.approx(steps + i / 100)
        throttled = [e for e in reader.events() if e.kind == "throttled"]
    assert throttled and "throttling training" in throttled[0].message
    lines = [json.loads(x) for x in (folder / "logs" / "trainer.jsonl").read_text().splitlines()]
    assert any("throttling training" in e["event"] and e["throttled_s"] > 0 for e in lines)
    # Bounded by the buffer: an unbounded queue grew by gigabytes in the same loop.
    assert report["peak_rss"] - report["start_rss"] < 150 * 2**20, report
    conn = sqlite3.connect(folder / "journal.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_log_copies_the_callers_values(tmp_path: Path) -> None:
    from trainer.api import create_run

    run = create_run(entry="t", kind="api", config={}, runs_root=tmp_path, name="copy")
    run.start()
    values = {"a": 0.0, "b": 0.0}
    for step in range(1, 51):
        values["a"], values["b"] = float(step), -float(step)
        run.log(values, step=step)
        assert run.last_metrics == values and run.last_metrics is not values
    values["a"] = 1e9  # changed after the last call: must not reach the journal
    run.finish()
    with JournalReader(run.paths.root) as reader:
        assert reader.series("a").values.tolist() == [float(s) for s in range(1, 51)]
        assert reader.series("b").values.tolist() == [-float(s) for s in range(1, 51)]


def test_close_waits_for_the_writer_however_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() has no give-up time: the database is closed only after the writer thread."""
    from trainer.journal import writer as writer_mod
    from trainer.journal.writer import JournalWriter

    monkeypatch.setattr(writer_mod, "CLOSE_PROGRESS_S", 0.2)

    path = tmp_path / "journal.sqlite"
    writer = JournalWriter.create(
        path, run_id="r", name="n", entry="e", kind="api", config={}, max_queued=1000,
    )  # fmt: skip
    lines: list[str] = []
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0.1, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock for a while
    for step in range(1, 400):
        writer.log_scalars({"x": float(step)}, step)
    release = threading.Timer(1.5, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        writer.close(progress=lines.append)
    finally:
        release.join()
        blocker.close()
    assert writer.error is None
    assert not writer._thread.is_alive()
    assert lines and "points left" in lines[0]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM scalar").fetchone()[0] == 399
    finally:
        conn.close()
