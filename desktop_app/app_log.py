"""The app's own log: JSON lines in the user log folder, rotated by size. Qt-free.

Each line is one record, in the trainer's format (:class:`trainer.jsonlog.JsonLineFormatter`):
``time``, ``iso``, ``level``, ``component`` (the logger's name), ``run`` (the run the record is
about, where known: ``log.info(..., extra={"run": name})``), ``event`` (the message) and any
``extra={"fields": {...}}``; a traceback when there is one. The file is
``<platformdirs user log dir>/app.jsonl`` (on Linux ``~/.local/state/traindesk/log/``),
or ``$TRAINDESK_LOG_DIR/app.jsonl``; it rotates at 5 MB and 3 old files are kept.

The level is the ``log_level`` setting, or ``$TRAINDESK_LOG_LEVEL`` (which wins). The console
(stderr) keeps its plain INFO lines.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from trainer.jsonlog import JsonLineFormatter
from trainer.paths import make_private_dir
from trainer.settings import APP_LOG_DIR, LOG_LEVEL

log = logging.getLogger(__name__)

ENV_LOG_LEVEL = LOG_LEVEL.name
ENV_LOG_DIR = APP_LOG_DIR.name
LOG_NAME = "app.jsonl"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def log_dir() -> Path:
    """``$TRAINDESK_LOG_DIR``, else the platformdirs user log folder of ``traindesk``."""
    env = APP_LOG_DIR.raw()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_log_dir("traindesk", appauthor=False))


def log_path() -> Path:
    return log_dir() / LOG_NAME


def resolve_level(setting: str) -> tuple[int, str | None]:
    """The level to log at: ``$TRAINDESK_LOG_LEVEL`` if set and valid, else ``setting``.
    The second item is a warning for a bad environment value (None if fine)."""
    env = LOG_LEVEL.get().lower()
    if env and env in LEVELS:
        return LEVELS[env], None
    warning = None
    if env:
        warning = (
            f"${ENV_LOG_LEVEL}={env!r} is not a level (use {', '.join(LEVELS)}): "
            f"logging at {setting!r}"
        )
    return LEVELS.get(setting, logging.INFO), warning


class AppLogFormatter(JsonLineFormatter):
    """The trainer's JSON lines, with the run (and attempt) taken from each record
    (``extra={"run": ...}``); null when the record is not about one run."""

    def __init__(self) -> None:
        super().__init__(run_id="", attempt=0)

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        fields["run"] = getattr(record, "run", None)
        fields["attempt"] = getattr(record, "attempt", None)
        return super().format(logging.makeLogRecord({**record.__dict__, "fields": fields}))


class AppLog:
    """The JSON-lines handler on the root logger, installed by :meth:`install`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else log_path()
        self.handler: RotatingFileHandler | None = None
        self._root_level: int | None = None

    def install(self, setting: str = "info") -> str | None:
        """Start logging to :attr:`path`; returns a warning to show (bad env level, or the
        folder cannot be written: the app then runs without its file log), else None."""
        level, warning = resolve_level(setting)
        try:
            make_private_dir(self.path.parent)
            handler = RotatingFileHandler(
                self.path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
            self.path.chmod(0o600)
        except OSError as exc:
            return f"cannot write the app log in {self.path.parent}: {exc.strerror or exc}"
        handler.setFormatter(AppLogFormatter())
        root = logging.getLogger()
        self._root_level = root.level
        self.handler = handler
        root.addHandler(handler)
        self.set_level(level)
        fields = {"path": str(self.path), "level": logging.getLevelName(level)}
        log.info("app log started", extra={"fields": fields})
        if warning:
            log.warning("%s", warning)
        return warning

    def set_level(self, level: int | str) -> None:
        """Log at ``level`` (a number, or a setting's name; the env variable still wins)."""
        if isinstance(level, str):
            level = resolve_level(level)[0]
        if self.handler is None:
            return
        self.handler.setLevel(level)
        root = logging.getLogger()
        # The root passes on what the file wants, and at least INFO (the console's level).
        root.setLevel(min(level, logging.INFO))

    def close(self) -> None:
        """Remove the handler and close the file; idempotent."""
        if self.handler is None:
            return
        root = logging.getLogger()
        root.removeHandler(self.handler)
        self.handler.close()
        self.handler = None
        if self._root_level is not None:
            root.setLevel(self._root_level)
