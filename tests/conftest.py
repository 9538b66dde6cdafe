"""Every test gets its own runs, settings and state dirs, and fails if it leaves a process behind.

The dirs (and so the GPU lease store) are per test, so the suite runs on several pytest-xdist
workers at once. ``--fast`` (``make check``) leaves out the tests that took longer than
``FAST_LIMIT_S`` in the durations recorded in ``tests/durations.json`` (``make durations``
records them); a test not recorded there counts as fast.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

DURATIONS = Path(__file__).with_name("durations.json")
#: A test recorded as taking longer than this (setup, call and teardown) is not "fast".
FAST_LIMIT_S = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"only the tests recorded in {DURATIONS.name} as under {FAST_LIMIT_S} s",
    )
    parser.addoption(
        "--record-durations",
        metavar="FILE",
        help="write each test's duration (setup + call + teardown) to FILE as JSON",
    )


#: Tests that start a training process other than through tests.helpers.cli/spawn (which skip
#: by themselves): the app launching runs. Where torch is missing (Python 3.12 and 3.13 in
#: `make test-pythons`) they are skipped.
NEEDS_TORCH = (
    "tests/gui/test_app_integration.py::",
    "tests/gui/test_chaos_gui.py::",
    "tests/gui/test_ranks.py::",
    "tests/gui/test_runsctl_supervisor.py::",
    "tests/gui/test_rough_edges_gui.py::test_a_run_launched_by_the_app_prints_progress_lines",
    "tests/gui/test_runsctl_controls.py::test_new_run_then_stop_then_restart",
    "tests/gui/test_trust_dialog.py::test_restart_of_a_copied_command_run_asks_and_shows_the_command",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.helpers import HAVE_TORCH

    if not HAVE_TORCH:
        skip = pytest.mark.skip(reason="needs torch (the app starts a training run)")
        for item in items:
            if item.nodeid.startswith(NEEDS_TORCH):
                item.add_marker(skip)
    if not config.getoption("--fast") or not DURATIONS.is_file():
        return
    recorded: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))
    fast, slow = [], []
    for item in items:
        (slow if recorded.get(item.nodeid, 0.0) > FAST_LIMIT_S else fast).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = fast


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # On pytest-xdist's controller too: it receives every worker's reports.
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--record-durations")
    if target and not hasattr(session.config, "workerinput"):  # the controller writes it
        rounded = {k: round(v, 2) for k, v in sorted(_durations.items())}
        Path(target).write_text(json.dumps(rounded, indent=0) + "\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("TRAINDESK_HOME", str(runs))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("TRAINDESK_LEASES", str(tmp_path / "xdg-state" / "leases.sqlite"))
    for name in ("TRAINDESK_RUN_DIR", "TRAINDESK_ENV", "TRAINDESK_ENTRY"):
        monkeypatch.delenv(name, raising=False)
    return runs


@pytest.fixture
def runs_dir(isolated_dirs: Path) -> Path:
    return isolated_dirs


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    leaked = [p for p in me.children(recursive=True) if p.pid not in before]
    alive = []
    for proc in leaked:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline()[:4])}")
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(leaked, timeout=5)
    assert not alive, f"test leaked processes: {alive}"
