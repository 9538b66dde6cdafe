"""The new-run dialog: a recipe (on one process or several), a script or any command (with
its working directory and capture modes), its config, a device, GPUs and limits, and a name
-> a LaunchSpec.

Never ``exec()`` it (a nested event loop breaks qasync's tasks): call :meth:`NewRunDialog.open`
and listen to :attr:`NewRunDialog.accepted_spec`, or ``await ask_new_run(dialog)``.
Recipes are read through ``recipe.spec()`` only (TOML, no torch). The GPUs and their leases
are read by ``read_gpus`` on the ``io`` worker, never on the GUI thread; without an ``io`` the
picker offers auto and none only.

Why over 400 lines: one form for four kinds of target (recipe, torchrun, script, command) with
their config, device, GPU and limit fields and their validation; the LaunchSpec and the GPU
picker are in their own modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.runs_ctl.command import command_problem, cwd_problem, split_command
from desktop_app.runs_ctl.command_form import CaptureBox, ProcessesBox, error_label
from desktop_app.runs_ctl.config_form import (
    COMMAND_LABEL,
    SCRIPT_LABEL,
    ConfigForm,
    ScriptOverrides,
)
from desktop_app.runs_ctl.gpu_model import GpuInventory
from desktop_app.runs_ctl.gpu_picker import GpuPicker
from desktop_app.runs_ctl.spec import LaunchSpec, name_problem
from trainer.config import ConfigSpec
from trainer.errors import TrainDeskError
from trainer.recipes import RECIPES
from trainer.runs import default_run_name

log = logging.getLogger(__name__)

#: Lists the GPUs to offer as ``cuda:N`` (their names); may raise, then none are offered.
GpuLister = Callable[[], Sequence[str]]
#: Reads the GPUs and their leases (blocking; run on the ``io`` worker).
GpuReader = Callable[[], GpuInventory]


class RecipeLike(Protocol):
    """What the dialog needs of a recipe (``trainer.recipes.Recipe``)."""

    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    def spec(self) -> ConfigSpec: ...


class NewRunDialog(QDialog):
    """Pick a recipe, a script or a command, edit its config, choose device and name, then
    Launch."""

    #: Emitted with the :class:`LaunchSpec` when the user clicks Launch.
    accepted_spec = Signal(object)

    def __init__(
        self,
        runs_dir: Path,
        parent: QWidget | None = None,
        *,
        recipes: Mapping[str, RecipeLike] | None = None,
        gpus: GpuLister | None = None,
        io: BackgroundIO | None = None,
        read_gpus: GpuReader | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New run")
        self.resize(980, 680)
        self.runs_dir = Path(runs_dir)
        self.recipes: Mapping[str, RecipeLike] = dict(RECIPES) if recipes is None else recipes
        self._forms: dict[str, ConfigForm] = {}
        self._file_dialog: QFileDialog | None = None
        self._dir_dialog: QFileDialog | None = None

        # -- what to run
        self.recipe_radio = QRadioButton("Built-in recipe")
        self.script_radio = QRadioButton("Script")
        self.command_radio = QRadioButton("Command")
        group = QButtonGroup(self)
        group.addButton(self.recipe_radio)
        group.addButton(self.script_radio)
        group.addButton(self.command_radio)
        self.recipe_combo = QComboBox()
        for name in self.recipes:
            self.recipe_combo.addItem(name, name)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid);")
        self.script_edit = QLineEdit()
        self.script_edit.setPlaceholderText("path/to/train.py")
        self.browse_button = QPushButton("Browse…")
        self.target_error = error_label()
        self.command_edit = QLineEdit()
        self.command_edit.setPlaceholderText(
            "python train.py --lr 3e-4   (or ./train.sh, accelerate launch …)"
        )
        self.cwd_label = QLabel("Working dir")
        self.cwd_edit = QLineEdit()
        self.cwd_edit.setPlaceholderText(f"working directory (default: {Path.cwd()})")
        self.cwd_button = QPushButton("Folder…")
        self.command_error = error_label()
        target_box = QGroupBox("Train")
        grid = QGridLayout(target_box)
        grid.addWidget(self.recipe_radio, 0, 0)
        grid.addWidget(self.recipe_combo, 0, 1, 1, 2)
        grid.addWidget(self.summary, 1, 1, 1, 2)
        grid.addWidget(self.script_radio, 2, 0)
        grid.addWidget(self.script_edit, 2, 1)
        grid.addWidget(self.browse_button, 2, 2)
        grid.addWidget(self.target_error, 3, 1, 1, 2)
        grid.addWidget(self.command_radio, 4, 0)
        grid.addWidget(self.command_edit, 4, 1, 1, 2)
        grid.addWidget(self.cwd_label, 5, 0)
        grid.addWidget(self.cwd_edit, 5, 1)
        grid.addWidget(self.cwd_button, 5, 2)
        grid.addWidget(self.command_error, 6, 1, 1, 2)
        grid.setColumnStretch(1, 1)

        # -- its config: one form per recipe, or the script's key=value list
        self.config_stack = QStackedWidget()
        self.script_overrides = ScriptOverrides()
        self.config_stack.addWidget(self.script_overrides)
        self._pages: dict[str, QScrollArea] = {}
        config_box = QGroupBox("Config")
        QVBoxLayout(config_box).addWidget(self.config_stack)
        self.captures = CaptureBox()  # a command's
        self.processes = ProcessesBox()  # a recipe's
        self.processes_error = error_label()

        # -- GPUs and limits
        self.resources = GpuPicker()
        self.gpus_error = error_label()

        # -- where and as what
        self.device_combo = QComboBox()
        self._fill_devices(gpus)
        self.name_edit = QLineEdit()
        self.name_error = error_label()
        run_box = QGroupBox("Run")
        self._run_form = QFormLayout(run_box)
        self._run_form.addRow("Device", self.device_combo)
        self._run_form.addRow("Name", self.name_edit)
        self._run_form.addRow("", self.name_error)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.launch_button = self.buttons.addButton(
            "Launch", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.launch_button.setDefault(True)
        self.buttons.accepted.connect(self._on_launch)
        self.buttons.rejected.connect(self.reject)

        middle = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(config_box, 1)
        left.addWidget(self.captures)
        middle.addLayout(left, 3)
        side = QVBoxLayout()
        side.addWidget(self.resources)
        side.addWidget(self.gpus_error)
        side.addWidget(self.processes)
        side.addWidget(self.processes_error)
        side.addStretch(1)
        middle.addLayout(side, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(target_box)
        layout.addLayout(middle, 1)
        layout.addWidget(run_box)
        layout.addWidget(self.buttons)

        group.buttonToggled.connect(lambda _b, on: self._on_kind() if on else None)
        self.recipe_combo.currentIndexChanged.connect(lambda _i: self._on_kind())
        self.script_edit.textChanged.connect(lambda _t: self.revalidate())
        self.browse_button.clicked.connect(self._browse)
        self.command_edit.textChanged.connect(lambda _t: self._on_command_edit())
        self.cwd_edit.textChanged.connect(lambda _t: self.revalidate())
        self.cwd_button.clicked.connect(self._browse_cwd)
        self.captures.changed.connect(self.revalidate)
        self.processes.changed.connect(self.revalidate)
        self.script_overrides.changed.connect(self.revalidate)
        self.name_edit.textChanged.connect(lambda _t: self.revalidate())
        self.device_combo.currentIndexChanged.connect(lambda _i: self.revalidate())
        self.resources.changed.connect(self.revalidate)
        if self.recipes:
            self.recipe_radio.setChecked(True)
        else:
            self.script_radio.setChecked(True)
            self.recipe_radio.setEnabled(False)
        self._on_kind()
        if io is not None and read_gpus is not None:
            self.read_gpus(io, read_gpus)
        else:
            self.resources.status_label.setText("GPUs not listed here: choose auto or none")

    def read_gpus(self, io: BackgroundIO, read: GpuReader) -> bool:
        """Read the GPUs and their holders on ``io``'s worker; the picker shows them when the
        answer comes (False: a read is in flight already)."""

        def done(inventory: GpuInventory) -> None:
            if shiboken6.isValid(self):  # the dialog may be gone by then
                self.set_inventory(inventory)

        def failed(exc: BaseException) -> None:
            log.warning("cannot read the GPUs: %s", exc)
            if shiboken6.isValid(self):
                self.resources.set_read_error(str(exc) or type(exc).__name__)

        return io.submit(f"gpu-inventory-{id(self)}", read, done, failed)

    def set_inventory(self, inventory: GpuInventory) -> None:
        """Show ``inventory`` in the picker, and offer its GPUs as devices."""
        self.resources.set_inventory(inventory)
        if inventory.rows and self.device_combo.findData("cuda") < 0:
            self.device_combo.blockSignals(True)
            self.device_combo.addItem("cuda (the first GPU it gets)", "cuda")
            for row in inventory.rows:
                self.device_combo.addItem(f"cuda:{row.index} — {row.name}", f"cuda:{row.index}")
            self.device_combo.blockSignals(False)
        self.revalidate()

    # ------------------------------------------------------------------ public
    @property
    def kind(self) -> str:
        """What the dialog launches: "recipe", "script" or "command"."""
        if self.command_radio.isChecked():
            return "command"
        return "script" if self.script_radio.isChecked() else "recipe"

    @property
    def is_script(self) -> bool:
        return self.script_radio.isChecked()

    @property
    def is_command(self) -> bool:
        return self.command_radio.isChecked()

    def select_recipe(self, name: str) -> None:
        self.recipe_radio.setChecked(True)
        self.recipe_combo.setCurrentIndex(self.recipe_combo.findData(name))

    def select_script(self, path: str | Path) -> None:
        self.script_radio.setChecked(True)
        self.script_edit.setText(str(path))

    def select_command(self, command_line: str, cwd: str | Path | None = None) -> None:
        """Run a command line (split like a shell does) in ``cwd`` (None: left as it is)."""
        self.command_radio.setChecked(True)
        if cwd is not None:
            self.cwd_edit.setText(str(cwd))
        self.command_edit.setText(command_line)

    def form(self) -> ConfigForm | None:
        """The config form of the selected recipe (None for a script, a command or an
        unreadable spec)."""
        if self.kind != "recipe":
            return None
        return self._forms.get(self.recipe_combo.currentData())

    def errors(self) -> dict[str, str]:
        """Everything that keeps Launch disabled: field -> message."""
        errors: dict[str, str] = {}
        if self.target_error.text():
            errors["target"] = self.target_error.text()
        if self.command_error.text():
            errors["command"] = self.command_error.text()
        if self.name_error.text():
            errors["name"] = self.name_error.text()
        editor = self.form() if self.kind == "recipe" else self.script_overrides
        if editor is not None:
            errors.update(editor.errors())
        if self.is_command:
            errors.update(self.captures.errors())
        elif self.kind == "recipe":
            errors.update(self.processes.errors())
            if self.processes_error.text():
                errors["processes"] = self.processes_error.text()
        errors.update(self.resources.errors())
        if self.gpus_error.text():
            errors["device"] = self.gpus_error.text()
        return errors

    def launch_spec(self) -> LaunchSpec | None:
        """The spec the dialog describes now, or None while anything is invalid."""
        self.revalidate()
        if self.errors():
            return None
        form = self.form()
        editor = form if self.kind == "recipe" else self.script_overrides
        overrides = editor.overrides() if editor is not None else []
        name = self.name_edit.text().strip() or None
        resources = self.resources.choice().spec_fields()
        if self.is_command:
            cwd = self.cwd_edit.text().strip()
            return LaunchSpec.for_command(
                split_command(self.command_edit.text()), cwd or None, overrides=overrides,
                name=name, runs_dir=self.runs_dir, captures=self.captures.choice().specs(),
                **resources,
            )  # fmt: skip
        device = self.device_combo.currentData()
        default_device = form.spec.defaults.get("device", "auto") if form else "auto"
        if not self.device_combo.isEnabled() or device == default_device:
            device = None
        if self.is_script:
            target = self.script_edit.text().strip()
        else:
            target = self.recipe_combo.currentData()
            resources.update(self.processes.spec_fields())
        return LaunchSpec(target, overrides, name=name, device=device, runs_dir=self.runs_dir,
                          **resources)  # fmt: skip

    def revalidate(self) -> None:
        """Check the target and the name (the config editors check themselves)."""
        command = self.is_command
        self.target_error.setText("" if command else self._target_problem())
        self.target_error.setVisible(bool(self.target_error.text()))
        self.command_error.setText(self._command_problem() if command else "")
        self.command_error.setVisible(bool(self.command_error.text()))
        self.processes_error.setText(self._processes_problem())
        self.processes_error.setVisible(bool(self.processes_error.text()))
        self.name_error.setText(self._name_problem())
        self._run_form.setRowVisible(self.name_error, bool(self.name_error.text()))
        self.gpus_error.setText(self._device_problem())
        self.gpus_error.setVisible(bool(self.gpus_error.text()))
        self.launch_button.setEnabled(not self.errors())

    # ------------------------------------------------------------------ internals
    def _fill_devices(self, gpus: GpuLister | None) -> None:
        self.device_combo.addItem("auto (a GPU if there is one)", "auto")
        self.device_combo.addItem("cpu", "cpu")
        names: Sequence[str] = []
        if gpus is not None:
            try:
                names = list(gpus())
            except Exception as exc:  # a broken driver must not break the dialog
                log.warning("cannot list the GPUs: %s", exc)
        if names:
            self.device_combo.addItem("cuda (the first GPU)", "cuda")
        for index, gpu in enumerate(names):
            self.device_combo.addItem(f"cuda:{index} — {gpu}", f"cuda:{index}")

    def _on_kind(self, *_args: object) -> None:
        kind = self.kind
        self.recipe_combo.setEnabled(kind == "recipe")
        self.script_edit.setEnabled(kind == "script")
        self.browse_button.setEnabled(kind == "script")
        for widget in (self.command_edit, self.cwd_label, self.cwd_edit, self.cwd_button):
            widget.setEnabled(kind == "command")
        self.captures.setVisible(kind == "command")
        self.processes.setVisible(kind == "recipe")
        if kind == "recipe":
            self._show_recipe(self.recipe_combo.currentData())
        else:
            self.config_stack.setCurrentWidget(self.script_overrides)
            self.script_overrides.label.setText(SCRIPT_LABEL if kind == "script" else COMMAND_LABEL)
            self.summary.hide()
            self.device_combo.setEnabled(kind == "script")  # a command picks its own device
            if kind == "script":
                self.name_edit.setPlaceholderText(self._auto_name(self.script_edit.text() or "run"))
            else:
                self._on_command_edit()
        self.revalidate()

    def _on_command_edit(self) -> None:
        if self.is_command:
            try:
                argv = split_command(self.command_edit.text())
            except ValueError:
                argv = []
            source = LaunchSpec.for_command(argv).name_source if argv else "command"
            self.name_edit.setPlaceholderText(self._auto_name(source))
        self.revalidate()

    def _show_recipe(self, name: str) -> None:
        recipe = self.recipes[name]
        self.summary.setText(recipe.summary)
        self.summary.show()
        self.name_edit.setPlaceholderText(self._auto_name(name))
        form = self._forms.get(name)
        if form is None:
            try:
                spec = recipe.spec()
            except TrainDeskError as exc:
                self.summary.setText(f"cannot read the recipe's config: {exc}")
                self.config_stack.setCurrentWidget(self.script_overrides)
                return
            form = ConfigForm(spec, hidden={"device"})
            form.changed.connect(self.revalidate)
            self._forms[name] = form
            page = QScrollArea()
            page.setWidgetResizable(True)
            page.setWidget(form)
            self._pages[name] = page
            self.config_stack.addWidget(page)
        self.config_stack.setCurrentWidget(self._pages[name])
        has_device = "device" in form.spec.defaults
        self.device_combo.setEnabled(has_device)
        if has_device:
            index = self.device_combo.findData(form.spec.defaults["device"])
            self.device_combo.setCurrentIndex(max(index, 0))

    def _target_problem(self) -> str:
        if not self.is_script:
            if self.form() is None:
                return "this recipe's config cannot be read"
            return ""
        text = self.script_edit.text().strip()
        if not text:
            return "choose a script.py to run"
        path = Path(text).expanduser()
        if not path.is_file():
            return f"{text} does not exist"
        if path.suffix != ".py":
            return f"{path.name} is not a Python script (.py)"
        return ""

    def _command_problem(self) -> str:
        cwd = self.cwd_edit.text()
        return cwd_problem(cwd) or command_problem(self.command_edit.text(), cwd)

    def _processes_problem(self) -> str:
        """A recipe's global batch must divide among its processes (the trainer's rule)."""
        form = self.form()
        if form is None or not self.processes.distributed or "batch_size" not in form.fields:
            return ""
        total = self.processes.nproc.value() * self.processes.nnodes.value()
        batch = form.values().get("batch_size")
        if isinstance(batch, int) and not isinstance(batch, bool) and batch % total:
            return f"batch_size {batch} does not divide among {total} processes"
        return ""

    def _device_problem(self) -> str:
        device = str(self.device_combo.currentData() or "")
        if (
            self.device_combo.isEnabled()
            and device.startswith("cuda")
            and self.resources.choice().mode == "none"
        ):
            return f"device {device} needs a GPU: choose GPUs auto or any, or the device cpu"
        return ""

    def _name_problem(self) -> str:
        return name_problem(self.name_edit.text(), self.runs_dir)

    @staticmethod
    def _auto_name(target: str) -> str:
        return f"automatic, e.g. {default_run_name(target)}"

    def _browse(self) -> None:
        if self._file_dialog is None:
            dialog = QFileDialog(self, "Choose a training script", filter="Python scripts (*.py)")
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
            dialog.fileSelected.connect(self.select_script)
            self._file_dialog = dialog
        self._file_dialog.open()  # not exec(): no nested event loop

    def _browse_cwd(self) -> None:
        if self._dir_dialog is None:
            dialog = QFileDialog(self, "The command's working directory")
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
            dialog.fileSelected.connect(self.cwd_edit.setText)
            self._dir_dialog = dialog
        self._dir_dialog.open()

    def _on_launch(self) -> None:
        spec = self.launch_spec()
        if spec is None:
            return
        self.accepted_spec.emit(spec)
        self.accept()


async def ask_new_run(dialog: NewRunDialog) -> LaunchSpec | None:
    """Open ``dialog`` and wait (without a nested event loop) for a spec, or None if cancelled."""
    future: asyncio.Future[LaunchSpec | None] = asyncio.get_running_loop().create_future()

    def done(spec: LaunchSpec | None) -> None:
        if not future.done():
            future.set_result(spec)

    dialog.accepted_spec.connect(done)
    dialog.rejected.connect(lambda: done(None))
    dialog.open()
    try:
        return await future
    finally:
        dialog.accepted_spec.disconnect(done)
        if dialog.isVisible():
            dialog.reject()
