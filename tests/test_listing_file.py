"""An ended run's listing file (listing.json): the same summary as its journal, or ignored."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

import trainer.runs as runs
from tests.helpers import TINY, cli
from trainer.journal import JournalReader, JournalWriter, listing_file
from trainer.journal import db as jdb
from trainer.journal.reader import RunInfo
from trainer.paths import LISTING_NAME, RunPaths
from trainer.runs import RunSummary, summarize


def make_run(root: Path, name: str = "r1") -> tuple[RunPaths, JournalWriter]:
    paths = RunPaths(root / name).create()
    writer = JournalWriter.create(
        paths.journal, run_id=f"id-{name}", name=name, entry="spirals", kind="recipe",
        config={"lr": 0.1, "model": {"width": 64, "layers": [1, 2]}}, max_steps=100,
    )  # fmt: skip
    return paths, writer


def log_steps(w: JournalWriter, steps: range, **extra: float) -> None:
    for step in steps:
        w.log_scalars({"train/loss": 1.0 / step, "val/acc": step / 100, **extra}, step)
    w.heartbeat(steps[-1])


@pytest.fixture
def journal_opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each journal summarize() opens (whether frozen); none when it used the listing file."""
    opened: list[bool] = []

    def spy(path: Path, **kw: bool) -> JournalReader:
        opened.append(kw.get("frozen", False))
        return JournalReader(path, **kw)

    monkeypatch.setattr(runs, "JournalReader", spy)
    return opened


def from_journal(folder: Path, *, with_latest: bool = True) -> RunSummary:
    """The summary read from the journal, the listing file set aside (and put back)."""
    kept = folder / LISTING_NAME
    aside = folder.parent / f"{folder.name}.aside"
    os.replace(kept, aside)
    try:
        return summarize(folder, with_latest=with_latest)
    finally:
        os.replace(aside, kept)


def _finished(w: JournalWriter) -> None:
    log_steps(w, range(1, 41))
    w.event("finished", "", step=40)
    w.set_status("finished", exit_reason="finished", step=40)


def _stopped(w: JournalWriter) -> None:
    log_steps(w, range(1, 13))
    w.event("stopped", "stop requested", step=12)
    w.set_status("stopped", exit_reason="stop requested", step=12)


def _failed(w: JournalWriter) -> None:
    log_steps(w, range(1, 8))
    w.event("error", "RuntimeError: boom", step=7, data={"traceback": "..."})
    w.set_status("failed", exit_reason="RuntimeError: boom", step=7)


def _paused_then_stopped(w: JournalWriter) -> None:
    log_steps(w, range(1, 6))
    w.event("paused", "", step=5)
    w.event("resumed", "", step=5)
    w.event("paused", "", step=5)
    w.event("stopped", "", step=5)
    w.set_status("stopped", exit_reason="stop requested", step=5)


def _infinite_newest_value(w: JournalWriter) -> None:
    log_steps(w, range(1, 4), **{"grad/norm": float("inf")})
    w.log_scalars({"grad/low": float("-inf"), "neg/zero": -0.0, "huge": 1e308}, 4)
    w.set_status("finished", exit_reason="finished", step=4)


def _crashed(w: JournalWriter) -> None:
    log_steps(w, range(1, 3))
    w.set_status("crashed", exit_reason="no safe point within 30 s of SIGTERM", step=2)


