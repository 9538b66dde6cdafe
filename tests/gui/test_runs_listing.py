"""The runs listing at a thousand run folders: complete, progressive, and quiet when idle."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app import runs_model
from desktop_app.compare.results import KeyResult, RunResults
from desktop_app.main_window import MainWindow
from desktop_app.runs_model import RunsModel, RunsScanner, ScanResult, file_mark
from desktop_app.runs_table import COLUMNS, RunsTableModel
from trainer.annotations import Annotations
from trainer.journal.writer import JournalWriter
from trainer.paths import JOURNAL_NAME, RunPaths

MakeRun = Callable[..., JournalWriter]
pytestmark = pytest.mark.gui
TIMEOUT_MS = 60_000
N_RUNS = 1000


def generate_runs(runs_dir: Path, n: int, *, first: int = 0) -> list[Path]:
    """``n`` finished run folders: one real journal, copied with its own run row each."""
    template = runs_dir.parent / "template"
    if not (template / JOURNAL_NAME).exists():
        paths = RunPaths(template).create()
        w = JournalWriter.create(
            paths.journal, run_id="t", name="t", entry="spirals", kind="recipe", config={},
            max_steps=20,
        )  # fmt: skip
        for step in range(1, 21):
            w.log_scalars({"train/loss": 1.0 / step}, step)
        w.set_status("finished", exit_reason="finished", step=20)
        w.close()
    now = time.time()
    runs_dir.mkdir(parents=True, exist_ok=True)
    folders = []
    for i in range(first, first + n):
        folder = runs_dir / f"gen-{i:05d}"
        folder.mkdir()
        shutil.copyfile(template / JOURNAL_NAME, folder / JOURNAL_NAME)
        conn = sqlite3.connect(folder / JOURNAL_NAME)
        conn.execute(
            "UPDATE run SET id = ?, name = ?, created = ?", (f"id{i:05d}", folder.name, now + i)
        )
        conn.commit()
        conn.close()
        folders.append(folder)
    return folders


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs dir of 1,000 finished run folders, made once for this module (copy it)."""
    runs = tmp_path_factory.mktemp("thousand") / "runs"
    generate_runs(runs, N_RUNS)
    return runs


def scan_until_complete(scanner: RunsScanner) -> list[ScanResult]:
    results = [scanner.scan()]
    while not results[-1].complete:
        results.append(scanner.scan())
    return results


def test_a_thousand_folders_list_completely_and_progressively(
    thousand: Path, tmp_path: Path
) -> None:
    model = RunsModel(thousand, cache=tmp_path / "cache.json")
    table = RunsTableModel(model)
    scanner = model.scanner
    scanner.budget_s = 0.05
    counts = []
    while True:
        result = model.scan()
        model.apply(result)
        counts.append(len(model))
        if result.complete:
            break
    assert len(model) == N_RUNS == table.rowCount()
    assert len(counts) > 1 and counts[0] < N_RUNS  # it filled in chunks
    assert {r.status for r in model.runs} == {"finished"}
    assert {r.latest["train/loss"] for r in model.runs} == {1.0 / 20}
    assert [r.name for r in model.runs][:2] == ["gen-00999", "gen-00998"]  # newest first
    assert scanner.reads == N_RUNS

    # Idle: nothing is read again while nothing changes.
    for _ in range(30):  # more than a full turn of the ended runs' stat checks
        assert not model.apply(model.scan())
    assert scanner.reads == N_RUNS

    # The next start takes the ended runs from the cache, reading no journal.
    again = RunsScanner(thousand, cache=tmp_path / "cache.json")
    results = scan_until_complete(again)
    assert sum(len(r.changed) for r in results) == N_RUNS
    assert again.reads == 0
    table.detach()


