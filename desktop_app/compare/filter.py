"""The runs table's filter text, e.g. ``lr>1e-3 status:finished name~bert tag:baseline``. Qt-free.

Tokens are separated by spaces (quote a value with spaces: ``note~"bad seed"``) and must all
hold (AND). A token is ``FIELD OP VALUE`` or a bare word:

* ``>``, ``<``, ``>=``, ``<=``: numbers compared as numbers (``1e-3`` = ``0.001``), text as text;
* ``:`` or ``=``: equal (text ignores case; a list such as the tags: one of them equal);
* ``!=``: not equal; ``~``: contains (ignores case);
* a bare word: contained in the name, status, recipe, tags or note;
* a leading ``-`` negates a token (``-tag:broken``).

A field is a column or a config key: dotted (``optim.lr``) or its last part when that names
one key (``lr``; a config key wins over a metric of the same name, which is then ``lr.last``).
A metric key (``val/loss``) means its last value; ``val/loss.best``,
``.last``, ``.final``, ``.min`` and ``.max`` the others. Bad text raises :class:`FilterError`
with a one-line message; a field no run has is reported by :meth:`RunFilter.unknown`.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: What one run offers the filter: field name -> a value, or a list of values (the tags).
Fields = Mapping[str, Any]

OPERATORS = (">=", "<=", "!=", "==", ">", "<", "=", ":", "~")
_TOKEN = re.compile(r"^(?P<field>[^<>=!:~\s]+)(?P<op>>=|<=|!=|==|>|<|=|:|~)(?P<value>.*)$", re.S)
#: Fields a bare word is looked for in.
TEXT_FIELDS = ("name", "status", "entry", "tags", "note")
#: Other spellings of a field.
ALIASES = {"tag": "tags", "recipe": "entry", "steps": "step", "duration": "elapsed"}


class FilterError(ValueError):
    """Filter text that cannot be understood; the message is one line for the user."""


@dataclass(frozen=True)
class Term:
    """One token: ``field op value``, or a bare word (``field`` None)."""

    field: str | None
    op: str
    value: str
    negate: bool = False

    def matches(self, fields: Fields) -> bool:
        if self.field is None:
            hit = any(_contains(fields.get(f), self.value) for f in TEXT_FIELDS)
        else:
            key = resolve(self.field, fields.keys())
            hit = key is not None and _compare(fields[key], self.op, self.value)
        return hit != self.negate


@dataclass(frozen=True)
class RunFilter:
    """Parsed filter text: every term must hold."""

    terms: tuple[Term, ...] = ()

    def matches(self, fields: Fields) -> bool:
        return all(term.matches(fields) for term in self.terms)

    def unknown(self, known: Iterable[str]) -> str:
        """A one-line message naming a field that no run has ("" if all are known)."""
        names = list(known)
        for term in self.terms:
            if term.field is not None and resolve(term.field, names) is None:
                close = difflib.get_close_matches(term.field, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                ambiguous = [n for n in names if n.lower().endswith("." + term.field.lower())]
                if len(ambiguous) > 1:
                    return f"{term.field!r} is several config keys: {', '.join(ambiguous[:3])}"
                return f"no column or config key {term.field!r}{hint}"
        return ""


def parse(text: str) -> RunFilter:
    """The filter in ``text`` (empty: everything matches); FilterError if it is malformed."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        raise FilterError("a quote is not closed: close it, or remove it") from None
    terms = []
    for token in tokens:
        negate = token.startswith("-") and len(token) > 1 and not _is_number(token)
        body = token[1:] if negate else token
        match = _TOKEN.match(body)
        if match is None:
            if any(op in body for op in OPERATORS):
                raise FilterError(
                    f"{token!r}: write FIELD OP VALUE, e.g. lr>1e-3, status:finished, name~bert"
                )
            terms.append(Term(None, "~", body, negate))
            continue
        field, op, value = match["field"], match["op"], match["value"]
        if not value:
            raise FilterError(f"{token!r}: no value after {op!r} (e.g. {field}{op}1)")
        if value[0] in "<>=!~:":
            raise FilterError(f"{token!r}: {op + value[0]!r} is not an operator")
        field = field.lower()
        terms.append(Term(ALIASES.get(field, field), "=" if op == "==" else op, value, negate))
    return RunFilter(tuple(terms))


def resolve(field: str, names: Iterable[str]) -> str | None:
    """The field among ``names`` that ``field`` means: the same name (ignoring case), else
    the only dotted name ending in ``.field``; None if none or several."""
    lower = field.lower()
    suffix = []
    for name in names:
        low = name.lower()
        if low == lower:
            return name
        if low.endswith("." + lower):
            suffix.append(name)
    return suffix[0] if len(suffix) == 1 else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _is_number(value.strip()):
        return float(value)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _contains(value: Any, text: str) -> bool:
    if isinstance(value, list | tuple):
        return any(_contains(v, text) for v in value)
    return text.lower() in _text(value).lower()


def _compare(value: Any, op: str, wanted: str) -> bool:
    if isinstance(value, list | tuple):
        if op == "!=":
            return not any(_compare(v, "=", wanted) for v in value)
        return any(_compare(v, op, wanted) for v in value)
    if value is None:
        return op == "!="
    if op == "~":
        return _contains(value, wanted)
    a, b = _number(value), _number(wanted)
    if a is not None and b is not None:
        if math.isnan(a):
            return op == "!="
        return _OPS[op](a, b)
    if op in (":", "=", "!="):
        return _OPS[op](_text(value).lower(), wanted.lower())
    if a is not None or b is not None:
        return False  # a number against a word: neither above nor below
    return bool(_OPS[op](_text(value).lower(), wanted.lower()))


_OPS: dict[str, Any] = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, "=": lambda a, b: a == b, ":": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}  # fmt: skip
