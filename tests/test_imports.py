"""Imports: TensorBoard event files (checked against the real writer), CSV and JSON."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import cli
from trainer.errors import UsageError
from trainer.export import read_series
from trainer.imports.tabular import read_csv, read_json
from trainer.imports.tfevents import EventFileReader, event_files, read_dir
from trainer.imports.to_run import import_run

tensorboard = pytest.importorskip("torch.utils.tensorboard")


def write_tb(log_dir: Path, steps: int = 30) -> dict[str, dict[int, float]]:
    """Log with the real SummaryWriter; returns what was logged (as float32 values)."""
    writer = tensorboard.SummaryWriter(str(log_dir))
    expected: dict[str, dict[int, float]] = {"train/loss": {}, "lr": {}, "new/acc": {}}
    for step in range(1, steps + 1):
        loss, lr, acc = 1.0 / step, 0.1 * 0.9**step, step / steps
        writer.add_scalar("train/loss", loss, step)
        writer.add_scalar("lr", lr, step)
        writer.add_scalar("new/acc", acc, step, new_style=True)  # a tensor, not simple_value
        for key, value in (("train/loss", loss), ("lr", lr), ("new/acc", acc)):
            expected[key][step] = float(np.float32(value))
    writer.add_scalars("pair", {"a": 1.5, "b": 2.5}, 7)
    writer.close()
    expected["pair_a/pair"] = {7: 1.5}
    expected["pair_b/pair"] = {7: 2.5}
    return expected


def test_reader_gives_the_points_the_real_writer_wrote(tmp_path: Path) -> None:
    expected = write_tb(tmp_path / "tb")
    got: dict[str, dict[int, float]] = {}
    for event in read_dir(tmp_path / "tb"):
        got.setdefault(event.tag, {})[event.step] = event.value
        assert event.wall > 1e9
    assert got == expected


def test_a_growing_event_file_is_read_record_by_record(tmp_path: Path) -> None:
    write_tb(tmp_path / "tb", steps=5)
    source = event_files(tmp_path / "tb")[0]
    data = source.read_bytes()
    growing = tmp_path / "growing.tfevents"
    reader = EventFileReader(growing)
    growing.write_bytes(b"")
    assert reader.read_new() == []
    seen = []
    for cut in range(0, len(data) + 1, 7):  # arrives in odd-sized pieces, records cut anywhere
        growing.write_bytes(data[:cut])
        seen += reader.read_new()
    growing.write_bytes(data)
    seen += reader.read_new()
    assert [(e.tag, e.step) for e in seen] == [
        (e.tag, e.step) for e in EventFileReader(source).read_new()
    ]
    assert reader.offset == len(data)
    (length,) = struct.unpack_from("<Q", data, 0)
    assert length > 0


def test_import_of_a_tensorboard_dir_gives_the_same_points(tmp_path: Path, runs_dir: Path) -> None:
    expected = write_tb(tmp_path / "tb")
    paths, points, keys = import_run(tmp_path / "tb", runs_dir, name="from-tb")
    assert (points, keys) == (sum(len(v) for v in expected.values()), len(expected))
    series = read_series(paths.root)
    for key, values in expected.items():
        s = series[key]
        assert s.steps.tolist() == sorted(values)
        np.testing.assert_array_equal(s.values, [values[k] for k in sorted(values)])


def test_csv_wide_and_long_and_json_records(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text("epoch,loss,acc,note\n1,0.9,0.5,\n2,0.7,,\n3,0.5,0.8,\n")
    with pytest.raises(UsageError, match="line 2, column note"):
        (tmp_path / "bad.csv").write_text("step,loss,note\n1,0.5,hello\n")
        read_csv(tmp_path / "bad.csv")
    points = read_csv(wide)
    assert ("loss", 3, 0.5, None) in points and ("acc", 2, 0.0, None) not in points
    assert len(points) == 5
    records = tmp_path / "log.jsonl"
    records.write_text(
        '{"step": 1, "loss": 0.9, "metrics": {"acc": 0.5}, "time": 1700000000.5}\n'
        '{"step": 2, "loss": 0.7, "phase": "train"}\n'
    )
    points, _ = read_json(records)
    assert ("metrics/acc", 1, 0.5, 1700000000.5) in points and ("loss", 2, 0.7, None) in points


def test_export_then_import_round_trips(tmp_path: Path, runs_dir: Path) -> None:
    write_tb(tmp_path / "tb", steps=10)
    import_run(tmp_path / "tb", runs_dir, name="orig")
    for fmt in ("csv", "json"):
        out = tmp_path / f"orig.{fmt}"
        assert cli("export", "orig", "--format", fmt, "-o", str(out)).returncode == 0
        done = cli("import", str(out), "--name", f"back-{fmt}")
        assert done.returncode == 0, done.stderr
        assert f"into run back-{fmt}" in done.stdout
        a, b = read_series(runs_dir / "orig"), read_series(runs_dir / f"back-{fmt}")
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key].steps, b[key].steps)
            np.testing.assert_array_equal(a[key].values, b[key].values)
            np.testing.assert_allclose(a[key].walls, b[key].walls, atol=2e-3)
        assert json.loads(cli("show", f"back-{fmt}", "--json").stdout)["status"] == "finished"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("a,b\n1,2\n", "x.csv", "has no step column"),
        ("run,key,step,value\nr1,loss,1,0.5\nr2,loss,1,0.4\n", "x.csv", "import one with --run"),
        ("[1, 2]", "x.json", "is not a list of per-step records"),
        ("{not json", "x.json", "is neither JSON nor JSON lines"),
        ("step,loss\n", "x.csv", "holds no numeric metrics"),
        ("whatever", "x.txt", "cannot tell the format"),
    ],
)
def test_bad_sources_get_one_line_errors(
    tmp_path: Path, runs_dir: Path, content: str, name: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(content)
    done = cli("import", str(source))
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_an_existing_run_is_never_overwritten(tmp_path: Path, runs_dir: Path) -> None:
    source = tmp_path / "m.csv"
    source.write_text("step,loss\n1,0.5\n")
    assert cli("import", str(source), "--name", "same").returncode == 0
    before = (runs_dir / "same" / "journal.sqlite").read_bytes()
    done = cli("import", str(source), "--name", "same")
    assert done.returncode == 2 and "already exists" in done.stderr
    assert (runs_dir / "same" / "journal.sqlite").read_bytes() == before


def test_an_imported_run_cannot_be_resumed(tmp_path: Path, runs_dir: Path) -> None:
    source = tmp_path / "m.csv"
    source.write_text("step,loss\n1,0.5\n")
    assert cli("import", str(source), "--name", "imp").returncode == 0
    done = cli("resume", "imp", "--max-steps", "10")
    assert done.returncode == 2 and "was imported from" in done.stderr, done.stderr
