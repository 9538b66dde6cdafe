"""The journal's multi-resolution summaries and viewport reads, against brute force."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests import journal_oracle as oracle
from trainer.journal import schema
from trainer.journal import summaries as sm
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "journal-v1"
CREATED = 1_700_000_000.0


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    """A noisy curve with rare spikes, infs and NaNs."""
    values = np.cumsum(rng.normal(0, 1, n))
    spikes = rng.random(n) < 0.01
    values[spikes] += rng.choice([-1, 1], spikes.sum()) * rng.uniform(50, 500, spikes.sum())
    values[rng.random(n) < 0.003] = math.inf
    values[rng.random(n) < 0.002] = -math.inf
    values[rng.random(n) < 0.002] = math.nan
    return values


def _write_random_run(folder: Path, seed: int) -> None:
    """A run of a few attempts: gaps, several keys per step, a sparse key, a step logged
    twice, out-of-order steps, and resumes that supersede steps."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    path = folder / "journal.sqlite"
    writer = JournalWriter.create(
        path, run_id=f"r{seed}", name=f"r{seed}", entry="x", kind="api", config={},
        created=CREATED,
    )  # fmt: skip
    step = 0
    for _attempt in range(int(rng.integers(1, 4))):
        n = int(rng.integers(200, 3000))
        steps = step + np.cumsum(rng.integers(1, 4 if rng.random() < 0.5 else 40, n))
        values = _values(rng, n)
        for i, (s, v) in enumerate(zip(steps.tolist(), values.tolist(), strict=True)):
            point = {"loss": v}
            if i % 7 == 0:
                point["lr"] = 1e-3 * (1 + i)
            writer.log_scalars(point, s, wall=CREATED + s * 0.01)
            if rng.random() < 0.01:  # the same step again, or an older one
                again = s if rng.random() < 0.5 else max(0, s - int(rng.integers(1, 300)))
                wall = CREATED + again * 0.01  # time grows with the step (see envelope.py)
                writer.log_scalars({"loss": float(rng.normal())}, again, wall=wall)
            if rng.random() < 0.02:
                writer.flush()
        writer.close()
        resume = int(rng.integers(0, steps[-1]))
        step = resume + 1
        writer = JournalWriter.open_next_attempt(path, resume_step=resume)
    writer.close()


@pytest.mark.parametrize("seed", range(6))
def test_summaries_equal_brute_force_through_resumes_and_rewrites(
    tmp_path: Path, seed: int
) -> None:
    folder = tmp_path / "run"
    _write_random_run(folder, seed)
    assert oracle.check_summaries(folder) > 0


def _check_envelope(folder: Path, key: str, rng: np.random.Generator, views: int) -> None:
    points = oracle.visible(folder, key)
    assert points
    with JournalReader(folder) as reader:
        for _ in range(views):
            axis = str(rng.choice(["step", "wall", "relative"]))
            xs = [
                float(s) if axis == "step" else (CREATED if axis == "wall" else 0.0) + w / 1000.0
                for s, _, w in points
            ]
            lo, hi = min(xs), max(xs)
            span = hi - lo
            a, b = sorted(rng.uniform(lo - 0.1 * span, hi + 0.1 * span, 2).tolist())
            if rng.random() < 0.3:
                a, b = lo, hi
            width = int(rng.choice([1, 7, 50, 200, 1000]))
            env = reader.envelope(key, a, b, width, axis=axis)
            want, want_nonfinite = oracle.envelope(
                [(x, v) for x, (_, v, _) in zip(xs, points, strict=True)], a, b, width
            )
            got: dict[int, tuple[float, float]] = {}
            for x, y in zip(env.x.tolist(), env.y.tolist(), strict=True):
                col = oracle.column_of(x, a, b, width)
                assert col is not None
                low, high = got.get(col, (math.inf, -math.inf))
                got[col] = (min(low, y), max(high, y))
            assert got == want, (axis, a, b, width, env.level)
            nonfinite = {c: int(n) for c, n in enumerate(env.nonfinite.tolist()) if n}
            assert nonfinite == want_nonfinite, (axis, a, b, width, env.level)
            assert len(env) <= 4 * width
            assert np.all(np.diff(env.x) >= 0) and len(set(env.steps.tolist())) == len(env)
            real = {(s, v) for s, v, _ in points}
            drawn = zip(env.steps.tolist(), env.y.tolist(), strict=True)
            assert all((s, y) in real for s, y in drawn)


@pytest.mark.parametrize("seed", range(4))
def test_envelope_equals_the_raw_min_max_per_pixel_column(tmp_path: Path, seed: int) -> None:
    folder = tmp_path / "run"
    _write_random_run(folder, 100 + seed)
    rng = np.random.default_rng(seed)
    _check_envelope(folder, "loss", rng, 40)
    _check_envelope(folder, "lr", rng, 10)


