"""Structured logs: one JSON object per line (time, level, component, run, event, fields)."""

from __future__ import annotations

import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from trainer import settings


class JsonLineFormatter(logging.Formatter):
    def __init__(self, run_id: str, attempt: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.attempt = attempt

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "iso": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
            "level": record.levelname.lower(),
            "component": record.name,
            "run": self.run_id,
            "attempt": self.attempt,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


#: The structured log's level: DEBUG, INFO (default), WARNING or ERROR.
ENV_LOG_LEVEL = settings.LOG_LEVEL.name


def log_level(default: int = logging.INFO) -> int:
    """``$TRAINDESK_LOG_LEVEL`` as a logging level (an unknown name gives ``default``)."""
    name = settings.LOG_LEVEL.get().upper()
    level = logging.getLevelName(name) if name else default
    return level if isinstance(level, int) else default


def attach_run_log(path: Path, run_id: str, attempt: int) -> logging.Handler:
    """Send the ``trainer`` loggers' records to ``path`` as JSON lines (rotated at 10 MB), at
    ``$TRAINDESK_LOG_LEVEL`` (default INFO)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = RotatingFileHandler(path, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8")
    handler.setFormatter(JsonLineFormatter(run_id, attempt))
    level = log_level()
    handler.setLevel(level)
    logger = logging.getLogger("trainer")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    path.chmod(0o600)
    return handler
