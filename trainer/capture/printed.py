"""Metrics from printed lines: a user's regex with named groups, or a preset.

A pattern's named group ``step`` gives the step; every other named group is a metric of that
name. Presets:

* ``kv``: ``step 12 loss=0.53 acc: 0.91`` style, any ``name=value`` / ``name: value`` pairs
  on a line that has a step (``step``, ``iter``, ``iteration``, ``global_step``);
* ``dict``: a Python or JSON dict printed per log, as Hugging Face's Trainer does
  (``{'loss': 0.53, 'learning_rate': 5e-05, 'epoch': 0.1}``); the step is its ``step`` /
  ``global_step`` key or else counts the lines.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable

from trainer.errors import UsageError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_STEP_RE = re.compile(r"\b(?:global_step|step|iteration|iter)\b\s*[=:]?\s*(\d+)", re.IGNORECASE)
_KV_RE = re.compile(rf"([A-Za-z_][\w./-]*)\s*[=:]\s*({_NUM})(?![\w.])")
_STEP_NAMES = {"step", "global_step", "iteration", "iter"}

Parser = Callable[[str], tuple[int | None, dict[str, float]] | None]


def parser_for(spec: str) -> Parser:
    """``kv``, ``dict``, or a regex with named groups (``step`` and metrics)."""
    if spec == "kv":
        return _kv
    if spec == "dict":
        return _dict
    try:
        pattern = re.compile(spec)
    except re.error as exc:
        raise UsageError(f"--capture print:{spec!r} is not a valid regex ({exc})") from None
    names = set(pattern.groupindex)
    if not names - {"step"}:
        raise UsageError(
            f"--capture print:{spec!r} has no named group for a metric: write it like "
            r"'step (?P<step>\d+) loss (?P<loss>[\d.]+)'"
        )

    def parse(line: str) -> tuple[int | None, dict[str, float]] | None:
        match = pattern.search(line)
        if match is None:
            return None
        groups = match.groupdict()
        step_text = groups.pop("step", None)
        metrics = {k: float(v) for k, v in groups.items() if v is not None and _is_num(v)}
        step = int(float(step_text)) if step_text is not None and _is_num(step_text) else None
        return (step, metrics) if metrics else None

    return parse


def _is_num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _kv(line: str) -> tuple[int | None, dict[str, float]] | None:
    step_match = _STEP_RE.search(line)
    if step_match is None:
        return None
    metrics = {k: float(v) for k, v in _KV_RE.findall(line) if k.lower() not in _STEP_NAMES}
    return (int(step_match.group(1)), metrics) if metrics else None


def _dict(line: str) -> tuple[int | None, dict[str, float]] | None:
    text = line.strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    body = text[start : end + 1]
    try:
        data = json.loads(body)
    except ValueError:
        try:
            data = ast.literal_eval(body)
        except (ValueError, SyntaxError):
            return None
    if not isinstance(data, dict):
        return None
    step = next((data.pop(k) for k in ("step", "global_step") if k in data), None)
    metrics = {
        str(k): float(v) for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }  # fmt: skip
    return (int(step) if isinstance(step, int | float) else None, metrics) if metrics else None
