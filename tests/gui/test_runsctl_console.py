"""The log console: bounded, coloured, filtered, and filled from the run's log files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QTextBlock, QTextFormat, QTextFragment
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.console import LEVEL_COLORS, MATCH_BACKGROUND, LogConsole
from desktop_app.runs_ctl.logtail import line_level
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui

MATCH = QColor(MATCH_BACKGROUND)


def make_logs(folder: Path, stdout: str, stderr: str = "") -> RunPaths:
    paths = RunPaths(folder).create()
    paths.stdout_log.write_text(stdout)
    paths.stderr_log.write_text(stderr)
    return paths


def colour_of(console: LogConsole, text: str) -> str | None:
    """The foreground colour of the first view line containing ``text`` (None: default)."""
    block = console.view.document().firstBlock()
    while block.isValid():
        if text in block.text():
            fmt = block.begin().fragment().charFormat()
            if not fmt.hasProperty(QTextFormat.Property.ForegroundBrush):
                return None
            return fmt.foreground().color().name()
        block = block.next()
    raise AssertionError(f"{text!r} is not shown")


def test_levels() -> None:
    assert line_level("Traceback (most recent call last):", "stdout") == "error"
    assert line_level("ValueError: bad", "stdout") == "error"
    assert line_level("2024 ERROR something", "stdout") == "error"
    assert line_level("error: the run x failed", "stdout") == "error"
    assert line_level("WARNING: slow disk", "stderr") == "warning"
    assert line_level("foo.py:3: UserWarning: careful", "stderr") == "warning"
    assert line_level('  File "x.py", line 3', "stderr") == "error"
    assert line_level("INFO step 10 loss 0.5", "stdout") == "info"


def test_lines_are_bounded_and_coloured(qtbot: QtBot, tmp_path: Path) -> None:
    console = LogConsole(max_lines=50)
    qtbot.addWidget(console)
    folder = str(tmp_path / "run")
    console.show_run(folder)
    for i in range(200):
        console.append(folder, f"step {i}", "stdout")
    console.append(folder, "WARNING: careful", "stdout")
    console.append(folder, "Traceback (most recent call last):", "stderr")
    console.append(folder, "plain stderr line", "stderr")
    assert console.line_count(folder) == 50
    text = console.visible_text().splitlines()
    assert len(text) == 50 and text[0] == "step 153" and text[-1] == "plain stderr line"
    assert colour_of(console, "step 199") is None
    assert colour_of(console, "WARNING") == QColor(LEVEL_COLORS["warning"]).name()
    assert colour_of(console, "Traceback") == QColor(LEVEL_COLORS["error"]).name()
    assert colour_of(console, "plain stderr") == QColor(LEVEL_COLORS["error"]).name()

    # Lines of a run not shown are kept, and shown when it is.
    other = str(tmp_path / "other")
    console.append(other, "from the other run", "stdout")
    assert "from the other run" not in console.visible_text()
    console.show_run(other)
    assert console.visible_text() == "from the other run"
    console.show_run(None)
    assert console.visible_text() == ""


def test_filter_hides_or_highlights(qtbot: QtBot, tmp_path: Path) -> None:
    console = LogConsole()
    qtbot.addWidget(console)
    folder = str(tmp_path / "run")
    console.show_run(folder)
    for i in range(30):
        console.append(folder, f"step {i} loss {1 / (i + 1):.3f}", "stdout")
    console.set_filter("STEP 2")
    shown = console.visible_text().splitlines()
    assert shown[0] == "step 2 loss 0.333" and len(shown) == 11  # 2, 20..29
    assert "11 of 30" in console.count_label.text()
    console.append(folder, "step 2000 new", "stdout")
    console.append(folder, "unrelated", "stdout")
    assert console.visible_text().splitlines()[-1] == "step 2000 new"

    console.only_matching.setChecked(False)
    assert len(console.visible_text().splitlines()) == 32
    block = console.view.document().findBlockByNumber(2)
    assert block.text() == "step 2 loss 0.333"
    highlighted = [
        f.text() for f in _fragments(block) if f.charFormat().background().color() == MATCH
    ]
    assert highlighted == ["step 2"]
    console.set_filter("")
    assert len(console.visible_text().splitlines()) == 32


def _fragments(block: QTextBlock) -> Iterator[QTextFragment]:
    it = block.begin()
    while not it.atEnd():
        yield it.fragment()
        it += 1


def test_loads_the_tail_of_the_log_files_and_follows_them(qtbot: QtBot, tmp_path: Path) -> None:
    lines = [f"line {i:05d} " + "x" * 40 for i in range(10_000)]  # ~530 KB
    paths = make_logs(
        tmp_path / "old-run",
        "\n".join(lines) + "\n",
        "Traceback (most recent call last):\nRuntimeError: boom\n",
    )
    console = LogConsole(max_lines=5000, tail_bytes=20_000, poll_ms=50)
    qtbot.addWidget(console)
    console.show_run(paths.root)
    text = console.visible_text().splitlines()
    assert text[-2:] == ["Traceback (most recent call last):", "RuntimeError: boom"]
    stdout_part = text[:-2]
    assert stdout_part[-1] == lines[-1]
    assert len(stdout_part) < 20_000 / 40 and all(ln in lines for ln in stdout_part)
    assert console.line_count(paths.root) == len(text)

    # The files grow (a run the app did not start): the console follows them.
    with paths.stdout_log.open("a") as fh:
        fh.write("new line one\nnew line t")
    qtbot.waitUntil(lambda: "new line one" in console.visible_text(), timeout=5_000)
    assert "new line t" not in console.visible_text()  # incomplete lines wait
    with paths.stdout_log.open("a") as fh:
        fh.write("wo\n")
    qtbot.waitUntil(lambda: "new line two" in console.visible_text(), timeout=5_000)
    assert console.visible_text().count("new line one") == 1


def test_piped_runs_do_not_read_their_files_twice(qtbot: QtBot, tmp_path: Path) -> None:
    paths = make_logs(tmp_path / "live", "")
    live = {str(paths.root)}
    console = LogConsole(poll_ms=30, is_piped=lambda f: f in live)
    qtbot.addWidget(console)
    console.show_run(paths.root)
    for i in range(5):
        with paths.stdout_log.open("a") as fh:
            fh.write(f"piped {i}\n")  # the trainer writes its file and its pipe
        console.append(str(paths.root), f"piped {i}", "stdout")
        qtbot.wait(40)
    live.clear()  # the child ended
    qtbot.wait(100)  # a poll notices
    with paths.stdout_log.open("a") as fh:
        fh.write("after the end\n")
    qtbot.waitUntil(lambda: "after the end" in console.visible_text(), timeout=5_000)
    assert console.visible_text().count("piped 3") == 1


def test_a_restarted_run_keeps_its_earlier_lines(qtbot: QtBot, tmp_path: Path) -> None:
    paths = make_logs(tmp_path / "again", "attempt 1 line\n", "attempt 1 warning: WARNING\n")
    live = {str(paths.root)}
    console = LogConsole(poll_ms=30, is_piped=lambda f: f in live)
    qtbot.addWidget(console)
    console.prepare(str(paths.root))  # Supervisor.started
    with paths.stdout_log.open("a") as fh:
        fh.write("attempt 2 line\n")
    console.append(str(paths.root), "attempt 2 line", "stdout")
    console.show_run(paths.root)
    qtbot.wait(100)
    assert console.visible_text().splitlines() == [
        "attempt 1 line", "attempt 1 warning: WARNING", "attempt 2 line",
    ]  # fmt: skip
