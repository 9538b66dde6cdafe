"""The W&B stand-in (``--capture wandb``) records what the real ``wandb`` records.

Every scenario of tests/wandb_compare/scenarios.py runs twice: under the real package in
offline mode (its run file read back record by record) and under TrainDesk's stand-in (its
capture file read back). Each row compares the chart points (key, step, value), the config,
the summary's numbers and what the script printed; any difference fails that row.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT
from tests.wandb_compare.scenarios import SCENARIOS
from trainer.cli.command_run import SHIM_DIR

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("wandb") is None, reason="the real wandb is not installed"
    ),
    # One worker runs the module, so the scenarios (the module fixture) run once; the first
    # test pays for them all: about 80 s for 37 scenarios on 2 busy cores.
    pytest.mark.xdist_group("wandb_compare"),
    pytest.mark.timeout(900),
]

RUNNER = ROOT / "tests" / "wandb_compare" / "runner.py"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WANDB_", "TRAINDESK_")) and k != "PYTHONPATH"}  # fmt: skip
    env.update(extra)
    return env


def _run(name: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True)
    done = subprocess.run([sys.executable, str(RUNNER), name], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=120)  # fmt: skip
    return done


def real(name: str, folder: Path) -> dict[str, Any]:
    """The scenario under the real wandb, offline (unless the scenario sets WANDB_MODE)."""
    from tests.wandb_compare.records import points_of_run, run_files

    env = _env({"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(folder),
                "WANDB_CONFIG_DIR": str(folder / "config"),
                "WANDB_CACHE_DIR": str(folder / "cache"),
                "WANDB_DATA_DIR": str(folder / "data"), "WANDB_DISABLE_GIT": "true",
                **SCENARIOS[name][1]})  # fmt: skip
    done = _run(name, folder, env)
    outcome: dict[str, Any] = {"points": [], "config": {}, "summary": {}, "stdout": done.stdout,
                               "rc": done.returncode}  # fmt: skip
    for index, (display, path) in enumerate(run_files(folder / "wandb"), start=1):
        prefix = "" if index == 1 else f"{display or f'run-{index}'}/"
        one = points_of_run(path, prefix)
        outcome["points"] += one["points"]
        outcome["config"].update(one["config"])
        outcome["summary"].update(one["summary"])
    return outcome


def ours(name: str, folder: Path) -> dict[str, Any]:
    """The scenario under TrainDesk's stand-in, read back from its capture file."""
    capture = folder / "capture.jsonl"
    env = _env({"PYTHONPATH": str(SHIM_DIR), "TRAINDESK_CAPTURE_FILE": str(capture),
                "TRAINDESK_RUN_DIR": str(folder), **SCENARIOS[name][1]})  # fmt: skip
    done = _run(name, folder, env)
    outcome: dict[str, Any] = {"points": [], "config": {}, "summary": {}, "stdout": done.stdout,
                               "rc": done.returncode}  # fmt: skip
    lines = capture.read_text(encoding="utf-8").splitlines() if capture.exists() else []
    for record in map(json.loads, lines):
        if record["kind"] == "log":
            outcome["points"] += [(k, record["step"], v) for k, v in record["metrics"].items()]
        elif record["kind"] == "config":
            outcome["config"].update(record["config"])
        elif record["kind"] == "event" and record["event"] == "summary":
            outcome["summary"].update(record["data"])
    return outcome


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    """Every scenario on both sides, a few processes at a time (the real wandb mostly waits
    for its own service process)."""
    root = tmp_path_factory.mktemp("wandb-compare")
    names = list(SCENARIOS)

    def both(index: int) -> tuple[Any, Any]:
        name = names[index]
        return real(name, root / f"{index}-real"), ours(name, root / f"{index}-ours")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(both, range(len(names))))
    return dict(zip(names, results, strict=True))


def _same(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> bool:
    def key(p: tuple[str, int, float]) -> tuple[str, int, str]:
        return p[0], p[1], repr(p[2])

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        if x[:2] != y[:2]:
            return False
        if not (x[2] == y[2] or (math.isnan(x[2]) and math.isnan(y[2]))):
            return False
    return True


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_stand_in_records_what_wandb_records(
    name: str, outcomes: dict[str, tuple[Any, Any]]
) -> None:
    wandb_side, ours_side = outcomes[name]
    assert wandb_side["rc"] == 0, wandb_side
    assert ours_side["rc"] == 0, ours_side
    assert _same(ours_side["points"], wandb_side["points"]), (
        f"points differ:\n ours  {sorted(ours_side['points'])}\n wandb "
        f"{sorted(wandb_side['points'])}"
    )
    assert ours_side["config"] == wandb_side["config"]
    assert ours_side["summary"].keys() == wandb_side["summary"].keys()
    for key, value in wandb_side["summary"].items():
        assert ours_side["summary"][key] == value or (math.isnan(value) and math.isnan(
            ours_side["summary"][key])), key  # fmt: skip
    assert ours_side["stdout"] == wandb_side["stdout"]


def test_the_table_has_the_behaviours_the_issue_lists() -> None:
    assert len(SCENARIOS) >= 29


THROUGH_THE_TRAINER = [
    "log(step=N) then log() lands at N",
    "define_metric glob with step_metric",
    "init, finish, init: two runs kept apart",
    "NaN and infinity are kept",
    "summary written at exit without finish()",
]


@pytest.mark.parametrize("name", THROUGH_THE_TRAINER)
def test_the_journal_holds_the_points_wandb_records(
    name: str, outcomes: dict[str, tuple[Any, Any]], runs_dir: Path, tmp_path: Path
) -> None:
    """End to end: `trainer run --capture wandb -- python SCRIPT`, the journal against the
    real wandb's records (NaN: a gap and a warning event, the journal's documented rule)."""
    from tests.helpers import cli
    from trainer.export import read_series
    from trainer.journal import JournalReader

    run = f"wb{THROUGH_THE_TRAINER.index(name)}"
    done = cli("run", "--name", run, "--quiet", "--capture", "wandb", "--", sys.executable,
               str(RUNNER), name, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    wandb_side, _ = outcomes[name]
    want = {(k, s, v) for k, s, v in wandb_side["points"] if v == v}
    nan_keys = {k for k, _s, v in wandb_side["points"] if v != v}
    got = set()
    for key, series in read_series(runs_dir / run).items():
        got |= {(key, s, v) for s, v in zip(series.steps.tolist(), series.values.tolist(),
                                             strict=True)}  # fmt: skip
    assert got == want
    with JournalReader(runs_dir / run) as reader:
        events = list(reader.events())
    warned = {e.data["key"] for e in events if e.kind == "warning" and e.data and e.data.get("nan")}
    assert warned == nan_keys
    summaries = [e.data for e in events if e.kind == "summary"]
    merged = {k: v for data in summaries for k, v in (data or {}).items()}
    assert merged.keys() == wandb_side["summary"].keys()
