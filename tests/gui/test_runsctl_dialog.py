"""The new-run dialog: a form from the recipe's spec, errors at the field, a LaunchSpec out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.new_run_dialog import NewRunDialog, ask_new_run
from desktop_app.runs_ctl.spec import LaunchSpec
from trainer.config import ConfigSpec, Constraint

pytestmark = pytest.mark.gui


@pytest.fixture
def dialog(qtbot: QtBot, runs_dir: Path) -> NewRunDialog:
    dlg = NewRunDialog(runs_dir, gpus=lambda: ["Test GPU A", "Test GPU B"])
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def edit(dlg: NewRunDialog, key: str) -> QLineEdit:
    form = dlg.form()
    assert form is not None
    editor = form.fields[key].editor
    assert isinstance(editor, QLineEdit)
    return editor


def test_bad_value_shows_at_the_field_and_disables_launch(dialog: NewRunDialog) -> None:
    dialog.select_recipe("spirals")
    form = dialog.form()
    assert form is not None and "device" not in form.fields  # the device combo sets it
    assert dialog.launch_button.isEnabled()
    edit(dialog, "lr").setText("-1")
    field = form.fields["lr"]
    assert field.error.isVisible() and "out of range" in field.error.text()
    assert "> 0" in field.error.text()
    assert not dialog.launch_button.isEnabled()
    edit(dialog, "hidden").setText("wide")
    assert "expected an integer" in form.fields["hidden"].error.text()
    assert set(dialog.errors()) == {"lr", "hidden"}
    assert dialog.launch_spec() is None
    edit(dialog, "lr").setText("0.02")
    edit(dialog, "hidden").setText("32")
    assert not field.error.isVisible()
    assert dialog.launch_button.isEnabled()


def test_launch_returns_only_changed_overrides(
    qtbot: QtBot, dialog: NewRunDialog, runs_dir: Path
) -> None:
    dialog.select_recipe("spirals")
    edit(dialog, "lr").setText("0.02")
    edit(dialog, "hidden").setText("64")  # the default: not an override
    edit(dialog, "max_steps").setText("50")
    edit(dialog, "noise").setText("0")  # 0 for a float default is 0.0
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cuda:1"))
    dialog.name_edit.setText("my-run")
    with qtbot.waitSignal(dialog.accepted_spec) as blocker:
        dialog.launch_button.click()
    assert blocker.args == [
        LaunchSpec(
            "spirals", ["max_steps=50", "lr=0.02", "noise=0.0"], name="my-run",
            device="cuda:1", runs_dir=runs_dir,
        )
    ]  # fmt: skip
    assert not dialog.isVisible()


def test_defaults_launch_with_nothing_overridden(dialog: NewRunDialog, runs_dir: Path) -> None:
    dialog.select_recipe("grokking")
    assert dialog.launch_spec() == LaunchSpec("grokking", [], runs_dir=runs_dir)
    devices = [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())]
    assert devices == ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]


def test_name_must_be_valid_and_unused(dialog: NewRunDialog, runs_dir: Path) -> None:
    (runs_dir / "taken").mkdir()
    dialog.name_edit.setText("taken")
    assert "already exists" in dialog.name_error.text() and dialog.name_error.isVisible()
    assert not dialog.launch_button.isEnabled()
    dialog.name_edit.setText("a/b")
    assert "path separator" in dialog.name_error.text()
    dialog.name_edit.setText("fresh-name")
    assert not dialog.name_error.isVisible() and dialog.launch_button.isEnabled()


def test_script_with_key_value_list(dialog: NewRunDialog, tmp_path: Path, runs_dir: Path) -> None:
    dialog.select_script(tmp_path / "missing.py")
    assert "does not exist" in dialog.target_error.text()
    assert not dialog.launch_button.isEnabled()
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    dialog.select_script(script)
    assert dialog.target_error.text() == ""
    dialog.script_overrides.set_text("max_steps = 5\n# a comment\n\nlr=1e-3\nname=abc\n")
    assert dialog.launch_spec() == LaunchSpec(
        str(script), ["max_steps=5", "lr=0.001", 'name="abc"'], runs_dir=runs_dir
    )
    dialog.script_overrides.set_text("max_steps=5\noops\n")
    assert "line 2" in dialog.script_overrides.error.text()
    assert not dialog.launch_button.isEnabled()


@dataclass
class FakeRecipe:
    name: str
    summary: str
    config: ConfigSpec

    def spec(self) -> ConfigSpec:
        return self.config


def test_bools_and_choices_get_their_own_editors(qtbot: QtBot, runs_dir: Path) -> None:
    spec = ConfigSpec(
        defaults={"amp": False, "optimizer": "adam", "width": 8},
        constraints={"optimizer": Constraint(choices=("adam", "sgd"))},
    )
    dlg = NewRunDialog(runs_dir, recipes={"toy": FakeRecipe("toy", "a toy", spec)})
    qtbot.addWidget(dlg)
    form = dlg.form()
    assert form is not None
    amp, opt = form.fields["amp"].editor, form.fields["optimizer"].editor
    assert isinstance(amp, QCheckBox) and isinstance(opt, QComboBox)
    assert not dlg.device_combo.isEnabled()  # the recipe has no device key
    amp.setChecked(True)
    opt.setCurrentIndex(opt.findData("sgd"))
    spec_out = dlg.launch_spec()
    assert spec_out is not None and spec_out.overrides == ["amp=true", 'optimizer="sgd"']
    assert spec_out.device is None


def test_ask_new_run_awaits_the_signal(
    dialog: NewRunDialog, aloop: asyncio.AbstractEventLoop, runs_dir: Path
) -> None:
    dialog.hide()

    def once_open(action: Callable[[], object]) -> None:
        # Act once ask_new_run has opened the dialog (and so listens): on a busy machine a
        # fixed delay can fire before the coroutine's first step.
        if dialog.isVisible():
            action()
        else:
            QTimer.singleShot(10, lambda: once_open(action))

    once_open(dialog.launch_button.click)
    spec = aloop.run_until_complete(asyncio.wait_for(ask_new_run(dialog), 10))
    assert spec == LaunchSpec("spirals", [], runs_dir=runs_dir)
    once_open(dialog.reject)
    assert aloop.run_until_complete(asyncio.wait_for(ask_new_run(dialog), 10)) is None