SCENARIOS: dict[str, Callable[[JournalWriter], None]] = {
    "finished": _finished,
    "stopped": _stopped,
    "failed": _failed,
    "paused then stopped": _paused_then_stopped,
    "infinite newest value": _infinite_newest_value,
    "crashed": _crashed,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_listing_file_gives_exactly_the_journals_summary(
    tmp_path: Path, journal_opens: list[bool], scenario: str
) -> None:
    paths, w = make_run(tmp_path)
    SCENARIOS[scenario](w)
    w.close()
    assert (paths.root / LISTING_NAME).is_file()
    for with_latest in (True, False):
        journal_opens.clear()
        fast = summarize(paths.root, with_latest=with_latest)
        assert journal_opens == [], "the journal was opened"
        slow = from_journal(paths.root, with_latest=with_latest)
        assert journal_opens == [True]
        assert fast == slow
        assert fast.to_json() == slow.to_json()
        assert list(fast.latest) == list(slow.latest)  # the same order of keys
    assert fast.status != "unreadable" and fast.error is None


def test_a_resumed_attempt_writes_a_new_listing_file(
    tmp_path: Path, journal_opens: list[bool]
) -> None:
    paths, w = make_run(tmp_path)
    log_steps(w, range(1, 31))
    w.event("paused", "", step=30)
    w.set_status("stopped", exit_reason="stop requested", step=30)
    w.close()
    first = summarize(paths.root)
    assert first.paused_s == 0.0 and first.paused_since is not None

    # A resume from step 20: the journal changes, so its writer removes the file at once.
    w = JournalWriter.open_next_attempt(paths.journal, resume_step=20)
    assert not (paths.root / LISTING_NAME).exists()
    w.event("restarted", "", step=20)
    w.log_scalars({"train/loss": 7.0}, 21)
    w.flush()
    journal_opens.clear()
    live = summarize(paths.root)
    assert journal_opens == [False], "a live run is read from its journal"
    assert (live.attempt, live.status) == (2, "starting")
    w.heartbeat(21)
    w.set_status("finished", exit_reason="finished", step=21)
    w.close()

    journal_opens.clear()
    fast = summarize(paths.root)
    assert journal_opens == []
    assert fast == from_journal(paths.root)
    # attempt 1's points after step 20 are superseded: val/acc's newest visible is step 20
    assert fast.latest == {"train/loss": 7.0, "val/acc": 0.2}
    assert (fast.attempt, fast.status, fast.step) == (2, "finished", 21)
    assert fast.paused_since is None and fast.paused_s > 0.0


def test_real_runs_list_the_same_from_their_listing_files(
    runs_dir: Path, journal_opens: list[bool]
) -> None:
    """`trainer run` and `trainer resume` leave a listing file that lists as the journal does;
    a supervisor's final note (--max-restarts) after a clean end keeps it."""
    assert (
        cli("run", str(TINY), "--name", "real", "--set", "max_steps=12", "--quiet").returncode == 0
    )
    folder = runs_dir / "real"
    first = summarize(folder)
    assert journal_opens == [] and first == from_journal(folder)
    resumed = cli("resume", "real", "--max-steps", "16", "--max-restarts", "1", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    journal_opens.clear()
    resumed = summarize(folder)
    assert journal_opens == []
    assert resumed == from_journal(folder)
    assert (resumed.status, resumed.attempt, resumed.step) == ("finished", 2, 16)
    mode = stat.S_IMODE((folder / LISTING_NAME).stat().st_mode)
    assert mode == 0o600, oct(mode)


def test_a_copied_folder_keeps_using_its_listing_file(
    tmp_path: Path, journal_opens: list[bool]
) -> None:
    paths, w = make_run(tmp_path)
    _finished(w)
    w.close()
    copy = tmp_path / "elsewhere" / "r1"
    shutil.copytree(paths.root, copy)  # copy2: times kept, a new inode
    journal_opens.clear()
    assert summarize(copy) == from_journal(copy)
    assert journal_opens == [True]  # only from_journal's


def test_a_journal_changed_after_its_listing_file_is_read_instead(
    tmp_path: Path, journal_opens: list[bool]
) -> None:
    paths, w = make_run(tmp_path)
    _finished(w)
    w.close()
    before = paths.journal.stat()
    conn = sqlite3.connect(paths.journal)  # another program edits it: same size
    conn.execute("UPDATE run SET status = 'failed', exit_reason = 'edited'")
    conn.commit()
    conn.close()
    assert paths.journal.stat().st_size == before.st_size
    journal_opens.clear()
    got = summarize(paths.root)
    assert journal_opens == [True]
    assert (got.status, got.exit_reason) == ("failed", "edited")
    # the same time but another size: not trusted either
    with open(paths.journal, "ab") as fh:
        fh.write(b"\0" * 4096)
    os.utime(paths.journal, ns=(before.st_atime_ns, before.st_mtime_ns))
    journal_opens.clear()
    assert summarize(paths.root).status == "failed"
    assert journal_opens == [True]


def _valid_listing(tmp_path: Path) -> tuple[RunPaths, dict[str, object], RunSummary]:
    paths, w = make_run(tmp_path)
    _finished(w)
    w.close()
    doc = json.loads((paths.root / LISTING_NAME).read_text())
    return paths, doc, from_journal(paths.root)


def _edited(doc: dict[str, object], path: str, value: object) -> dict[str, object]:
    out = json.loads(json.dumps(doc))
    where = out
    *parents, last = path.split(".")
    for part in parents:
        where = where[part]
    where[last] = value
    return out


BAD_FILES: dict[str, Callable[[dict[str, object]], bytes]] = {
    "not JSON": lambda doc: b"{not json",
    "torn": lambda doc: json.dumps(doc).encode()[:-40],
    "a list": lambda doc: b"[1, 2, 3]",
    "deeply nested": lambda doc: b"[" * 100_000 + b"]" * 100_000,
    "not UTF-8": lambda doc: b'{"format": "\xff\xfe"}',
    "an older format": lambda doc: json.dumps({**doc, "format": 0}).encode(),
    "a newer format": lambda doc: json.dumps({**doc, "format": listing_file.FORMAT + 1}).encode(),
    "another mark": lambda doc: json.dumps(_edited(doc, "journal", [1, 2])).encode(),
    "a mark of strings": lambda doc: json.dumps(
        _edited(doc, "journal", [str(x) for x in doc["journal"]])  # type: ignore[attr-defined]
    ).encode(),
    "other event kinds": lambda doc: json.dumps(_edited(doc, "events_of", ["paused"])).encode(),
    "a step as text": lambda doc: json.dumps(_edited(doc, "run.step", "40")).encode(),
    "a missing field": lambda doc: json.dumps(
        {**doc, "run": {k: v for k, v in doc["run"].items() if k != "host"}}  # type: ignore[attr-defined]
    ).encode(),
    "an extra field": lambda doc: json.dumps(_edited(doc, "run.extra", 1)).encode(),
    "a live status": lambda doc: json.dumps(_edited(doc, "run.status", "running")).encode(),
    "a boolean pid": lambda doc: json.dumps(_edited(doc, "run.pid", True)).encode(),
    "a config list": lambda doc: json.dumps(_edited(doc, "run.config", [1])).encode(),
    "a bad newest value": lambda doc: json.dumps(
        _edited(doc, "latest", [["train/loss", 40, "0.1"]])
    ).encode(),
    "newest as an object": lambda doc: json.dumps(_edited(doc, "latest", {"a": 1})).encode(),
    "a key twice": lambda doc: json.dumps(
        _edited(doc, "latest", [["a", 1, 1.0], ["a", 2, 2.0]])
    ).encode(),
    "an unknown event": lambda doc: json.dumps(_edited(doc, "events", [["boom", 1.0]])).encode(),
    "huge": lambda doc: json.dumps(doc).encode() + b" " * listing_file.MAX_BYTES,
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_listing_file_that_is_not_as_written_is_ignored(
    tmp_path: Path, journal_opens: list[bool], bad: str
) -> None:
    paths, doc, truth = _valid_listing(tmp_path)
    (paths.root / LISTING_NAME).write_bytes(BAD_FILES[bad](doc))
    journal_opens.clear()
    assert summarize(paths.root) == truth
    assert journal_opens == [True], "the journal was not read"


def test_a_listing_file_that_lies_but_matches_is_believed(tmp_path: Path) -> None:
    """The check the other tests rely on: an edited file with the right mark is read."""
    paths, doc, truth = _valid_listing(tmp_path)
    (paths.root / LISTING_NAME).write_text(json.dumps(_edited(doc, "run.step", 999)))
    assert summarize(paths.root).step == 999 and truth.step == 40


def test_a_symlinked_listing_file_is_never_followed(
    tmp_path: Path, journal_opens: list[bool]
) -> None:
    paths, doc, truth = _valid_listing(tmp_path)
    lie = tmp_path / "lie.json"
    lie.write_text(json.dumps(_edited(doc, "run.step", 999)))
    (paths.root / LISTING_NAME).unlink()
    (paths.root / LISTING_NAME).symlink_to(lie)
    journal_opens.clear()
    assert summarize(paths.root) == truth
    assert journal_opens == [True]


def test_a_fifo_or_folder_named_like_the_listing_file_is_ignored(tmp_path: Path) -> None:
    paths, _doc, truth = _valid_listing(tmp_path)
    (paths.root / LISTING_NAME).unlink()
    os.mkfifo(paths.root / LISTING_NAME)  # opening it for reading would wait for a writer
    assert summarize(paths.root) == truth
    (paths.root / LISTING_NAME).unlink()
    (paths.root / LISTING_NAME).mkdir()
    assert summarize(paths.root) == truth


def test_a_live_run_writes_none_and_removes_an_old_one(tmp_path: Path) -> None:
    paths, w = make_run(tmp_path)
    _stopped(w)
    w.close()
    assert (paths.root / LISTING_NAME).is_file()
    old = (paths.root / LISTING_NAME).read_bytes()
    w = JournalWriter.open_next_attempt(paths.journal, resume_step=12)
    (paths.root / LISTING_NAME).write_bytes(old)  # put back: still not trusted while live
    w.log_scalars({"train/loss": 3.0}, 13)
    w.flush()
    assert jdb.idle_mark(paths.journal) is None
    live = summarize(paths.root)
    assert (live.status, live.attempt, live.latest["train/loss"]) == ("starting", 2, 3.0)
    w.close()  # closed while its status is live (a script that never finished): no listing
    assert not (paths.root / LISTING_NAME).exists()
    assert listing_file.write_listing(paths.journal) is False


def test_a_supervisor_note_that_changes_the_journal_writes_the_file_again(
    tmp_path: Path, journal_opens: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.journal import writer

    written: list[Path] = []
    monkeypatch.setattr(
        listing_file, "write_listing", lambda p: written.append(p) or _write_listing(p)
    )
    paths, w = make_run(tmp_path)
    _finished(w)
    w.close()
    written.clear()
    # What a supervisor writes after every clean end: a final status that is already there.
    assert writer.annotate(paths.journal, [], status="finished", exit_reason="finished")
    assert written == [], "nothing changed: the listing file is kept as it is"
    journal_opens.clear()
    assert summarize(paths.root) == from_journal(paths.root)
    assert journal_opens == [True]  # only from_journal's
    # A note (a resumed attempt's "starting", written once it ended) changes the journal.
    before = (paths.root / LISTING_NAME).read_bytes()
    assert writer.annotate(paths.journal, [("starting", "attempt 2 starting", {"pid": 1})])
    assert written == [paths.journal]
    assert (paths.root / LISTING_NAME).read_bytes() != before
    assert jdb.idle_mark(paths.journal) is not None  # checkpointed, as at a close
    journal_opens.clear()
    assert summarize(paths.root) == from_journal(paths.root)
    assert journal_opens == [True]

    # A run the trainer left "running" (killed) is noted crashed: its file says so.
    paths, w = make_run(tmp_path, "killed")
    log_steps(w, range(1, 4))
    w.set_status("running", step=3)
    w.close()
    assert not (paths.root / LISTING_NAME).exists()
    assert writer.annotate(paths.journal, [], status="crashed", exit_reason="killed")
    journal_opens.clear()
    got = summarize(paths.root)
    assert journal_opens == [] and got.status == "crashed" and got == from_journal(paths.root)


_write_listing = listing_file.write_listing


def test_a_listing_too_big_for_the_file_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_file, "MAX_BYTES", 600)
    paths, w = make_run(tmp_path)
    w.log_scalars({f"key/{i:03d}": float(i) for i in range(100)}, 1)
    w.set_status("finished", exit_reason="finished", step=1)
    w.close()
    assert not (paths.root / LISTING_NAME).exists()
    assert summarize(paths.root).latest["key/099"] == 99.0


def test_the_listing_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        paths, w = make_run(tmp_path)
        _finished(w)
        w.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((paths.root / LISTING_NAME).stat().st_mode) == 0o600
    assert sorted(p.name for p in paths.root.iterdir() if p.name.startswith(".")) == []


def test_every_run_info_field_is_checked() -> None:
    assert list(listing_file.RUN_TYPES) == [f.name for f in fields(RunInfo)]
