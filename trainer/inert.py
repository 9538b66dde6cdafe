"""Text from a journal made inert before it reaches a terminal (or a label in the app).

A run folder may come from elsewhere; its run name, metric keys, events and entry are its own
text. Control characters in them (ESC sequences can retitle, clear or reprogram a terminal;
bidirectional overrides can reorder what is shown) are replaced by visible escapes.
Torch-free and Qt-free.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, C1 controls, and the Unicode bidi/isolate overrides.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``)."""
    value = str(text)
    if not _CONTROL.search(value):
        return value
    return _CONTROL.sub(_escape, value)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
