"""Any command as a run from the app: the New Run dialog's Command target (command line,
working directory, capture modes), torchrun options for a recipe, the ``trainer run`` line
they make (parsed back with the trainer's own parser), and a real command run started by the
supervisor in its working directory."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.command import CaptureChoice, command_problem, rendezvous_problem
from desktop_app.runs_ctl.new_run_dialog import NewRunDialog
from desktop_app.runs_ctl.spec import LaunchSpec, run_args
from desktop_app.runs_ctl.supervisor import Supervisor
from tests.gui.supervisor_recorder import end_supervision, record
from tests.helpers import ROOT
from trainer.cli.main import build_parser, parse_args
from trainer.journal.reader import JournalReader

pytestmark = pytest.mark.gui

START_MS = 120_000  # the trainer imports torch first
PRINT_SCRIPT = ROOT / "tests" / "scripts" / "capture" / "print_script.py"


def parse(args: list[str]) -> tuple[argparse.Namespace, bool]:
    """``trainer`` parses ``args`` as it would: (the namespace, command mode?)."""
    ns = parse_args(build_parser(), args)
    return ns, bool(getattr(ns, "command_mode", False))


@pytest.fixture
def dialog(qtbot: QtBot, runs_dir: Path) -> NewRunDialog:
    dlg = NewRunDialog(runs_dir)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


# ---------------------------------------------------------------------- the command line
def test_a_command_spec_parses_back_as_a_command_run(tmp_path: Path, runs_dir: Path) -> None:
    command = ["python", "train.py", "--lr", "3e-4", "--name=inner", "run", "-x"]
    captures = ["wandb", "tensorboard=logs/tb", r"print:it (?P<step>\d+) loss (?P<loss>\S+)"]
    spec = LaunchSpec.for_command(
        command, tmp_path, captures=captures, overrides=["max_steps=50"], name="cmd",
        runs_dir=runs_dir, gpus="none", max_rss=8 * 2**30,
    )  # fmt: skip
    assert spec.is_command and not spec.is_script and spec.cwd == tmp_path
    assert spec.target == shlex.join(command) and spec.name_source == "train.py"
    args = run_args(spec)
    cut = args.index("--")
    assert args[cut + 1 :] == command  # the command after --, every option before it
    assert all(a.startswith("--") for a in args[1:cut])
    ns, is_command = parse(args)
    assert is_command
    assert [ns.target, *ns.script_args] == command
    assert ns.capture == captures
    assert ns.overrides == ["max_steps=50"] and ns.name == "cmd"
    assert ns.runs_dir == str(runs_dir) and not ns.quiet  # progress lines for the app
    assert ns.gpus == "none" and ns.nproc_per_node is None
    # A program named like an option value is still the command.
    spec = LaunchSpec.for_command(["cmd"], name="cmd", runs_dir=runs_dir)
    assert parse(run_args(spec))[1]
    name = LaunchSpec.for_command(["./go.sh"]).resolved().name
    assert name is not None and name.startswith("go.sh-")


def test_a_double_dash_inside_the_command_survives(runs_dir: Path) -> None:
    command = ["python", "-m", "tool", "--", "--flag"]
    ns, is_command = parse(run_args(LaunchSpec.for_command(command, runs_dir=runs_dir)))
    assert is_command and [ns.target, *ns.script_args] == command


def test_recipe_and_script_specs_are_not_command_runs(runs_dir: Path) -> None:
    spec = LaunchSpec(
        "spirals", ["lr=0.02"], name="ddp", runs_dir=runs_dir, nproc_per_node=4, nnodes=2,
        node_rank=1, rdzv_endpoint="head:29500", elastic_restarts=5,
    )  # fmt: skip
    ns, is_command = parse(run_args(spec))
    assert not is_command and ns.target == "spirals"
    got = (ns.nproc_per_node, ns.nnodes, ns.node_rank, ns.rdzv_endpoint, ns.elastic_restarts)
    assert got == (4, 2, 1, "head:29500", 5)
    ns, is_command = parse(run_args(LaunchSpec("train.py", runs_dir=runs_dir)))
    assert not is_command and ns.target == str(Path("train.py").resolve())
    assert ns.elastic_restarts == 3 and ns.nproc_per_node is None


def test_the_checks_say_what_is_wrong(tmp_path: Path) -> None:
    assert "not found on PATH" in command_problem("no-such-program-xyz --flag")
    assert "unclosed" in command_problem("python 'train.py").lower() or "quotation" in (
        command_problem("python 'train.py").lower()
    )
    assert "type the command" in command_problem("  ")
    assert command_problem(f"{shlex.quote(sys.executable)} -V") == ""
    script = tmp_path / "go.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert "does not exist" in command_problem("./go.sh")  # from the app's own directory
    assert "not executable" in command_problem("./go.sh", str(tmp_path))
    script.chmod(0o755)
    assert command_problem("./go.sh", str(tmp_path)) == ""
    assert CaptureChoice(printed="regex", regex="(").problem().startswith("not a valid regex: ")
    assert "no named group" in CaptureChoice(printed="regex", regex=r"(?P<step>\d+)").problem()
    assert CaptureChoice(tensorboard=True, printed="kv").specs() == ["tensorboard", "print:kv"]
    assert "rendezvous" in rendezvous_problem(2, 0, "")
    assert "below" in rendezvous_problem(2, 2, "h:1")
    assert "HOST:PORT" in rendezvous_problem(2, 1, "head")
    assert rendezvous_problem(2, 1, "head:29500") == ""


# ---------------------------------------------------------------------- the dialog
def test_command_mode_checks_the_command_and_the_regex(
    dialog: NewRunDialog, tmp_path: Path, runs_dir: Path
) -> None:
    dialog.select_command("no-such-program-xyz train.py", tmp_path)
    assert dialog.kind == "command" and dialog.captures.isVisible()
    assert not dialog.processes.isVisible() and not dialog.device_combo.isEnabled()
    assert dialog.command_error.isVisible() and "not found on PATH" in dialog.command_error.text()
    assert not dialog.launch_button.isEnabled() and dialog.launch_spec() is None
    dialog.cwd_edit.setText(str(tmp_path / "missing"))
    assert "does not exist" in dialog.command_error.text()
    dialog.cwd_edit.setText(str(tmp_path))
    python = shlex.quote(sys.executable)
    dialog.command_edit.setText(f"{python} train.py --lr 3e-4")
    assert not dialog.command_error.isVisible() and dialog.launch_button.isEnabled()
    assert "train-" in dialog.name_edit.placeholderText()

    dialog.captures.set_printed("regex", "loss (")
    assert dialog.captures.error.isVisible() and "not a valid regex" in dialog.captures.error.text()
    assert not dialog.launch_button.isEnabled() and "capture" in dialog.errors()
    dialog.captures.regex_edit.setText(r"it (?P<step>\d+) loss (?P<loss>[\d.]+)")
    assert not dialog.captures.error.isVisible() and dialog.launch_button.isEnabled()
    dialog.captures.wandb_check.setChecked(True)
    dialog.captures.tensorboard_check.setChecked(True)
    dialog.captures.tensorboard_dir.setText("logs/tb")
    dialog.script_overrides.set_text("max_steps=30\n")
    dialog.name_edit.setText("cmd")
    assert dialog.launch_spec() == LaunchSpec.for_command(
        [sys.executable, "train.py", "--lr", "3e-4"], tmp_path, overrides=["max_steps=30"],
        name="cmd", runs_dir=runs_dir,
        captures=["wandb", "tensorboard=logs/tb", r"print:it (?P<step>\d+) loss (?P<loss>[\d.]+)"],
    )  # fmt: skip

    dialog.select_recipe("spirals")  # the command's errors no longer count
    dialog.select_command("")
    assert "type the command" in dialog.command_error.text()


def test_a_recipe_on_several_processes(dialog: NewRunDialog, runs_dir: Path) -> None:
    dialog.select_recipe("spirals")
    box = dialog.processes
    assert box.isVisible() and not dialog.captures.isVisible() and box.spec_fields() == {}
    box.nproc.setValue(2)
    assert box.spec_fields() == {"nproc_per_node": 2, "nnodes": None, "node_rank": None,
                                 "rdzv_endpoint": None, "elastic_restarts": None}  # fmt: skip
    spec = dialog.launch_spec()
    assert spec is not None and spec.nproc_per_node == 2 and spec.target == "spirals"
    box.nnodes.setValue(2)
    assert "rendezvous" in box.error.text() and not dialog.launch_button.isEnabled()
    box.endpoint.setText("head:29500")
    box.node_rank.setValue(1)
    box.elastic.setValue(0)
    assert dialog.launch_button.isEnabled()
    spec = dialog.launch_spec()
    assert spec is not None
    got = (spec.nproc_per_node, spec.nnodes, spec.node_rank, spec.rdzv_endpoint)
    assert got == (2, 2, 1, "head:29500") and spec.elastic_restarts == 0
    box.nproc.setValue(3)  # 6 processes do not share a batch of 128
    assert "does not divide" in dialog.processes_error.text()
    assert not dialog.launch_button.isEnabled()


def test_the_bundle_cannot_start_torchrun(qtbot: QtBot) -> None:
    from desktop_app.runs_ctl.command_form import ProcessesBox

    box = ProcessesBox(frozen=True)
    qtbot.addWidget(box)
    box.nproc.setValue(4)
    assert not box.nproc.isEnabled() and "bundle" in box.note.text()
    assert not box.distributed and box.spec_fields() == {}


# ---------------------------------------------------------------------- a real command run
def test_the_supervisor_runs_a_command_in_its_working_directory(
    qtbot: QtBot, runs_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(
        "import os, runpy, sys\n"
        "open('cwd.txt', 'w').write(os.getcwd())\n"
        f"sys.argv = [{str(PRINT_SCRIPT)!r}, '5']\n"
        f"runpy.run_path({str(PRINT_SCRIPT)!r}, run_name='__main__')\n"
    )
    supervisor = Supervisor(runs_dir)
    rec = record(supervisor)
    try:
        spec = LaunchSpec.for_command([sys.executable, "train.py"], work, captures=["print:kv"],
                                      name="cmd")  # fmt: skip
        folder = supervisor.start(spec)
        assert folder == str(runs_dir / "cmd")
        assert supervisor.working_directory(folder) == str(work.resolve())
        qtbot.waitUntil(lambda: bool(rec.ended), timeout=START_MS)
    finally:
        end_supervision(qtbot, supervisor)
    assert rec.ended[0][:2] == (folder, "finished"), rec.text(folder)
    assert (work / "cwd.txt").read_text() == str(work.resolve())
    with JournalReader(Path(folder)) as reader:
        info = reader.run_info()
        loss = reader.series("loss")
    assert info.kind == "command" and info.status == "finished"
    assert loss.steps.tolist() == [1, 2, 3, 4, 5]
