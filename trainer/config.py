"""Training configs: TOML, layered, validated. Qt-free and torch-free; configs are data only.

Layers, lowest first: a recipe's built-in defaults (``resources/recipes/<name>.toml``) < a
``--config`` file < an environment overlay (``[env.NAME]`` of either file, chosen with
``--env NAME`` or ``$TRAINDESK_ENV``) < ``--set key=value``. Nested tables are flattened to
dotted keys (``[model] width = 64`` is ``model.width``).

A defaults file may constrain its keys in a ``[constraints]`` table::

    [constraints]
    lr = { min = 0.0, exclusive_min = true }
    device = { choices = ["auto", "cpu", "cuda"], pattern = "^(auto|cpu|cuda(:[0-9]+)?)$" }
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer import settings
from trainer.errors import ConfigError

ENV_OVERLAY = settings.CONFIG_ENV.name
Scalar = bool | int | float | str


@dataclass(frozen=True)
class Constraint:
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    choices: tuple[Scalar, ...] | None = None
    pattern: str | None = None
    help: str = ""


@dataclass(frozen=True)
class ConfigSpec:
    """A recipe's defaults, constraints and environment overlays."""

    defaults: dict[str, Scalar]
    constraints: dict[str, Constraint] = field(default_factory=dict)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "built-in defaults"
    strict: bool = True  # unknown keys are errors

    @classmethod
    def open(cls) -> ConfigSpec:
        """A spec that accepts any key (a user's script declares its own config)."""
        return cls(defaults={}, strict=False, source="script")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; ConfigError with the file and the parser's reason otherwise."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def load_spec(path: Path) -> ConfigSpec:
    """Read a recipe's defaults file: ``[config]``, ``[constraints]`` and ``[env.*]``."""
    data = read_toml(path)
    constraints = {}
    for key, raw in flatten_constraints(data.get("constraints", {})).items():
        if "choices" in raw:
            raw = {**raw, "choices": tuple(raw["choices"])}
        constraints[key] = Constraint(**raw)
    return ConfigSpec(
        defaults=flatten(data.get("config", {})),
        constraints=constraints,
        envs={k: flatten(v) for k, v in data.get("env", {}).items()},
        source=str(path),
    )


def flatten_constraints(table: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    fields = set(Constraint.__dataclass_fields__)
    out: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and set(value) <= fields:
            out[f"{prefix}{key}"] = dict(value)
        elif isinstance(value, Mapping):
            out.update(flatten_constraints(value, f"{prefix}{key}."))
    return out


def parse_set(item: str) -> tuple[str, Scalar]:
    """Parse one ``--set key=value``; the value is read as TOML, bare words as strings."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r} is not key=value: write e.g. --set lr=0.001")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    if isinstance(value, dict | list):
        raise ConfigError(f"--set {key}: only single values are allowed, got {text!r}")
    return key, value


def resolve(
    spec: ConfigSpec,
    *,
    file: Path | None = None,
    env: str | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> dict[str, Scalar]:
    """Merge the layers and validate the result; ConfigError names the key, value and rule."""
    config: dict[str, Any] = dict(spec.defaults)
    if base:
        config.update(base)
    envs = dict(spec.envs)
    if file is not None:
        data = read_toml(file)
        layer = flatten(data.get("config", {k: v for k, v in data.items() if k != "env"}))
        _check_keys(spec, layer, f"config file {file}")
        config.update(layer)
        envs.update({k: flatten(v) for k, v in data.get("env", {}).items()})
    env = env or settings.CONFIG_ENV.raw()
    if env:
        if env not in envs:
            known = ", ".join(sorted(envs)) or "none are defined"
            raise ConfigError(f"unknown environment overlay {env!r}: use one of: {known}")
        _check_keys(spec, envs[env], f"environment overlay {env!r}")
        config.update(envs[env])
    layer = dict(parse_set(item) for item in overrides)
    _check_keys(spec, layer, "--set")
    config.update(layer)
    return validate(spec, config)


def validate(spec: ConfigSpec, config: Mapping[str, Any]) -> dict[str, Scalar]:
    """Check every value's type against its default and its constraint; return a clean copy."""
    out: dict[str, Scalar] = {}
    for key, value in config.items():
        if key in spec.defaults:
            value = _coerce(key, value, spec.defaults[key])
        elif not isinstance(value, bool | int | float | str):
            raise ConfigError(f"config key {key!r}: {value!r} is not a single value")
        rule = spec.constraints.get(key)
        if rule is not None:
            _check_rule(key, value, rule)
        out[key] = value
    return out


def _check_keys(spec: ConfigSpec, layer: Mapping[str, Any], where: str) -> None:
    if not spec.strict:
        return
    for key in layer:
        if key not in spec.defaults:
            close = difflib.get_close_matches(key, spec.defaults, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see `trainer recipes --config`"
            raise ConfigError(f"unknown config key {key!r} in {where}: {hint}")


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _coerce(key: str, value: Any, default: Scalar) -> Scalar:
    want = type(default)
    if isinstance(value, bool) != (want is bool):
        raise ConfigError(
            f"config key {key!r}: {value!r} is {_type_name(value)}, expected {_type_name(default)}"
        )
    if want is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, want):
        raise ConfigError(
            f"config key {key!r}: {value!r} is {_type_name(value)}, expected {_type_name(default)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r}: {value!r} is not a finite number")
    return value


def _check_rule(key: str, value: Scalar, rule: Constraint) -> None:
    if rule.choices is not None and value not in rule.choices and rule.pattern is None:
        allowed = ", ".join(repr(c) for c in rule.choices)
        raise ConfigError(f"config key {key!r}: {value!r} is not allowed: use one of {allowed}")
    if rule.pattern is not None and not re.fullmatch(rule.pattern, str(value)):
        allowed = ", ".join(repr(c) for c in rule.choices) if rule.choices else rule.pattern
        raise ConfigError(f"config key {key!r}: {value!r} is not allowed: use {allowed}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if rule.min is not None and (
            value < rule.min or (rule.exclusive_min and value == rule.min)
        ):
            op = ">" if rule.exclusive_min else ">="
            raise ConfigError(
                f"config key {key!r}: {value!r} is out of range: must be {op} {rule.min}"
            )
        if rule.max is not None and value > rule.max:
            raise ConfigError(
                f"config key {key!r}: {value!r} is out of range: must be <= {rule.max}"
            )


def to_toml(config: Mapping[str, Scalar], *, header: str = "") -> str:
    """Write a flat config as TOML (dotted keys become tables), readable by ``read_toml``."""
    lines = [f"# {line}" for line in header.splitlines()]
    groups: dict[str, list[tuple[str, Scalar]]] = {}
    for key, value in config.items():
        table, _, leaf = key.rpartition(".")
        groups.setdefault(table, []).append((leaf, value))
    for table in sorted(groups, key=lambda t: (t != "", t)):
        lines.append(f"\n[{'config' + ('.' + table if table else '')}]")
        lines.extend(f"{_toml_key(k)} = {toml_value(v)}" for k, v in groups[table])
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def toml_value(value: Scalar) -> str:
    """``value`` as TOML (and as ``--set key=value`` reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = "".join(c if " " <= c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'
