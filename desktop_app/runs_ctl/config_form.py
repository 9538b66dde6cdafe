"""Config editors for the new-run dialog: a form generated from a recipe's ConfigSpec, and a
free-form ``key=value`` list for scripts. Each edit is validated with ``trainer.config`` and
the error is shown at the field.
"""

from __future__ import annotations

from collections.abc import Collection

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from trainer import config as cfg
from trainer.config import ConfigSpec, Constraint, Scalar, toml_value
from trainer.errors import ConfigError

ERROR_STYLE = "color: #dc2626;"
INVALID_EDIT_STYLE = "border: 1px solid #dc2626; border-radius: 2px;"


def same_value(a: Scalar, b: Scalar) -> bool:
    return type(a) is type(b) and a == b


def describe(rule: Constraint | None) -> str:
    """A short hint such as ``> 0, <= 10`` or ``one of: a, b``."""
    if rule is None:
        return ""
    parts = []
    if rule.min is not None:
        parts.append(f"{'>' if rule.exclusive_min else '≥'} {rule.min:g}")
    if rule.max is not None:
        parts.append(f"≤ {rule.max:g}")
    if rule.choices is not None:
        parts.append("one of: " + ", ".join(str(c) for c in rule.choices))
    return ", ".join(parts)


def short_message(exc: ConfigError, key: str) -> str:
    """The error without its ``config key 'k': `` prefix (the field already names it)."""
    text = str(exc)
    prefix = f"config key {key!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


class _Field:
    """One config key: its editor, its error label, and how to read its value."""

    def __init__(self, key: str, default: Scalar, rule: Constraint | None) -> None:
        self.key, self.default, self.rule = key, default, rule
        self.editor: QCheckBox | QComboBox | QLineEdit
        if isinstance(default, bool):
            self.editor = QCheckBox()
            self.editor.setChecked(default)
        elif rule is not None and rule.choices and rule.pattern is None:
            self.editor = QComboBox()
            for choice in rule.choices:
                self.editor.addItem(str(choice), choice)
            self.editor.setCurrentIndex(max(0, self.editor.findData(default)))
        else:
            self.editor = QLineEdit(default if isinstance(default, str) else toml_value(default))
            self.editor.setPlaceholderText(f"default: {default}")
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.hint = QLabel(rule.help if rule is not None and rule.help else describe(rule))
        self.hint.setStyleSheet("color: palette(mid);")
        self.form: QFormLayout | None = None

    def raw_value(self) -> Scalar:
        """The value as typed; ConfigError if it cannot even be read."""
        editor = self.editor
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            value: Scalar = editor.currentData()
            return value
        text = editor.text().strip()
        if isinstance(self.default, str):
            return editor.text()
        if not text:
            raise ConfigError(f"enter a value (default: {toml_value(self.default)})")
        return cfg.parse_set(f"{self.key}={text}")[1]

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        if self.form is not None:
            self.form.setRowVisible(self.error, bool(message))
        self.editor.setToolTip(message or describe(self.rule))
        if isinstance(self.editor, QLineEdit):
            self.editor.setStyleSheet(INVALID_EDIT_STYLE if message else "")


class ConfigForm(QWidget):
    """A form for a recipe's config: one editor per key, validated on every edit."""

    #: Emitted after every edit (the errors are up to date).
    changed = Signal()

    def __init__(
        self, spec: ConfigSpec, parent: QWidget | None = None, *, hidden: Collection[str] = ()
    ) -> None:
        """``hidden`` keys get no editor (the dialog sets them elsewhere, e.g. device)."""
        super().__init__(parent)
        self.spec = spec
        self.fields: dict[str, _Field] = {}
        self._errors: dict[str, str] = {}
        self._values: dict[str, Scalar] = {}
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, default in spec.defaults.items():
            if key in hidden:
                continue
            field = _Field(key, default, spec.constraints.get(key))
            self.fields[key] = field
            line = QHBoxLayout()
            line.addWidget(field.editor, 1)
            line.addWidget(field.hint)
            field.editor.setToolTip(field.hint.text())
            form.addRow(key, line)
            form.addRow("", field.error)  # shown only while the value is invalid
            field.form = form
        hint_width = max((f.hint.sizeHint().width() for f in self.fields.values()), default=0)
        for field in self.fields.values():
            field.hint.setFixedWidth(hint_width)
            if isinstance(field.editor, QCheckBox):
                field.editor.toggled.connect(self._on_edit)
            elif isinstance(field.editor, QComboBox):
                field.editor.currentIndexChanged.connect(self._on_edit)
            else:
                field.editor.textChanged.connect(self._on_edit)
        self.validate()

    def validate(self) -> dict[str, str]:
        """Check every field; returns key -> error message (empty when all are valid)."""
        self._errors, self._values = {}, {}
        for key, field in self.fields.items():
            try:
                self._values.update(cfg.validate(self.spec, {key: field.raw_value()}))
            except ConfigError as exc:
                self._errors[key] = short_message(exc, key)
            field.show_error(self._errors.get(key, ""))
        return dict(self._errors)

    def errors(self) -> dict[str, str]:
        return dict(self._errors)

    def values(self) -> dict[str, Scalar]:
        """The valid values (coerced as the trainer would)."""
        return dict(self._values)

    def overrides(self) -> list[str]:
        """``key=value`` for each valid value that differs from its default."""
        return [
            f"{key}={toml_value(value)}"
            for key, value in self._values.items()
            if not same_value(value, self.spec.defaults[key])
        ]

    def _on_edit(self, *_args: object) -> None:
        self.validate()
        self.changed.emit()


SCRIPT_LABEL = "Config values for the script (passed as --set key=value):"
COMMAND_LABEL = "Config for a trainer.init() in the command (passed as --set key=value):"


class ScriptOverrides(QWidget):
    """A script's config as free-form ``key=value`` lines (``#`` starts a comment)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("one key=value per line, e.g.\nmax_steps=1000\nlr=0.01")
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(SCRIPT_LABEL)
        layout.addWidget(self.label)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error)
        self._overrides: list[str] = []
        self._message = ""
        self.editor.textChanged.connect(self._on_edit)

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)

    def validate(self) -> str:
        """Parse every line; returns the first error ("" if none)."""
        parsed: dict[str, Scalar] = {}
        self._message = ""
        for number, line in enumerate(self.editor.toPlainText().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                key, value = cfg.parse_set(line.strip())
                parsed.update(cfg.validate(ConfigSpec.open(), {key: value}))
            except ConfigError as exc:
                self._message = f"line {number}: {exc}"
                break
        self._overrides = [f"{k}={toml_value(v)}" for k, v in parsed.items()]
        self.error.setText(self._message)
        self.error.setVisible(bool(self._message))
        return self._message

    def errors(self) -> dict[str, str]:
        return {"script config": self._message} if self._message else {}

    def overrides(self) -> list[str]:
        return list(self._overrides)

    def _on_edit(self) -> None:
        self.validate()
        self.changed.emit()
