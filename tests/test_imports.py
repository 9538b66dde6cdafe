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


# ------------------------------------------------------------------ checksums, damage
def records(data: bytes) -> list[tuple[int, int]]:
    """(offset, data length) of each record of an intact event file."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += 12 + length + 4
    return out


def scalar_records(data: bytes) -> list[tuple[int, int]]:
    from trainer.imports.tfevents import parse_event

    return [(o, n) for o, n in records(data) if parse_event(data[o + 12 : o + 12 + n])]


def test_the_crc_is_the_one_the_real_writer_writes(tmp_path: Path) -> None:
    from trainer.imports.tfevents import crc32c, masked_crc32c

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    write_tb(tmp_path / "tb", steps=3)
    data = event_files(tmp_path / "tb")[0].read_bytes()
    for offset, length in records(data):
        header = data[offset : offset + 8]
        body = data[offset + 12 : offset + 12 + length]
        assert masked_crc32c(header) == struct.unpack_from("<I", data, offset + 8)[0]
        assert masked_crc32c(body) == struct.unpack_from("<I", data, offset + 12 + length)[0]


def test_a_corrupt_record_is_skipped_and_reported_never_a_wrong_value(tmp_path: Path) -> None:
    expected = write_tb(tmp_path / "tb", steps=5)
    source = event_files(tmp_path / "tb")[0]
    data = bytearray(source.read_bytes())
    intact = EventFileReader(source).read_new()
    offset, length = scalar_records(bytes(data))[3]
    data[offset + 12 + length - 1] ^= 0x40  # a bit of the value flips on disk
    source.write_bytes(bytes(data))
    reader = EventFileReader(source)
    got = {(e.tag, e.step): e.value for e in reader.read_new(final=True)}
    assert len(got) == len(intact) - 1
    for (tag, step), value in got.items():
        assert expected[tag][step] == value  # every value read is the one written
    [problem] = reader.problems
    assert (problem.path, problem.offset) == (source, offset)
    assert "checksum" in problem.what and str(source) in str(problem)


def test_a_corrupt_header_is_skipped_up_to_the_next_good_record(tmp_path: Path) -> None:
    write_tb(tmp_path / "tb", steps=5)
    source = event_files(tmp_path / "tb")[0]
    data = bytearray(source.read_bytes())
    intact = EventFileReader(source).read_new()
    offset, length = scalar_records(bytes(data))[2]
    data[offset] ^= 0xFF  # the length field lies: its CRC catches it
    source.write_bytes(bytes(data))
    reader = EventFileReader(source)
    got = reader.read_new(final=True)
    lost = [e for e in intact if e not in got]
    assert len(lost) == 1 and all(e in intact for e in got)
    [problem] = reader.problems
    assert problem.offset == offset and "header" in problem.what
    assert f"{12 + length + 4} bytes skipped" in problem.what


def test_a_truncated_file_waits_live_and_is_reported_at_the_end(tmp_path: Path) -> None:
    write_tb(tmp_path / "tb", steps=5)
    data = event_files(tmp_path / "tb")[0].read_bytes()
    offset, length = records(data)[-1]
    cut = tmp_path / "cut.tfevents"
    cut.write_bytes(data[: offset + 12 + length // 2])
    live = EventFileReader(cut)
    first = live.read_new()
    assert live.offset == offset and live.problems == []  # the partial record waits
    cut.write_bytes(data)
    assert len(live.read_new()) >= 1 and live.problems == []  # and is read once whole
    cut.write_bytes(data[: offset + 12 + length // 2])
    done = EventFileReader(cut)
    assert done.read_new(final=True) == first
    [problem] = done.problems
    assert problem.offset == offset and "truncated" in problem.what


def test_memory_stays_bounded_whatever_a_length_field_claims(tmp_path: Path) -> None:
    import tracemalloc

    from trainer.imports.tfevents import masked_crc32c

    write_tb(tmp_path / "tb", steps=3)
    data = event_files(tmp_path / "tb")[0].read_bytes()

    def header(length: int) -> bytes:
        head = struct.pack("<Q", length)
        return head + struct.pack("<I", masked_crc32c(head))

    huge = tmp_path / "huge.tfevents"  # a header claiming 1 TiB, with a valid CRC
    huge.write_bytes(header(1 << 40) + b"\0" * 100)
    big = tmp_path / "big.tfevents"  # a whole record over the limit, then good records
    big.write_bytes(header(3_000_000) + b"\0" * 3_000_004 + data)
    tracemalloc.start()
    try:
        live = EventFileReader(huge)
        assert live.read_new() == [] and live.offset == 0  # it may still be coming
        ended = EventFileReader(huge)
        assert ended.read_new(final=True) == []
        assert "truncated" in ended.problems[0].what
        limited = EventFileReader(big, max_record=1_000_000)
        assert len(limited.read_new(final=True)) == len(EventFileReader(tmp_path / "tb" /
                                                         event_files(tmp_path / "tb")[0].name)
                                                         .read_new())  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "over the 1000000-byte limit" in limited.problems[0].what
    assert peak < 1_000_000


def test_import_counts_the_points_it_stored(tmp_path: Path, runs_dir: Path) -> None:
    writer = tensorboard.SummaryWriter(str(tmp_path / "tb"))
    for step in (1, 2, 2, 3):  # step 2 logged twice: one point is stored
        writer.add_scalar("loss", float(step), step)
    writer.add_scalar("loss", float("nan"), 4)  # NaN: not stored by the journal
    writer.close()
    source = event_files(tmp_path / "tb")[0]
    data = bytearray(source.read_bytes())
    offset, length = scalar_records(bytes(data))[0]
    data[offset + 12 + length - 1] ^= 0x01
    source.write_bytes(bytes(data))
    seen: list[str] = []
    paths, points, keys = import_run(tmp_path / "tb", runs_dir, name="counted",
                                     on_problem=seen.append)  # fmt: skip
    assert (points, keys) == (2, 1)  # step 1 corrupt, 2 once, 3; NaN not stored
    assert read_series(paths.root)["loss"].steps.tolist() == [2, 3]
    assert len(seen) == 1 and f"byte {offset}" in seen[0]
    done = cli("import", str(tmp_path / "tb"), "--name", "counted-cli")
    assert done.returncode == 0, done.stderr
    assert "imported 2 points of 1 keys" in done.stdout
    assert f"byte {offset}" in done.stderr and "checksum" in done.stderr
