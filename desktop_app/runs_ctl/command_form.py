"""Two boxes of the new-run dialog: where a command's metrics come from (the capture modes),
and how many processes a recipe trains on (torchrun). Thin widgets over
:mod:`desktop_app.runs_ctl.command`.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from desktop_app.runs_ctl.command import PRINT_PRESETS, CaptureChoice, rendezvous_problem
from desktop_app.runs_ctl.config_form import ERROR_STYLE

#: torchrun's default number of elastic restarts (``trainer run --elastic-restarts``).
DEFAULT_ELASTIC_RESTARTS = 3


def error_label() -> QLabel:
    """A red, word-wrapped message label, hidden while empty."""
    label = QLabel()
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.hide()
    return label


class CaptureBox(QGroupBox):
    """The capture modes of a command run: W&B, TensorBoard (with its folder), printed lines
    (a preset or a regex). ``trainer.init`` in the command is always captured."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Metrics from the command", parent)
        self.api_label = QLabel("trainer.init() and run.log(): always captured")
        self.api_label.setStyleSheet("color: palette(mid);")
        self.wandb_check = QCheckBox("W&&B: the script's import wandb and wandb.log()")
        self.tensorboard_check = QCheckBox("TensorBoard event files in")
        self.tensorboard_dir = QLineEdit()
        self.tensorboard_dir.setPlaceholderText("runs (relative to the working directory)")
        self.print_combo = QComboBox()
        for value, label in PRINT_PRESETS:
            self.print_combo.addItem(label, value)
        self.regex_edit = QLineEdit()
        self.regex_edit.setPlaceholderText(r"e.g. step (?P<step>\d+) .* loss (?P<loss>[\d.]+)")
        self.error = error_label()
        grid = QGridLayout(self)
        grid.addWidget(self.api_label, 0, 0, 1, 2)
        grid.addWidget(self.wandb_check, 1, 0, 1, 2)
        grid.addWidget(self.tensorboard_check, 2, 0)
        grid.addWidget(self.tensorboard_dir, 2, 1)
        grid.addWidget(QLabel("Printed lines"), 3, 0)
        grid.addWidget(self.print_combo, 3, 1)
        grid.addWidget(self.regex_edit, 4, 1)
        grid.addWidget(self.error, 5, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.wandb_check.toggled.connect(self._on_edit)
        self.tensorboard_check.toggled.connect(self._on_edit)
        self.tensorboard_dir.textChanged.connect(self._on_edit)
        self.print_combo.currentIndexChanged.connect(self._on_edit)
        self.regex_edit.textChanged.connect(self._on_edit)
        self._on_edit()

    def choice(self) -> CaptureChoice:
        return CaptureChoice(
            wandb=self.wandb_check.isChecked(),
            tensorboard=self.tensorboard_check.isChecked(),
            tensorboard_dir=self.tensorboard_dir.text(),
            printed=str(self.print_combo.currentData() or ""),
            regex=self.regex_edit.text(),
        )

    def set_printed(self, preset: str, regex: str = "") -> None:
        """Choose a printed-lines preset ("", "kv", "dict" or "regex" with ``regex``)."""
        self.print_combo.setCurrentIndex(max(self.print_combo.findData(preset), 0))
        self.regex_edit.setText(regex)

    def errors(self) -> dict[str, str]:
        return {"capture": self.error.text()} if self.error.text() else {}

    def _on_edit(self, *_args: object) -> None:
        self.tensorboard_dir.setEnabled(self.tensorboard_check.isChecked())
        self.regex_edit.setVisible(self.print_combo.currentData() == "regex")
        problem = self.choice().problem()
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        self.changed.emit()


class ProcessesBox(QGroupBox):
    """A recipe on several processes (torchrun): processes per node, nodes, this node's rank,
    the rendezvous endpoint and the elastic restarts. One process on one node is a plain run."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, frozen: bool | None = None) -> None:
        super().__init__("Processes (torchrun)", parent)
        self.nproc = _spin(1, 256, 1)
        self.nproc.setToolTip("DistributedDataParallel on this many processes on this machine")
        self.nnodes = _spin(1, 4096, 1)
        self.node_rank = _spin(0, 4095, 0)
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("HOST:PORT, e.g. head:29500 (several nodes)")
        self.elastic = _spin(0, 1000, DEFAULT_ELASTIC_RESTARTS)
        self.elastic.setToolTip("times torchrun restarts all workers after one fails")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid);")
        self.error = error_label()
        form = QFormLayout(self)
        form.addRow("Processes per node", self.nproc)
        form.addRow("Nodes", self.nnodes)
        form.addRow("This node's rank", self.node_rank)
        form.addRow("Rendezvous", self.endpoint)
        form.addRow("Elastic restarts", self.elastic)
        form.addRow(self.note)
        form.addRow(self.error)
        self._form = form
        self.frozen = getattr(sys, "frozen", False) if frozen is None else frozen
        for spin in (self.nproc, self.nnodes, self.node_rank, self.elastic):
            spin.valueChanged.connect(self._on_edit)
        self.endpoint.textChanged.connect(self._on_edit)
        if self.frozen:
            for widget in (self.nproc, self.nnodes, self.node_rank, self.endpoint, self.elastic):
                widget.setEnabled(False)
            self.note.setText("torchrun cannot start from the bundle: install from source")
        self._on_edit()

    @property
    def distributed(self) -> bool:
        """More than one process in all: the run goes through torchrun."""
        return not self.frozen and (self.nproc.value() > 1 or self.nnodes.value() > 1)

    def spec_fields(self) -> dict[str, Any]:
        """The :class:`LaunchSpec` fields (none for a single process)."""
        if not self.distributed:
            return {}
        nnodes = self.nnodes.value()
        elastic = self.elastic.value()
        return {
            "nproc_per_node": self.nproc.value(),
            "nnodes": nnodes if nnodes > 1 else None,
            "node_rank": self.node_rank.value() if nnodes > 1 else None,
            "rdzv_endpoint": self.endpoint.text().strip() or None,
            "elastic_restarts": None if elastic == DEFAULT_ELASTIC_RESTARTS else elastic,
        }

    def errors(self) -> dict[str, str]:
        return {"processes": self.error.text()} if self.error.text() else {}

    def _on_edit(self, *_args: object) -> None:
        several_nodes = self.nnodes.value() > 1
        self._form.setRowVisible(self.node_rank, several_nodes)
        self._form.setRowVisible(self.endpoint, several_nodes)
        self._form.setRowVisible(self.elastic, self.distributed)
        if not self.frozen:
            total = self.nproc.value() * self.nnodes.value()
            self.note.setText(
                f"{total} processes: DDP on torchrun; batch_size is the global batch"
                if self.distributed
                else "one process (more: DDP on torchrun)"
            )
        problem = (
            rendezvous_problem(self.nnodes.value(), self.node_rank.value(), self.endpoint.text())
            if self.distributed
            else ""
        )
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        self.changed.emit()


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    return spin
