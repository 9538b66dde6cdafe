"""The app's own settings (not training configs): a Qt-free dataclass kept in a TOML file.

The file is ``<platformdirs.user_config_dir("traindesk")>/settings.toml``. Loading never fails:
a missing file gives the defaults; a file that is not TOML, a bad value or an unknown key gives
the default for what is wrong plus a one-line warning, and the file stays as the user wrote it
until they save from the settings dialog (an atomic, private write).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from trainer.config import toml_value
from trainer.paths import make_private_dir, runs_dir, write_private_text
from trainer.supervision.policy import HealthPolicy, RestartPolicy

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.toml"
SmoothingKind = Literal["ema", "moving", "none"]
ThemeChoice = Literal["system", "light", "dark"]
QuitChoice = Literal["ask", "stop", "leave"]
LogLevel = Literal["debug", "info", "warning", "error"]
SMOOTHING_KINDS: tuple[str, ...] = get_args(SmoothingKind)
THEMES: tuple[str, ...] = get_args(ThemeChoice)
QUIT_CHOICES: tuple[str, ...] = get_args(QuitChoice)
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)

REFRESH_MS_RANGE = (200, 60_000)
MOVING_WINDOW_RANGE = (1, 10_000)
SYSTEM_POLL_S_RANGE = (1.0, 60.0)
MAX_RESTARTS_RANGE = (0, 100)
RESTART_DELAY_S_RANGE = (0.0, 3600.0)
HEARTBEAT_TIMEOUT_S_RANGE = (1.0, 3600.0)
HANG_GRACE_S_RANGE = (0.0, 3600.0)
_SMOOTHING_DEFAULTS: dict[str, float] = {"ema": 0.6, "moving": 20.0, "none": 0.0}
_SECONDS_RANGES: dict[str, tuple[float, float]] = {
    "restart_delay_s": RESTART_DELAY_S_RANGE,
    "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S_RANGE,
    "hang_grace_s": HANG_GRACE_S_RANGE,
}


class SettingsError(ValueError):
    """A setting's value is not allowed; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class AppSettings:
    """Everything the user can set in the app. Build changed copies with :meth:`replace`."""

    #: The runs directory; "" means the default ($TRAINDESK_HOME, else the user data folder).
    runs_dir: str = ""
    #: How often the runs list and the charts re-read the journals, in milliseconds.
    refresh_ms: int = 1000
    #: How loss curves are smoothed: exponential moving average, moving mean, or not at all.
    smoothing_kind: SmoothingKind = "ema"
    #: The EMA weight (0 <= w < 1) or the moving window in points (a whole number >= 1).
    smoothing_value: float = 0.6
    #: "system" follows the desktop's light/dark setting.
    theme: ThemeChoice = "system"
    #: Ask before deleting a run folder.
    confirm_delete: bool = True
    #: Seconds between two GPU/CPU readings of the system panel (1 s at the fastest).
    system_poll_s: float = 1.0
    #: Restarts of a crashed or failed run in a row (from its last checkpoint); 0: never.
    max_restarts: int = 3
    #: Seconds before the first restart; each further one in a row waits twice as long.
    restart_delay_s: float = 2.0
    #: Seconds without a heartbeat before a live run counts as unresponsive.
    heartbeat_timeout_s: float = 10.0
    #: Seconds an unresponsive run gets before it is killed as hung (and restarted).
    hang_grace_s: float = 20.0
    #: Closing the app with runs it started still live: ask, stop them, or leave them running.
    #: A signal (SIGTERM, SIGINT, SIGHUP) or a logout cannot ask: "ask" then stops them.
    on_quit: QuitChoice = "ask"
    #: The app's own log (JSON lines in the user log folder): what it records.
    #: ``$TRAINDESK_LOG_LEVEL`` overrides it.
    log_level: LogLevel = "info"

    def replace(self, **changes: Any) -> AppSettings:
        """A copy with ``changes``, every value checked; SettingsError names the first bad one."""
        unknown = set(changes) - set(field_names())
        if unknown:
            key = sorted(unknown)[0]
            raise SettingsError(key, f"unknown setting{_did_you_mean(key)}")
        values = {**dataclasses.asdict(self), **changes}
        for key in field_names():
            values[key] = check_value(key, values[key], values)
        return AppSettings(**values)

    def restart_policy(self) -> RestartPolicy:
        """How the app restarts a crashed or failed run it supervises."""
        return RestartPolicy(
            max_restarts=self.max_restarts,
            backoff_initial=self.restart_delay_s,
            backoff_max=max(RestartPolicy.backoff_max, self.restart_delay_s),
        )

    def health_policy(self) -> HealthPolicy:
        """When a run the app supervises is unresponsive, and when it is killed as hung."""
        return HealthPolicy(
            heartbeat_timeout=self.heartbeat_timeout_s, kill_grace=self.hang_grace_s
        )

    def resolved_runs_dir(self, override: str | None = None) -> Path:
        """``override`` (``--runs-dir``), else this setting, else trainer's default rules."""
        return runs_dir(override or self.runs_dir or None)

    def to_toml(self) -> str:
        """The settings as a TOML file (one ``key = value`` per line)."""
        lines = ["# TrainDesk settings: edit in the app (Settings...) or here.", ""]
        lines += [f"{key} = {toml_value(value)}" for key, value in dataclasses.asdict(self).items()]
        return "\n".join(lines) + "\n"


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(AppSettings)]