def test_a_folder_added_later_appears_and_only_it_is_read(thousand: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(thousand, runs)
    model = RunsModel(runs)
    table = RunsTableModel(model)
    while not (result := model.scan()).complete:
        model.apply(result)
    model.apply(result)
    reads = model.scanner.reads
    inserted: list[tuple[int, int]] = []
    table.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    resets: list[None] = []
    table.modelReset.connect(lambda: resets.append(None))

    (new,) = generate_runs(runs, 1, first=N_RUNS)
    result = model.scan()
    assert [r.name for r in result.changed] == [new.name]
    assert model.apply(result)
    assert model.scanner.reads == reads + 1  # the others were not opened again
    assert table.rowCount() == N_RUNS + 1
    assert inserted == [(0, 0)] and not resets  # one row inserted, no reset

    shutil.rmtree(new)
    result = model.scan()
    assert result.removed == [str(new)]
    model.apply(result)
    assert table.rowCount() == N_RUNS and not resets
    table.detach()


def test_a_changed_journal_is_read_again_and_its_row_repainted(
    runs_dir: Path, make_run: MakeRun
) -> None:
    make_run("a", losses=[1.0], status="finished")
    make_run("b", losses=[2.0], status="finished")
    model = RunsModel(runs_dir)
    table = RunsTableModel(model)
    model.apply(model.scan())
    changed: list[tuple[int, int]] = []
    table.dataChanged.connect(lambda first, last, _roles: changed.append((first.row(), last.row())))
    w = JournalWriter.open_next_attempt(runs_dir / "a" / JOURNAL_NAME, resume_step=0)
    w.log_scalars({"train/loss": 0.125}, 1)
    w.set_status("finished", exit_reason="finished", step=1)
    w.close()
    deadline = time.monotonic() + 30
    while not model.apply(model.scan()):
        assert time.monotonic() < deadline, "the resumed run was never read again"
    row = model.index_of(str(runs_dir / "a"))
    assert row is not None and model.runs[row].latest["train/loss"] == 0.125
    assert changed and set(changed) == {(row, row)}  # that row only (the cells that changed)
    table.detach()


def test_ended_runs_are_looked_at_in_turns_and_the_followed_not_at_all(
    runs_dir: Path, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(10):
        make_run(f"r{n}", losses=[1.0], status="finished")
    scanner = RunsScanner(runs_dir, recheck=4)
    scan_until_complete(scanner)
    looked: Counter[str] = Counter()

    def counted(folder: str | Path) -> object:
        looked[Path(folder).name] += 1
        return file_mark(folder)

    monkeypatch.setattr(runs_model, "file_mark", counted)
    reads = scanner.reads
    for _ in range(5):  # 20 looks: each of the 10 ended runs twice, a stat each
        assert scanner.scan().changed == []
    assert looked == {f"r{n}": 2 for n in range(10)} and scanner.reads == reads
    looked.clear()
    scanner.followed = frozenset({str(runs_dir / "r0")})
    for _ in range(9):  # 36 looks over the 9 others
        scanner.scan()
    assert looked == {f"r{n}": 4 for n in range(1, 10)} and scanner.reads == reads


def test_a_rows_new_step_repaints_the_cells_that_changed(runs_dir: Path, make_run: MakeRun) -> None:
    make_run("a", losses=[1.0], status="finished")
    make_run("b", losses=[2.0], status="finished")
    model = RunsModel(runs_dir)
    table = RunsTableModel(model)
    model.apply(model.scan())
    changed: list[tuple[int, int, int, int]] = []
    table.dataChanged.connect(
        lambda first, last, _roles: changed.append(
            (first.row(), first.column(), last.row(), last.column())
        )
    )
    row = model.index_of(str(runs_dir / "b"))
    assert row is not None
    run = model.runs[row]
    step = COLUMNS.index("Step")
    assert model.apply(ScanResult(changed=[replace(run, step=run.step + 1)]))
    assert changed == [(row, step, row, step)]  # that cell only, not the row
    changed.clear()
    assert not model.apply(ScanResult(changed=[replace(run, step=run.step + 1)]))
    assert changed == []  # nothing new: nothing repainted
    assert model.apply(ScanResult(changed=[replace(run, step=run.step + 1, status="crashed")]))
    assert changed == [(row, 0, row, table.columnCount() - 1)]  # a new status: the whole row
    table.detach()


def test_results_read_again_the_same_repaint_nothing(runs_dir: Path, make_run: MakeRun) -> None:
    make_run("a", losses=[1.0], status="finished")
    make_run("b", losses=[2.0], status="finished")
    model = RunsModel(runs_dir)
    table = RunsTableModel(model)
    model.apply(model.scan())
    changed: list[tuple[int, int]] = []
    table.dataChanged.connect(lambda first, last, _roles: changed.append((first.row(), last.row())))
    b = str(runs_dir / "b")
    found = {b: RunResults({"train/loss": KeyResult(2.0, 2.0)}, Annotations())}
    table.set_results(found)
    row = model.index_of(b)
    assert changed == [(row, row)]  # that row only
    table.set_results(dict(found))  # a live run's results read again at its next step
    assert changed == [(row, row)]  # the same: nothing repainted
    table.detach()


@pytest.fixture
def window(qtbot: QtBot, thousand: Path, tmp_path: Path) -> Iterator[MainWindow]:
    runs = tmp_path / "runs"
    shutil.copytree(thousand, runs)
    win = MainWindow(runs)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_the_window_lists_a_thousand_runs_then_a_new_one(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.table_model.rowCount() == N_RUNS, timeout=TIMEOUT_MS)
    assert window.proxy.rowCount() == N_RUNS
    (new,) = generate_runs(window.runs.runs_dir, 1, first=N_RUNS)
    qtbot.waitUntil(lambda: window.runs.index_of(str(new)) is not None, timeout=TIMEOUT_MS)
    assert window.table_model.rowCount() == N_RUNS + 1
