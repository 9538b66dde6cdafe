"""Every test gets its own runs, settings and state dirs, and fails if it leaves a process behind.

The dirs (and so the GPU lease store) are per test, so the suite runs on several pytest-xdist
workers at once. ``--fast`` (``make check``) leaves out the tests that took longer than
``FAST_LIMIT_S`` in the durations recorded in ``tests/durations.json`` (``make durations``
records them); a test not recorded there counts as fast.
"""

from __future__ import annotations

import gc
import json
import os
import shutil

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
    if not DURATIONS.is_file():
        return
    recorded: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))
    if config.getoption("--fast"):
        # A module's own module-scoped fixture is paid by whichever of its tests runs first:
        # every test that shares one with a slow test is slow too (else the W&B comparison's
        # minute is paid by the next test on the list).
        shared = {f for item in items for f in _module_fixtures(item)
                  if recorded.get(_plain(item.nodeid), 0.0) > FAST_LIMIT_S}  # fmt: skip
        fast, slow = [], []
        for item in items:
            too_long = recorded.get(_plain(item.nodeid), 0.0) > FAST_LIMIT_S
            (slow if too_long or shared & _module_fixtures(item) else fast).append(item)
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = fast
    longest_first(items, recorded)


def _module_fixtures(item: pytest.Item) -> set[str]:
    """The fixtures wider than a test that the test's own module defines."""
    module = _plain(item.nodeid).split("::", 1)[0]
    info = getattr(item, "_fixtureinfo", None)
    return {
        f"{module}::{name}"
        for name, defs in (info.name2fixturedefs.items() if info is not None else ())
        for d in defs
        if d.scope != "function" and d.baseid == module
    }


def _groups(item: pytest.Item) -> list[str]:
    return sorted(
        {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
         for m in item.iter_markers("xdist_group")}
    )  # fmt: skip


def _plain(nodeid: str) -> str:
    """The node id without the ``@group`` that ``--dist loadgroup`` appends (xdist's rule)."""
    return nodeid.rsplit("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid


def _unit(item: pytest.Item) -> str:
    """What ``--dist loadgroup`` hands to one worker as a whole: an ``xdist_group``, else the
    module (its tests go to either worker, one at a time)."""
    groups = _groups(item)
    return "@" + "_".join(groups) if groups else item.nodeid.split("::", 1)[0]


def longest_first(items: list[pytest.Item], recorded: dict[str, float]) -> None:
    """Order the groups and modules by their recorded time, the longest first: the workers
    take work in this order, so what is left at the end is short and both finish together
    (in file order the W&B comparison, one group of about a minute, came last and kept one
    worker busy alone). Inside a module the tests keep their order, so a module-scoped
    fixture is made once per worker; the sort is stable, the same on every worker."""
    totals: dict[str, float] = {}
    for item in items:
        unit = _unit(item)
        totals[unit] = totals.get(unit, 0.0) + recorded.get(_plain(item.nodeid), 0.0)
    items.sort(key=lambda item: -totals[_unit(item)])


class _GroupIds:
    """``--dist loadgroup`` keeps an ``xdist_group`` on one worker by appending ``@group`` to
    the node ids a worker reports. pytest-xdist 3.8 writes the suffix where pytest 9.2 no
    longer reads it (pytest-dev/pytest-xdist#1386), so the groups were silently spread over
    both workers: two torchrun tests at once, the W&B comparison and the packaging builds
    made twice. Until xdist is fixed this plugin appends the suffix where pytest reads it."""

    @pytest.hookimpl(trylast=True)  # after xdist's own attempt
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):
            return
        for item in items:
            groups = _groups(item)
            if groups and _plain(item.nodeid) == item.nodeid and hasattr(item, "_id"):
                from _pytest.nodeid import NodeId  # pytest >= 9.2: the structured node id

                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection left (the test modules and all they import: Qt, numpy, the
    trainer; some 250,000 objects, alive to the end anyway) out of the garbage collector's
    sight. A full collection then walks only what the tests made since: the GUI tests'
    leak check runs one after every test (tests/gui/conftest.py), and in a worker that had
    collected the whole suite each took 0.15-0.2 s of CPU (104 GUI tests: 21.8 s of CPU
    in all; 1.9 s frozen). What a test makes is collected as before."""
    gc.collect()
    gc.freeze()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_GroupIds(), "traindesk-xdist-group-ids")


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # On pytest-xdist's controller too: it receives every worker's reports.
    nodeid = _plain(report.nodeid)
    _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration


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


@pytest.fixture(scope="session")
def _finished_tiny_original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run of tiny_train.py per worker, made by a real `trainer run` in a runs,
    data and state dir of its own; tests get copies (``finished_tiny``)."""
    from tests.helpers import TINY, cli

    root = tmp_path_factory.mktemp("finished-tiny")
    dirs = {name: str(root / name.lower()) for name in
            ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}  # fmt: skip
    done = cli("run", str(TINY), "--name", "tiny", "--quiet", "--set", "max_steps=4",
               "--set", "checkpoint_every=2", "--runs-dir", str(root / "runs"),
               TRAINDESK_HOME=str(root / "runs"), TRAINDESK_LEASES=str(root / "leases.sqlite"),
               **dirs)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root / "runs" / "tiny"


@pytest.fixture
def finished_tiny(_finished_tiny_original: Path, runs_dir: Path) -> Path:
    """``runs_dir / "tiny"``: a finished 4-step run of tiny_train.py (checkpoints at steps 2
    and 4), for a test that only needs a run that ended. A copy of one run made once per
    worker: a new trainer process per test cost 2.5 s of CPU, a copy a few milliseconds. The
    copy is recorded as made here, as the run it copies was (so `trainer resume` takes it
    without --trust); the runs dir is made private, as `trainer run` makes it."""
    from trainer import trust
    from trainer.journal import JournalReader

    runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = runs_dir / "tiny"
    shutil.copytree(_finished_tiny_original, folder)
    with JournalReader(folder) as reader:
        info = reader.run_info()
    trust.record(folder, info.id, info.entry)
    return folder


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