def default_smoothing_value(kind: str) -> float:
    """The default smoothing value that suits ``kind``."""
    return _SMOOTHING_DEFAULTS.get(kind, _SMOOTHING_DEFAULTS["ema"])


def check_value(key: str, value: Any, context: dict[str, Any] | None = None) -> Any:
    """``value`` made the setting's type (an int for a float is fine); SettingsError if bad.

    ``context`` holds the other settings (``smoothing_value``'s range depends on the kind).
    """
    context = context or {}
    if key == "runs_dir":
        if not isinstance(value, str) or "\x00" in value:
            raise SettingsError(key, "must be a folder path (text)")
        return value.strip()
    if key == "refresh_ms":
        return _in_range(key, _whole(key, value), *REFRESH_MS_RANGE, unit=" ms")
    if key == "smoothing_kind":
        return _choice(key, value, SMOOTHING_KINDS)
    if key == "smoothing_value":
        return _smoothing(value, str(context.get("smoothing_kind", "ema")))
    if key == "theme":
        return _choice(key, value, THEMES)
    if key == "confirm_delete":
        if not isinstance(value, bool):
            raise SettingsError(key, "must be true or false")
        return value
    if key == "system_poll_s":
        return _in_range(key, _number(key, value), *SYSTEM_POLL_S_RANGE, unit=" s")
    if key == "max_restarts":
        return _in_range(key, _whole(key, value), *MAX_RESTARTS_RANGE)
    if key in _SECONDS_RANGES:
        return _in_range(key, _number(key, value), *_SECONDS_RANGES[key], unit=" s")
    if key == "on_quit":
        return _choice(key, value, QUIT_CHOICES)
    if key == "log_level":
        return _choice(key, value, LOG_LEVELS)
    raise SettingsError(key, f"unknown setting{_did_you_mean(key)}")


def settings_path() -> Path:
    """``<user config dir>/traindesk/settings.toml`` (``$XDG_CONFIG_HOME`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("traindesk", appauthor=False)) / SETTINGS_NAME


def load_settings(path: Path | None = None) -> tuple[AppSettings, list[str]]:
    """The settings in ``path`` (default :func:`settings_path`) and one warning per problem.

    Never raises and never writes the file.
    """
    path = settings_path() if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AppSettings(), []
    except tomllib.TOMLDecodeError as exc:
        return AppSettings(), _warn([f"{path} is not valid TOML ({exc}): using the defaults"])
    except (OSError, UnicodeDecodeError) as exc:
        return AppSettings(), _warn([f"cannot read {path} ({exc}): using the defaults"])
    warnings = [
        f"{path}: unknown setting {key!r} ignored{_did_you_mean(key)}"
        for key in data
        if key not in field_names()
    ]
    values = dataclasses.asdict(AppSettings())
    for key in field_names():
        if key == "smoothing_value":
            values[key] = default_smoothing_value(values["smoothing_kind"])
        if key not in data:
            continue
        try:
            values[key] = check_value(key, data[key], values)
        except SettingsError as exc:
            warnings.append(
                f"{path}: {key} = {_shown(data[key])} is not allowed ({exc.reason}); "
                f"using {_shown(values[key])}"
            )
    return AppSettings(**values), _warn(warnings)


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    """Check ``settings`` and write them atomically to a private file; returns the path."""
    checked = AppSettings().replace(**dataclasses.asdict(settings))
    path = settings_path() if path is None else path
    make_private_dir(path.parent)
    write_private_text(path, checked.to_toml())
    return path


# ---------------------------------------------------------------------- helpers
def _warn(warnings: list[str]) -> list[str]:
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, field_names(), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shown(value: Any) -> str:
    return toml_value(value) if isinstance(value, bool | int | float | str) else repr(value)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(key, "must be one of " + ", ".join(f'"{c}"' for c in choices))
    return cast(str, value)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(key, "must be a number")
    return float(value)


def _whole(key: str, value: Any) -> int:
    number = _number(key, value)
    if not number.is_integer():
        raise SettingsError(key, "must be a whole number")
    return int(number)


def _in_range(key: str, value: float, low: float, high: float, unit: str = "") -> Any:
    if not low <= value <= high:
        raise SettingsError(key, f"must be between {low:g}{unit} and {high:g}{unit}")
    return value


def _smoothing(value: Any, kind: str) -> float:
    key = "smoothing_value"
    number = _number(key, value)
    if kind == "ema" and not 0.0 <= number < 1.0:
        raise SettingsError(key, "an EMA weight must be at least 0 and below 1")
    if kind == "moving":
        low, high = MOVING_WINDOW_RANGE
        if not number.is_integer() or not low <= number <= high:
            raise SettingsError(key, f"a moving window must be a whole number from {low} to {high}")
    if kind == "none" and number < 0:
        raise SettingsError(key, "must not be negative")
    return number
