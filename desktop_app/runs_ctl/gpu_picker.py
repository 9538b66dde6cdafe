"""The New Run dialog's GPUs-and-limits box: a thin widget over :class:`ResourceChoice`.

It shows the GPUs it is given (:meth:`GpuPicker.set_inventory`; read off the GUI thread by the
dialog) with their free memory and holders, and lets the user choose auto, none, any, N GPUs or
ticked devices, the GPU memory, sharing, policy and priority, and the run's limits.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.runs_ctl.config_form import ERROR_STYLE
from desktop_app.runs_ctl.gpu_model import DEFAULT_POLICY, GpuInventory, ResourceChoice
from trainer.resources.limits import DEFAULT_DISK_FLOOR
from trainer.resources.sizes import format_size
from trainer.resources.store import POLICIES

_MODE_LABELS = {
    "auto": "auto: one GPU if the run may use CUDA",
    "none": "none: train on the CPU",
    "any": "any one free GPU",
    "count": "this many GPUs",
    "devices": "the ticked GPUs",
}
READING_TEXT = "reading the GPUs…"
PRIORITY_RANGE = (-1000, 1000)


class GpuPicker(QWidget):
    """GPUs (mode, memory, sharing, policy, priority) and limits (RSS, threads, disk floor)."""

    #: Emitted when anything the user chose changed.
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inventory: GpuInventory | None = None
        self._errors: dict[str, QLabel] = {}

        self.status_label = QLabel(READING_TEXT)
        self.status_label.setWordWrap(True)
        self.gpu_list = QListWidget()
        self.gpu_list.setMaximumHeight(96)
        self.mode_combo = QComboBox()
        for mode, label in _MODE_LABELS.items():
            self.mode_combo.addItem(label, mode)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 64)
        self.gpu_mem_edit = QLineEdit()
        self.gpu_mem_edit.setPlaceholderText("any (e.g. 20GiB: needed free, and the cap)")
        self.share_check = QCheckBox("share the GPU with other sharing runs")
        self.policy_combo = QComboBox()
        for policy in POLICIES:
            self.policy_combo.addItem(policy, policy)
        self.priority_spin = QSpinBox()
        self.priority_spin.setRange(*PRIORITY_RANGE)
        self.priority_spin.setToolTip("queue priority: higher starts first")
        self.max_rss_edit = QLineEdit()
        self.max_rss_edit.setPlaceholderText("no limit (e.g. 8GiB)")
        self.cpu_threads_spin = QSpinBox()
        self.cpu_threads_spin.setRange(0, 1024)
        self.cpu_threads_spin.setSpecialValueText("default")
        self.disk_floor_edit = QLineEdit()
        self.disk_floor_edit.setPlaceholderText(f"{format_size(DEFAULT_DISK_FLOOR)} (default)")

        mode_row = QHBoxLayout()
        mode_row.addWidget(self.mode_combo, 1)
        mode_row.addWidget(self.count_spin)
        gpu_box = QGroupBox("GPUs")
        gpu_form = QFormLayout(gpu_box)
        gpu_form.addRow(self.status_label)
        gpu_form.addRow(self.gpu_list)
        gpu_form.addRow("Use", mode_row)
        gpu_form.addRow("", self._error_label("gpus"))
        gpu_form.addRow("GPU memory", self.gpu_mem_edit)
        gpu_form.addRow("", self._error_label("gpu_mem"))
        gpu_form.addRow("", self.share_check)
        gpu_form.addRow("Policy", self.policy_combo)
        gpu_form.addRow("Priority", self.priority_spin)
        limits_box = QGroupBox("Limits")
        limits_form = QFormLayout(limits_box)
        limits_form.addRow("Max RSS", self.max_rss_edit)
        limits_form.addRow("", self._error_label("max_rss"))
        limits_form.addRow("CPU threads", self.cpu_threads_spin)
        limits_form.addRow("Disk floor", self.disk_floor_edit)
        limits_form.addRow("", self._error_label("disk_floor"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(gpu_box)
        layout.addWidget(limits_box)

        self.mode_combo.currentIndexChanged.connect(lambda _i: self._on_edit())
        self.count_spin.valueChanged.connect(lambda _v: self._on_edit())
        self.gpu_list.itemChanged.connect(lambda _item: self._on_edit())
        self.share_check.toggled.connect(lambda _b: self._on_edit())
        self.policy_combo.currentIndexChanged.connect(lambda _i: self._on_edit())
        self.priority_spin.valueChanged.connect(lambda _v: self._on_edit())
        self.cpu_threads_spin.valueChanged.connect(lambda _v: self._on_edit())
        for edit in (self.gpu_mem_edit, self.max_rss_edit, self.disk_floor_edit):
            edit.textChanged.connect(lambda _t: self._on_edit())
        self._sync_enabled()

    # ------------------------------------------------------------------ public
    def set_inventory(self, inventory: GpuInventory) -> None:
        """Show ``inventory``; ticked devices stay ticked where they still exist."""
        ticked = set(self._ticked())
        self.inventory = inventory
        self.gpu_list.blockSignals(True)
        self.gpu_list.clear()
        for row in inventory.rows:
            item = QListWidgetItem(row.label())
            item.setData(Qt.ItemDataRole.UserRole, row.index)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if row.index in ticked else Qt.CheckState.Unchecked
            )
            self.gpu_list.addItem(item)
        self.gpu_list.blockSignals(False)
        text = inventory.summary()
        if inventory.error:
            text += f" (holders unknown: {inventory.error})"
        self.status_label.setText(text)
        self.status_label.setToolTip(inventory.unavailable_reason or "")
        if inventory.rows:
            self.count_spin.setMaximum(len(inventory.rows))
        self._on_edit()

    def set_read_error(self, message: str) -> None:
        """The GPUs could not be read: say so; auto and none stay available."""
        self.status_label.setText(f"cannot read the GPUs: {message}")

    def choice(self) -> ResourceChoice:
        """What the fields say now."""
        return ResourceChoice(
            mode=str(self.mode_combo.currentData()),
            count=self.count_spin.value(),
            devices=tuple(self._ticked()),
            gpu_mem=self.gpu_mem_edit.text().strip(),
            share=self.share_check.isChecked(),
            policy=str(self.policy_combo.currentData() or DEFAULT_POLICY),
            priority=self.priority_spin.value(),
            max_rss=self.max_rss_edit.text().strip(),
            cpu_threads=self.cpu_threads_spin.value(),
            disk_floor=self.disk_floor_edit.text().strip(),
        )

    def set_mode(self, mode: str) -> None:
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def tick(self, indexes: set[int]) -> None:
        """Tick exactly the GPUs in ``indexes``."""
        for row in range(self.gpu_list.count()):
            item = self.gpu_list.item(row)
            on = item.data(Qt.ItemDataRole.UserRole) in indexes
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def errors(self) -> dict[str, str]:
        """Field -> message, for what keeps Launch disabled."""
        return self.choice().problems(self.inventory)

    @property
    def cpu_only(self) -> bool:
        return self.inventory is not None and self.inventory.cpu_only

    # ------------------------------------------------------------------ internals
    def _error_label(self, key: str) -> QLabel:
        label = QLabel()
        label.setStyleSheet(ERROR_STYLE)
        label.setWordWrap(True)
        label.hide()
        self._errors[key] = label
        return label

    def _ticked(self) -> list[int]:
        return [
            int(item.data(Qt.ItemDataRole.UserRole))
            for item in (self.gpu_list.item(r) for r in range(self.gpu_list.count()))
            if item.checkState() == Qt.CheckState.Checked
        ]

    def _on_edit(self) -> None:
        self._sync_enabled()
        problems = self.errors()
        for key, label in self._errors.items():
            label.setText(problems.get(key, ""))
            label.setVisible(key in problems)
        self.changed.emit()

    def _sync_enabled(self) -> None:
        """A CPU-only machine: the GPU part is disabled (auto trains on the CPU there)."""
        cpu_only = self.cpu_only
        if cpu_only and self.mode_combo.currentData() not in ("auto", "none"):
            self.mode_combo.blockSignals(True)
            self.set_mode("auto")
            self.mode_combo.blockSignals(False)
        mode = self.mode_combo.currentData()
        gpu = not cpu_only and mode != "none"
        self.mode_combo.setEnabled(not cpu_only)
        self.gpu_list.setEnabled(not cpu_only and mode == "devices")
        self.gpu_list.setVisible(not cpu_only)
        self.count_spin.setEnabled(not cpu_only and mode == "count")
        for widget in (self.gpu_mem_edit, self.share_check, self.policy_combo, self.priority_spin):
            widget.setEnabled(gpu)
