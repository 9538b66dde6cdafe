"""A reader hammering every journal of a runs dir, and `trainer show` in a loop, during chaos.

Used as a context manager around a chaos test; on exit it raises if anything saw
"database is locked" (or "busy"), and it checks that it really read.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from tests.helpers import trainer_env
from trainer.errors import JournalError
from trainer.journal import JournalReader
from trainer.paths import JOURNAL_NAME

_LOCKED = ("database is locked", "database is busy")


class Hammer:
    """Reads ``runs_dir``'s journals flat out on a thread; runs ``trainer show`` in a loop."""

    def __init__(self, runs_dir: Path, *, show: str | None = None) -> None:
        self.runs_dir = runs_dir
        self.show = show
        self.reads = 0
        self.shows = 0
        self.locked: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read_loop, name="hammer-read")]
        if show is not None:
            self._threads.append(threading.Thread(target=self._show_loop, name="hammer-show"))

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        if kind is None:
            assert not self.locked, f"'database is locked' seen: {self.locked[:3]}"
            assert self.reads > 0, "the hammer never read a journal"

    def _read_loop(self) -> None:
        readers: dict[Path, JournalReader] = {}
        try:
            while not self._stop.is_set():
                for journal in self.runs_dir.glob(f"*/{JOURNAL_NAME}"):
                    try:
                        reader = readers.get(journal)
                        if reader is None:
                            reader = readers[journal] = JournalReader(journal)
                        reader.tail()
                        reader.run_info()
                        self.reads += 1
                    except JournalError as exc:
                        self._check(str(exc))
                        stale = readers.pop(journal, None)
                        if stale is not None:
                            stale.close()
                self._stop.wait(0.005)
        finally:
            for reader in readers.values():
                reader.close()

    def _show_loop(self) -> None:
        assert self.show is not None
        while not self._stop.is_set():
            done = subprocess.run(
                [sys.executable, "-m", "trainer", "show", self.show,
                 f"--runs-dir={self.runs_dir}"],
                capture_output=True, text=True, timeout=60, env=trainer_env(),
            )  # fmt: skip
            self._check(done.stdout + done.stderr)
            self.shows += 1

    def _check(self, text: str) -> None:
        if any(s in text.lower() for s in _LOCKED):
            self.locked.append(text.strip()[-300:])
