"""The run actions as QActions with shortcuts, and the controller that carries them out.

Every question (delete?, extend by how much?, export where?) is a non-modal dialog opened
with ``open()`` and answered through signals: no ``exec()``, no nested event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox, QWidget

from desktop_app.background import BackgroundIO
from desktop_app.runs_ctl.controls import (
    ACTIONS,
    Action,
    ActionRefused,
    check,
    delete_run,
    enabled_actions,
    export_csv,
    send_control,
    untrusted_command,
)
from desktop_app.runs_ctl.export_dialog import ExportDialog
from desktop_app.runs_ctl.new_run_dialog import GpuLister, GpuReader, NewRunDialog
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_ctl.supervisor import Supervisor
from trainer.errors import TrainDeskError
from trainer.inert import inert
from trainer.runs import RunSummary

log = logging.getLogger(__name__)

DEFAULT_EXTEND_STEPS = 1000


def create_actions(parent: QWidget) -> dict[Action, QAction]:
    """One QAction per :class:`Action`, with its shortcut, added to ``parent`` (so that the
    shortcuts work without a menu). Pause and Resume share Space: only one is ever enabled."""
    actions: dict[Action, QAction] = {}
    for action, info in ACTIONS.items():
        qaction = QAction(info.label, parent)
        qaction.setShortcut(QKeySequence(info.shortcut))
        qaction.setToolTip(f"{info.tip} ({info.shortcut})")
        qaction.setStatusTip(info.tip)
        qaction.setObjectName(f"action_{action.value}")
        parent.addAction(qaction)
        actions[action] = qaction
    return actions


class RunController(QObject):
    """Carries out the run actions on the selected run and keeps their enabled state.

    ``selected()`` returns the selected run (``MainWindow.selected_run``). Call
    :meth:`update` when the selection or the runs change.
    """

    #: A short confirmation for the status bar ("stop requested for x").
    message = Signal(str)
    #: An action failed or was refused; the reason, in one line.
    error = Signal(str)
    #: ``(run_folder)``: a run folder was deleted.
    deleted = Signal(str)
    #: ``(csv_path, points)``: an export finished.
    exported = Signal(str, int)
    #: ``(run_folder)``: a run was launched from the new-run dialog.
    launched = Signal(str)

    def __init__(
        self,
        supervisor: Supervisor,
        parent: QWidget,
        *,
        selected: Callable[[], RunSummary | None],
        io: BackgroundIO | None = None,
        gpus: GpuLister | None = None,
        read_gpus: GpuReader | None = None,
        tasks: BackgroundIO | None = None,
        open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl,
        selected_many: Callable[[], list[RunSummary]] | None = None,
    ) -> None:
        """``io`` runs exports off the GUI thread (synchronous without it); ``open_url``
        opens the run folder (replaceable in tests); ``selected_many`` gives every selected
        run, for exporting several at once; ``read_gpus`` reads the GPUs and their leases for
        the new-run dialog's picker, on the ``tasks`` worker."""
        super().__init__(parent)
        self.supervisor = supervisor
        self._parent = parent
        self._selected = selected
        self._selected_many = selected_many
        self._io = io
        self._gpus = gpus
        self._read_gpus = read_gpus
        self._tasks = tasks
        self._open_url = open_url
        self.dialog: QDialog | None = None  # the question or dialog open now, if any
        self.actions = create_actions(parent)
        handlers: dict[Action, Callable[[], object]] = {
            Action.NEW: self.new_run,
            Action.STOP: self.stop,
            Action.PAUSE: lambda: self._control(Action.PAUSE),
            Action.RESUME: lambda: self._control(Action.RESUME),
            Action.CHECKPOINT: lambda: self._control(Action.CHECKPOINT),
            Action.EXTEND: self.extend,
            Action.RESTART: self.restart,
            Action.OPEN_FOLDER: self.open_folder,
            Action.EXPORT_CSV: self.export,
            Action.DELETE: self.delete,
        }
        for action, handler in handlers.items():
            self.actions[action].triggered.connect(lambda _checked=False, h=handler: h())
        supervisor.started.connect(lambda _f: self.update())
        supervisor.finished.connect(lambda _f, _c, _x: self.update())
        supervisor.restarting.connect(lambda _f, _d, _m: self.update())
        supervisor.ended.connect(lambda _f, _s, _m: self.update())
        self.update()

    # ------------------------------------------------------------------ state
    def enabled(self) -> frozenset[Action]:
        """The actions that apply to the selected run now."""
        run = self._selected()
        if run is None:
            return enabled_actions(None)
        return enabled_actions(run.status, child=self.supervisor.is_supervised(run.path))

    def update(self) -> None:
        """Enable exactly the actions that apply to the selected run."""
        on = self.enabled()
        for action, qaction in self.actions.items():
            qaction.setEnabled(action in on)

    # ------------------------------------------------------------------ actions
    def new_run(self, runs_dir: Path | None = None) -> NewRunDialog:
        """Open the new-run dialog; its spec is launched through the supervisor."""
        dialog = NewRunDialog(
            runs_dir or self.supervisor.runs_dir, self._parent, gpus=self._gpus,
            io=self._tasks, read_gpus=self._read_gpus,
        )  # fmt: skip
        dialog.accepted_spec.connect(self._launch)
        dialog.finished.connect(dialog.deleteLater)
        self._show(dialog)
        return dialog

    def stop(self) -> None:
        """Stop gracefully (a checkpoint is saved): our child through the supervisor."""
        run = self._checked(Action.STOP)
        if run is None:
            return
        if self.supervisor.is_pending(run.path):
            self.supervisor.stop(run.path)
            self.message.emit(f"{run.name} will not be restarted")
            return
        if self.supervisor.is_running(run.path):
            self.supervisor.stop(run.path)
            step = self.supervisor.stop_requests(run.path)
            if step >= 3:
                self.message.emit(f"killed {run.name}")
                return
            if step == 2:
                self.message.emit(f"terminating {run.name}; Stop once more kills it")
                return
        elif not self._safely(lambda: send_control(Path(run.path), Action.STOP)):
            return
        self.message.emit(f"stop requested for {run.name}: it stops at its next safe point")

    def extend(self, steps: int | None = None) -> None:
        """Let the run train ``steps`` more steps (asks how many when None)."""
        run = self._checked(Action.EXTEND)
        if run is None:
            return
        if steps is not None:
            if self._safely(lambda: send_control(Path(run.path), Action.EXTEND, steps=steps)):
                self.message.emit(f"{run.name} trains {steps} more steps")
            return
        ask = QInputDialog(self._parent)
        ask.setWindowTitle("Extend run")
        ask.setLabelText(f"Train {run.name} for how many more steps?")
        ask.setInputMode(QInputDialog.InputMode.IntInput)
        ask.setIntRange(1, 1_000_000_000)
        ask.setIntValue(run.max_steps or DEFAULT_EXTEND_STEPS)
        ask.intValueSelected.connect(lambda n: self.extend(int(n)))
        ask.finished.connect(ask.deleteLater)
        self._show(ask)

    def restart(self, *, trusted: bool = False) -> None:
        """Restart a stopped, crashed or failed run from its last checkpoint, as our child.

        A run folder made elsewhere (copied here) that would run a command or script asks
        first, showing it (``trusted``: the user said yes).
        """
        run = self._checked(Action.RESTART)
        if run is None:
            return
        command = None if trusted else untrusted_command(Path(run.path))
        if command is not None:
            box = QMessageBox(self._parent)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("Run a command from elsewhere?")
            box.setText(f"The run {run.name} was not made in this folder on this machine.")
            box.setInformativeText(f"Restarting it runs:\n\n{inert(command)}\n\nRun it only "
                                   "if you know what it does.")  # fmt: skip
            yes = box.addButton("Run it", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.buttonClicked.connect(lambda b: self._on_trust_answer(b is yes))
            box.finished.connect(box.deleteLater)
            self._show(box)
            return
        if self.supervisor.resume(run.path, trust=trusted):
            self.message.emit(f"restarting {run.name} from its last checkpoint")
            self.update()

    def open_folder(self) -> None:
        run = self._checked(Action.OPEN_FOLDER)
        if run is not None and not self._open_url(QUrl.fromLocalFile(run.path)):
            self.error.emit(f"cannot open {run.path}")

    def export(self, path: Path | None = None, keys: Sequence[str] | None = None) -> None:
        """Export metrics as CSV; asks for the keys and the file when ``path`` is None."""
        run = self._checked(Action.EXPORT_CSV)
        if run is None:
            return
        chosen = self._selected_many() if self._selected_many is not None else [run]
        target: Path | list[Path] = (
            [Path(r.path) for r in chosen] if len(chosen) > 1 else Path(run.path)
        )
        if path is None:
            dialog = ExportDialog(target, self._parent)
            dialog.chosen.connect(lambda p, k: self._export(target, Path(p), k))
            dialog.finished.connect(dialog.deleteLater)
            self._show(dialog)
            return
        self._export(target, path, list(keys) if keys is not None else None)

    def delete(self, *, confirmed: bool = False) -> None:
        """Delete the selected run's folder after a confirmation; refused while it is live."""
        run = self._checked(Action.DELETE)
        if run is None:
            return
        if not confirmed:
            box = QMessageBox(self._parent)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("Delete run")
            box.setText(f"Delete the run {run.name} and all its files?")
            box.setInformativeText(f"{run.path}\nIts journal, checkpoints and logs are removed.")
            yes = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.buttonClicked.connect(lambda b: self._on_delete_answer(b is yes))
            box.finished.connect(box.deleteLater)
            self._show(box)
            return
        child = self.supervisor.is_running(run.path)
        if self._safely(lambda: delete_run(Path(run.path), confirmed=True, child=child)):
            self.message.emit(f"deleted {run.name}")
            self.deleted.emit(run.path)

    # ------------------------------------------------------------------ internals
    def _on_trust_answer(self, trusted: bool) -> None:
        if trusted:
            self.restart(trusted=True)

    def _on_delete_answer(self, confirmed: bool) -> None:
        if confirmed:
            self.delete(confirmed=True)

    def _checked(self, action: Action) -> RunSummary | None:
        run = self._selected()
        status = None if run is None else run.status
        child = run is not None and self.supervisor.is_supervised(run.path)
        try:
            check(action, status, child=child)
        except ActionRefused as exc:
            self.error.emit(str(exc))
            return None
        return run

    def _control(self, action: Action) -> None:
        run = self._checked(action)
        if run is not None and self._safely(lambda: send_control(Path(run.path), action)):
            self.message.emit(f"{action.value} requested for {run.name}")

    def _safely(self, job: Callable[[], object]) -> bool:
        try:
            job()
        except (ActionRefused, TrainDeskError, OSError) as exc:
            self.error.emit(str(exc))
            return False
        return True

    def _launch(self, spec: LaunchSpec) -> None:
        folder = self.supervisor.start(spec)
        if folder is not None:
            self.message.emit(f"launched {Path(folder).name}")
            self.launched.emit(folder)

    def _export(self, folder: Path | list[Path], path: Path, keys: list[str] | None) -> None:
        def done(count: int) -> None:
            self.message.emit(f"exported {count} points to {path}")
            self.exported.emit(str(path), count)

        def failed(exc: BaseException) -> None:
            self.error.emit(f"export to {path} failed: {exc}")

        job = lambda: export_csv(folder, path, keys)  # noqa: E731
        if self._io is None:
            try:
                done(job())
            except (ActionRefused, OSError) as exc:
                failed(exc)
        elif not self._io.submit(f"export-{path}", job, done, failed):
            self.error.emit(f"an export to {path} is already running")

    def _show(self, dialog: QDialog) -> None:
        self.dialog = dialog
        dialog.open()  # window-modal but not blocking: answers come through signals
