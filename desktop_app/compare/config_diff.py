"""Which config keys tell the listed runs apart. Qt-free.

A run's config (the resolved TOML, as journaled) is flattened to dotted keys
(``{"optim": {"lr": 0.1}}`` -> ``optim.lr``); a key whose value is not the same in every
listed run, or that some runs lack, is a *differing* key: the runs table shows those as
columns by default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from trainer.config import flatten as flatten_tables

#: A flattened config value: what a table cell, a filter and a plot axis can use.
Scalar = bool | int | float | str | None


def flatten(config: Mapping[str, Any]) -> dict[str, Scalar]:
    """``config`` with nested tables as dotted keys (:func:`trainer.config.flatten`); lists
    and odd values become JSON text."""
    try:
        flat = flatten_tables(config)
    except RecursionError:  # a journal from elsewhere nested beyond reason
        return {}
    return {key: scalar(value) for key, value in flat.items()}


def scalar(value: Any) -> Scalar:
    """``value`` as a :data:`Scalar` (lists, tables and other types as compact JSON text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _same(values: list[Scalar]) -> bool:
    first = values[0]
    for value in values[1:]:
        if type(value) is not type(first) and not (_is_number(value) and _is_number(first)):
            return False
        if value != first and not (_is_nan(value) and _is_nan(first)):
            return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def all_keys(configs: Iterable[Mapping[str, Scalar]]) -> list[str]:
    """Every flattened key of any run, sorted."""
    keys: set[str] = set()
    for config in configs:
        keys.update(config)
    return sorted(keys)


def differing_keys(configs: Iterable[Mapping[str, Scalar]]) -> list[str]:
    """The keys whose value is not the same in every run (missing counts as a value), sorted;
    none for fewer than two runs."""
    configs = list(configs)
    if len(configs) < 2:
        return []
    missing = object()
    out = []
    for key in all_keys(configs):
        values = [c.get(key, missing) for c in configs]
        if any(v is missing for v in values) or not _same(values):  # type: ignore[arg-type]
            out.append(key)
    return out


def value_text(value: Scalar) -> str:
    """How a table cell shows a config value (numbers short, booleans as TOML writes them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
