"""A run's console as kept in memory, and the log files that fill it. Qt-free.

The trainer copies its console into ``logs/stdout.log`` and ``logs/stderr.log``. A run the
app launched streams its lines through the supervisor; any other run (started from a
terminal, or before the app restarted) is read from those files: a bounded tail first, then
whatever the files grow by.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trainer.paths import RunPaths

#: Lines kept per run.
MAX_LINES = 5000
#: How much of each log file is read when a run is first shown.
TAIL_BYTES = 200_000
#: Longest line kept; longer ones are cut (a progress bar without newlines, a data dump).
MAX_LINE_CHARS = 10_000
#: Most new bytes read from a log file per poll (the rest comes at the next polls).
MAX_READ_BYTES = 1_000_000

_ERROR_RE = re.compile(
    r"\b(ERROR|CRITICAL|FATAL)\b|^Traceback \(most recent call last\)|^error:|"
    r"^\w+(\.\w+)*(Error|Exception|Interrupt)\b"
)
_WARNING_RE = re.compile(r"\bWARN(ING)?\b|\b\w*Warning\b|^warning:")


def line_level(line: str, stream: str) -> str:
    """ "error", "warning" or "info": how a console line is coloured.

    Errors and tracebacks are errors; warnings are warnings even on stderr; anything else
    on stderr counts as an error (a traceback's body, a crash message).
    """
    if _ERROR_RE.search(line):
        return "error"
    if _WARNING_RE.search(line):
        return "warning"
    return "error" if stream == "stderr" else "info"


def clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


@dataclass
class _FileTail:
    """Where we are in one log file, and the unfinished last line read so far."""

    path: Path
    offset: int = 0
    partial: str = ""

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def skip_to_end(self) -> None:
        self.offset = self.size()
        self.partial = ""

    def read_new(self, limit: int = MAX_READ_BYTES) -> list[str]:
        """Complete lines added since the last read (a file that shrank is read anew)."""
        size = self.size()
        if size < self.offset:
            self.offset, self.partial = 0, ""
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(min(size - self.offset, limit))
        except OSError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data.decode("utf-8", "replace")).split("\n")
        return [ln.rstrip("\r") for ln in lines]

    def read_tail(self, max_bytes: int) -> list[str]:
        """The complete lines in the last ``max_bytes`` of the file; follows on from there."""
        start = max(0, self.size() - max_bytes)
        self.offset, self.partial = start, ""
        lines = self.read_new(limit=max_bytes)
        return lines[1:] if start > 0 else lines  # the first line was cut by the tail's start


@dataclass
class RunLog:
    """One run's console lines (bounded) and its log files' read positions."""

    folder: str
    max_lines: int = MAX_LINES
    lines: deque[tuple[str, str]] = field(init=False)
    piped: bool = False  # lines arrive from the supervisor (the files are not read)
    last_append: float = 0.0  # time.monotonic() of the last line from the supervisor
    files: dict[str, _FileTail] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = deque(maxlen=self.max_lines)
        paths = RunPaths(Path(self.folder))
        self.files = {"stdout": _FileTail(paths.stdout_log), "stderr": _FileTail(paths.stderr_log)}

    def add(self, line: str, stream: str) -> tuple[str, str]:
        item = (clip(line), stream)
        self.lines.append(item)
        return item

    def load_tail(self, max_bytes: int = TAIL_BYTES) -> list[tuple[str, str]]:
        """Read the tails of both log files (stdout's, then stderr's) into the buffer."""
        added = []
        for stream, tail in self.files.items():
            added += [self.add(ln, stream) for ln in tail.read_tail(max_bytes)]
        return added

    def skip_files(self) -> None:
        """Mark the files as read: their content came through the supervisor."""
        for tail in self.files.values():
            tail.skip_to_end()

    def follow(self) -> list[tuple[str, str]]:
        """New complete lines of the log files since the last call."""
        added = []
        for stream, tail in self.files.items():
            added += [self.add(ln, stream) for ln in tail.read_new()]
        return added

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)
