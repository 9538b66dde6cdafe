"""A reader hammering every journal of a runs dir, and `trainer show` in a loop, during chaos.

Used as a context manager around a chaos test; on exit it raises if anything saw
"database is locked" (or "busy"), and it checks that it really read and showed.

The `trainer show` loop is one child process calling the CLI's ``main`` again and again
(``tests/scripts/show_loop.py``), a round every 0.1 s at most: a new ``trainer show`` process
per round spent 0.4 s of CPU starting up, ran 2 or 3 times a second, and kept a core busy
through every chaos test (10-15 s of CPU each); one round in a live process is about 10 ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from tests.helpers import ROOT, trainer_env
from trainer.errors import JournalError
from trainer.journal import JournalReader
from trainer.paths import JOURNAL_NAME

LOCKED = ("database is locked", "database is busy")
SHOW_LOOP = ROOT / "tests" / "scripts" / "show_loop.py"
#: At most one `trainer show` round per SHOW_PACE_S seconds.
SHOW_PACE_S = 0.1


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
        self._shower: subprocess.Popen[str] | None = None

    def __enter__(self) -> Hammer:
        if self.show is not None:
            self._shower = subprocess.Popen(
                [sys.executable, str(SHOW_LOOP), str(SHOW_PACE_S), self.show,
                 f"--runs-dir={self.runs_dir}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=trainer_env(),
            )  # fmt: skip
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._shower is not None:
            self._end_shows(self._shower)
        for thread in self._threads:
            thread.join(60)
        if kind is None:
            assert not self.locked, f"'database is locked' seen: {self.locked[:3]}"
            assert self.reads > 0, "the hammer never read a journal"
            assert self.show is None or self.shows > 0, "the hammer never ran `trainer show`"

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

    def _end_shows(self, shower: subprocess.Popen[str]) -> None:
        """Close the show loop's stdin (its signal to end), then collect what it saw."""
        try:
            out, err = shower.communicate(input="", timeout=60)
        except subprocess.TimeoutExpired:
            shower.kill()
            out, err = shower.communicate()
        self._check(err)
        for line in out.splitlines():
            record = json.loads(line)
            if "locked" in record:
                self.locked.append(record["locked"])
            self.shows = record.get("shows", self.shows)

    def _check(self, text: str) -> None:
        if any(s in text.lower() for s in LOCKED):
            self.locked.append(text.strip()[-300:])
