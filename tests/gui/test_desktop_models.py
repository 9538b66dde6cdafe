"""The desktop app's Qt-free parts: the runs model, the curve buffer and feed, error hooks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from desktop_app.error_hooks import ErrorHooks
from desktop_app.runs_model import RunsModel, fetch_runs, loss_text, sort_runs, step_text
from trainer.journal.reader import RunInfo, Series, TailBatch
from trainer.journal.writer import JournalWriter
from trainer.runs import RunSummary

MakeRun = Callable[..., JournalWriter]  # the make_run fixture (conftest.py)


def _summary(name: str, created: float | None, **kw: object) -> RunSummary:
    base = RunSummary(
        id=name, name=name, path=f"/runs/{name}", status="finished", step=10, max_steps=100,
        attempt=1, entry="spirals", created=created, updated=created, exit_reason=None,
        latest={"train/loss": 0.25},
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_model_notifies_only_on_change() -> None:
    runs = [_summary("a", 1.0)]
    model = RunsModel(Path("/runs"), fetch=lambda _: list(runs))
    calls: list[int] = []
    model.add_listener(lambda: calls.append(len(model)))
    assert model.refresh() is True
    assert model.refresh() is False
    runs[0] = replace(runs[0], step=11)
    assert model.refresh() is True
    runs.append(_summary("b", 2.0))
    assert model.refresh() is True
    assert calls == [1, 1, 2]
    assert model.index_of("/runs/b") == 1
    assert model.index_of("/nowhere") is None


def test_model_reads_real_runs(runs_dir: Path, make_run: MakeRun) -> None:
    make_run("first", losses=[1.0, 0.5], status="finished")
    make_run("second", losses=[2.0], status="failed")
    (runs_dir / "junk").mkdir()
    (runs_dir / "junk" / "journal.sqlite").write_bytes(b"not a database at all" * 10)
    model = RunsModel(runs_dir)
    changes: list[None] = []
    model.add_listener(lambda: changes.append(None))
    assert model.refresh()
    assert not model.refresh()
    by_name = {r.name: r for r in model.runs}
    assert [r.name for r in model.runs] == ["second", "first", "junk"]  # newest first
    assert by_name["first"].status == "finished"
    assert by_name["first"].latest["train/loss"] == 0.5
    assert by_name["second"].status == "failed"
    assert by_name["junk"].status == "unreadable"
    assert by_name["junk"].error
    assert len(changes) == 1


def test_sort_and_texts() -> None:
    runs = [_summary("old", 1.0), _summary("bad", None, status="unreadable"), _summary("new", 5)]
    assert [r.name for r in sort_runs(runs)] == ["new", "old", "bad"]
    assert step_text(runs[0]) == "10 / 100"
    assert step_text(replace(runs[0], max_steps=None)) == "10"
    assert step_text(runs[1]) == ""
    assert loss_text(runs[0]) == "0.25"
    assert loss_text(replace(runs[0], latest={})) == ""
    assert loss_text(replace(runs[0], latest={"train/loss": float("nan")})) == "nan"


def _batch(steps: list[int], new_attempts: list[tuple[int, int]] | None = None) -> TailBatch:
    info = RunInfo(
        id="x", name="x", entry="e", kind="recipe", created=0.0, config={}, status="running",
        exit_reason=None, pid=None, pid_started=None, host="h", attempt=1, step=0,
        max_steps=None, updated=0.0, heartbeat_wall=None, heartbeat_step=None,
    )  # fmt: skip
    n = len(steps)
    series = Series(
        np.array(steps, np.int64), np.arange(n, dtype=np.float64), np.zeros(n), np.ones(n, np.int32)
    )
    return TailBatch(run=info, points={"train/loss": series}, new_attempts=new_attempts or [])


def test_error_hooks_report_and_restore() -> None:
    shown: list[str] = []
    old = sys.excepthook
    hooks = ErrorHooks(show=shown.append)
    hooks.install()
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        hooks.uninstall()
    assert sys.excepthook is old
    assert hooks.count == 1
    assert "boom in a slot" in shown[0]
    assert "Traceback" in shown[0]


def test_fetch_runs_of_a_missing_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist \\(any more\\)"):
        fetch_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert fetch_runs(tmp_path / "empty") == []


def test_elapsed_and_eta_texts() -> None:
    from desktop_app.runs_model import duration_text, elapsed_text, eta_text
    from trainer.runs import RunSummary

    live = RunSummary(
        id="x", name="x", path="/x", status="running", step=25, max_steps=100, attempt=1,
        entry="spirals", created=1000.0, updated=1050.0, exit_reason=None, latest={},
    )  # fmt: skip
    assert elapsed_text(live, now=1100.0) == "1m 40s"
    assert eta_text(live, now=1100.0) == "5m 00s"  # 75 steps left at 4 s per step
    done = replace(live, status="finished", step=100)
    assert elapsed_text(done, now=5000.0) == "50s" and eta_text(done) == ""
    assert duration_text(7260) == "2h 01m"