def test_a_long_run_reads_few_rows_per_column(tmp_path: Path) -> None:
    """200,000 steps drawn 300 pixels wide come from the summaries, not the points."""
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "journal.sqlite"
    writer = JournalWriter.create(
        path, run_id="long", name="long", entry="x", kind="api", config={}, created=CREATED
    )
    rng = np.random.default_rng(7)
    values = _values(rng, 200_000)
    for s, v in enumerate(values.tolist()):
        writer.log_scalars({"loss": v}, s, wall=CREATED + s * 0.01)
    writer.close()
    with JournalReader(folder) as reader:
        env = reader.envelope("loss", 0, 199_999, 300)
        extent = reader.extent("loss")
    assert env.level >= 1  # never the 200,000 points themselves
    stored = values[~np.isnan(values)]  # NaN is a gap in the curve (an event says so)
    assert extent is not None and extent.count == len(stored) and extent.x_last == 199_999
    assert extent.nonfinite == int(np.isinf(stored).sum())
    finite = values[np.isfinite(values)]
    assert env.y.max() == finite.max() and env.y.min() == finite.min()
    _check_envelope(folder, "loss", rng, 15)


def test_a_v1_journal_opens_as_it_is_then_migrates_and_draws_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE_V1, folder)
    path = folder / "journal.sqlite"
    before = oracle.visible(folder, "train/loss")
    with JournalReader(folder) as reader:
        old = reader.envelope("train/loss", 0, 4000, 120)
        assert reader.extent("train/loss") is not None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    conn.close()

    writer = JournalWriter.open_next_attempt(path, resume_step=3999)
    writer.close()

    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    assert meta["schema_version"] == str(schema.SCHEMA_VERSION)
    assert meta["summaries"] == schema.SUMMARIES_COMPLETE
    assert oracle.visible(folder, "train/loss") == before
    assert oracle.check_summaries(folder) > 0
    with JournalReader(folder) as reader:
        new = reader.envelope("train/loss", 0, 4000, 120)
    assert new.level > 0 or len(before) <= 120 * 8
    np.testing.assert_array_equal(old.nonfinite, new.nonfinite)
    assert old.nonfinite.sum() == 1  # the fixture's inf
    assert sorted(zip(old.steps.tolist(), old.y.tolist(), strict=True)) == sorted(
        zip(new.steps.tolist(), new.y.tolist(), strict=True)
    )


def test_levels_nest() -> None:
    assert [sm.size(level) for level in range(4)] == [1, 64, 512, 4096]
    assert sm.size(sm.LEVELS) >= 10**8


_CHILD = """
import sys, numpy as np
from pathlib import Path
from trainer.journal.writer import JournalWriter
path, seed, resume = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if resume < 0:
    w = JournalWriter.create(path, run_id="k", name="k", entry="x", kind="api", config={})
    step = 0
else:
    w = JournalWriter.open_next_attempt(path, resume_step=resume)
    step = resume + 1
rng = np.random.default_rng(seed)
print("ready", flush=True)
while True:
    step += int(rng.integers(1, 5))
    w.log_scalars({"a": float(rng.normal()), "b": float(rng.normal()) * 10}, step)
    if rng.random() < 0.001:
        w.log_scalars({"a": 99.0}, max(0, step - int(rng.integers(0, 200))))
"""


def test_kill_9_at_random_moments_leaves_summaries_that_agree(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "journal.sqlite"
    rng = np.random.default_rng(11)
    resume = -1
    for round_ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(round_), str(resume)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while _last_step(folder) <= resume and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the attempt's first commit
        time.sleep(float(rng.uniform(0.0, 0.5)))  # then a random moment to kill it
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        checked = oracle.check_summaries(folder)
        assert checked > 0
        with JournalReader(folder) as reader:
            extent = reader.extent("a")
        assert extent is not None
        resume = max(0, extent.last_step - int(rng.integers(0, 500)))


def _last_step(folder: Path) -> int:
    try:
        with JournalReader(folder) as reader:
            extent = reader.extent("a")
    except Exception:  # not created yet
        return -1
    return -1 if extent is None else extent.last_step


def test_a_quick_overview_keeps_every_extreme_from_a_coarser_level(tmp_path: Path) -> None:
    """The overview (exact=False) reads a level with about a bucket per two columns: fewer
    rows than the exact read, only real points, and the view's lowest and highest values
    (spikes, and the extremes of each stretch a bucket spans) all drawn."""
    folder = tmp_path / "run"
    folder.mkdir()
    writer = JournalWriter.create(
        folder / "journal.sqlite", run_id="o", name="o", entry="x", kind="api", config={},
        created=CREATED,
    )  # fmt: skip
    rng = np.random.default_rng(11)
    values = np.cumsum(rng.normal(0, 0.1, 200_000))
    values[rng.choice(200_000, 12, replace=False)] = rng.choice([-50.0, 50.0], 12)
    for s, v in enumerate(values.tolist()):
        writer.log_scalars({"loss": v}, s, wall=CREATED + s * 0.01)
    writer.close()
    with JournalReader(folder) as reader:
        for a, b, width in ((0, 199_999, 300), (10_000, 150_000, 700), (5, 99_999, 256)):
            quick = reader.envelope("loss", a, b, width, exact=False)
            exact = reader.envelope("loss", a, b, width)
            assert quick.level >= exact.level and len(quick.mean_n) <= len(exact.mean_n)
            if (a, b) == (0, 199_999):  # 390 level-2 buckets do: an eighth of the rows
                assert quick.level > exact.level
                assert len(quick.mean_n) * 4 <= len(exact.mean_n)
            inside = values[a : b + 1]
            assert quick.y.max() == inside.max() and quick.y.min() == inside.min()
            for step, y in zip(quick.steps.tolist(), quick.y.tolist(), strict=True):
                assert values[step] == y
            assert set(np.flatnonzero(np.abs(inside) == 50.0) + a) <= set(quick.steps.tolist())
