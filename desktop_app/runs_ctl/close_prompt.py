"""Closing the window while runs are live children: stop them, leave them running, or cancel.

The question is a non-modal message box answered through signals; :func:`ask_close` awaits
it on a future (no ``exec()``, no nested event loop), and :func:`close_with_children` does
the whole close: ask, then stop or detach the children through the supervisor.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from desktop_app.runs_ctl.supervisor import Supervisor


class CloseChoice(StrEnum):
    STOP = "stop"
    LEAVE = "leave"
    CANCEL = "cancel"


class ClosePrompt(QObject):
    """ "Stop N running runs or leave them running?" with Stop runs / Leave running / Cancel."""

    #: The :class:`CloseChoice` value, once.
    answered = Signal(str)

    def __init__(self, parent: QWidget, running: int) -> None:
        super().__init__(parent)
        runs = "1 running run" if running == 1 else f"{running} running runs"
        self.box = QMessageBox(parent)
        self.box.setIcon(QMessageBox.Icon.Question)
        self.box.setWindowTitle("Runs are still training")
        self.box.setText(f"Stop {runs} or leave {'it' if running == 1 else 'them'} running?")
        self.box.setInformativeText(
            "Stopped runs save a checkpoint and can be restarted later. Runs left running "
            "keep training and writing their logs; TrainDesk shows them again when it starts."
        )
        self.stop_button = self.box.addButton("Stop runs", QMessageBox.ButtonRole.AcceptRole)
        self.leave_button = self.box.addButton(
            "Leave running", QMessageBox.ButtonRole.DestructiveRole
        )
        self.cancel_button = self.box.addButton(QMessageBox.StandardButton.Cancel)
        self.box.setDefaultButton(self.stop_button)
        self.box.setEscapeButton(self.cancel_button)
        self.box.buttonClicked.connect(self._on_click)
        self.box.rejected.connect(lambda: self._answer(CloseChoice.CANCEL))
        self._done = False

    def open(self) -> None:
        """Show the question; the answer comes as :attr:`answered`."""
        self.box.open()

    def _on_click(self, button: QAbstractButton) -> None:
        if button is self.stop_button:
            self._answer(CloseChoice.STOP)
        elif button is self.leave_button:
            self._answer(CloseChoice.LEAVE)
        else:
            self._answer(CloseChoice.CANCEL)

    def _answer(self, choice: CloseChoice) -> None:
        if not self._done:
            self._done = True
            self.answered.emit(choice.value)
            self.box.hide()


async def ask_close(parent: QWidget, running: int) -> CloseChoice:
    """Ask what to do with ``running`` live runs; awaits the answer on a future."""
    prompt = ClosePrompt(parent, running)
    future: asyncio.Future[CloseChoice] = asyncio.get_running_loop().create_future()
    prompt.answered.connect(
        lambda value: None if future.done() else future.set_result(CloseChoice(value))
    )
    prompt.open()
    try:
        return await future
    finally:
        prompt.box.hide()
        prompt.box.deleteLater()
        prompt.deleteLater()


async def close_with_children(
    parent: QWidget,
    supervisor: Supervisor,
    *,
    timeout: float = 30.0,
    choice: CloseChoice | None = None,
) -> bool:
    """Before the window closes: if runs are live children, ask (unless ``choice`` is given:
    the "on quit" setting), then stop them (waiting up to ``timeout`` s before terminating)
    or detach them. Runs waiting to restart are not restarted. False if the user cancelled."""
    running = len(supervisor.running())
    if not running:
        supervisor.cancel_restarts("restart cancelled: the app is closing")
        return True
    if choice is None:
        choice = await ask_close(parent, running)
    if choice == CloseChoice.CANCEL:
        return False
    await supervisor.shutdown(stop_children=choice == CloseChoice.STOP, timeout=timeout)
    return True
