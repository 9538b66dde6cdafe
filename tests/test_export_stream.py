"""trainer export streams: the same CSV and JSON as a whole read, in constant memory."""

from __future__ import annotations

import io
import json
import math
import tracemalloc
from pathlib import Path

import pytest

from trainer.export import read_series, stream_csv, stream_json, write_csv
from trainer.journal import stream
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths


def resumed_run(root: Path) -> Path:
    """Two keys, NaN and inf among the values, and a second attempt that redoes steps."""
    paths = RunPaths(root / "r").create()
    w = JournalWriter.create(
        paths.journal, run_id="r", name="r", entry="spirals", kind="recipe", config={},
        max_steps=None,
    )  # fmt: skip
    for step in range(1, 2001):
        value = math.inf if step == 7 else 1.0 / step
        w.log_scalars({"loss": value, "acc": step / 2000}, step)
    w.close()
    w2 = JournalWriter.open_next_attempt(paths.journal, resume_step=1500)
    for step in range(1501, 2301):
        w2.log_scalars({"loss": -float(step)}, step)
    w2.close()
    return paths.root


@pytest.mark.parametrize("all_attempts", [False, True])
def test_streamed_csv_is_the_whole_read_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, all_attempts: bool
) -> None:
    folder = resumed_run(tmp_path)
    monkeypatch.setattr(stream, "CHUNK", 333)  # many chunks, one not full
    whole = io.StringIO()
    series = read_series(folder, all_attempts=all_attempts)
    write_csv(whole, [("r", series)], run_column=False)
    streamed = io.StringIO()
    with JournalReader(folder) as reader:
        count = stream_csv(streamed, reader, reader.keys(), all_attempts=all_attempts)
    assert streamed.getvalue() == whole.getvalue()
    assert count == sum(len(s) for s in series.values())


def test_streamed_json_has_the_whole_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = resumed_run(tmp_path)
    monkeypatch.setattr(stream, "CHUNK", 500)
    out = io.StringIO()
    with JournalReader(folder) as reader:
        keys = reader.keys()
        count = stream_json(out, reader, keys, run={"name": "r"}, events=[{"kind": "x"}])
        whole = {k: reader.series(k) for k in keys}
    doc = json.loads(out.getvalue())
    assert doc["run"] == {"name": "r"} and doc["events"] == [{"kind": "x"}]
    assert count == sum(len(s) for s in whole.values())
    for key, s in whole.items():
        got = doc["metrics"][key]
        assert got["steps"] == s.steps.tolist()
        assert got["values"] == s.values.tolist()  # inf read back as inf
        assert got["wall_times"] == s.walls.tolist()
        assert got["attempts"] == s.attempts.tolist()


def test_export_memory_does_not_grow_with_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = RunPaths(tmp_path / "long").create()
    w = JournalWriter.create(
        paths.journal, run_id="l", name="long", entry="spirals", kind="recipe", config={},
        max_steps=None,
    )  # fmt: skip
    n = 100_000
    for step in range(n):
        w.log_scalars({"loss": 1.0 / (step + 1)}, step)
    w.close()
    monkeypatch.setattr(stream, "CHUNK", 5_000)

    class Sink(io.TextIOBase):
        def write(self, text: str) -> int:
            return len(text)

    peaks = []
    with JournalReader(paths.root) as reader:
        for write in (
            lambda fh: stream_csv(fh, reader, ["loss"]),
            lambda fh: stream_json(fh, reader, ["loss"], run={}, events=[]),
        ):
            tracemalloc.start()
            assert write(Sink()) == n
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        tracemalloc.start()
        whole = reader.series("loss")
        whole_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(whole) == n
    # A chunk of 5,000 points at a time, not the run's 100,000 (the whole read's arrays alone
    # take about 6x what the export's peak is).
    assert max(peaks) < whole_peak / 3, (peaks, whole_peak)
