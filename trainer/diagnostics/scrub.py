"""Keeping secrets out of a diagnostics bundle: :func:`scrub` text, :func:`safe_environment`.

Everything written into a bundle goes through :func:`scrub`. It replaces the value of any
``key = value``, ``key: value``, ``"key": "value"``, ``KEY=value`` or ``--key value`` whose key
names a secret (token, secret, password, passwd, api_key, auth, credential, private key, ...),
and anything shaped like a credential wherever it stands: private key blocks, AWS access key
ids, GitHub, Hugging Face, OpenAI and Slack tokens, JWTs, 40-hex keys (Weights & Biases; git
commit hashes look the same and go too), ``Bearer ...``, the password of a URL and the
``login``/``password``/``account`` values of netrc-style entries (``machine HOST login U
password P``). A name is secret if one of its words is token, secret, password, passwd, auth,
credential(s), ... or if it ends in ``key`` (``wandb_key``, ``TRAINDESK_WANDB_KEY``, ``apiKey``).
It errs on the side of redacting too much, and can say what it redacted (names, never values).
Applying it twice changes nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial

REDACTED = "[redacted]"

#: A key is secret if one of its words is one of these ...
_SECRET_WORDS = frozenset({
    "token", "secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase",
    "auth", "authorization", "credential", "credentials", "apikey", "cookie",
})  # fmt: skip
#: ... or if, with its separators removed, it contains one of these.
_SECRET_PARTS = (
    "apikey", "secret", "password", "passwd", "credential", "privatekey", "accesskey",
    "passphrase", "authtoken", "accesstoken", "refreshtoken", "sessiontoken",
)  # fmt: skip
#: Environment variables a bundle may show (values scrubbed all the same); nothing else.
SAFE_ENV_NAMES = frozenset({
    "QT_QPA_PLATFORM", "QT_SCALE_FACTOR", "QT_DEBUG_PLUGINS", "DISPLAY", "WAYLAND_DISPLAY",
    "XDG_SESSION_TYPE", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LANG", "LC_ALL",
})  # fmt: skip
SAFE_ENV_PREFIXES = ("TRAINDESK_",)

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# The end of a key block whose beginning was cut off (a log's tail): redact up to it.
_PRIVATE_KEY_END = re.compile(r"\A.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.I)
_KEY_VALUE = re.compile(
    r"""(?P<key>(?<![\w.])[A-Za-z_][\w.-]*)
        (?P<quote>\\?["']?)
        (?P<sep>[ \t]*(?:=|:(?!//))[ \t]*)
        (?P<value>\[redacted\]
                 |\\"(?:(?!\\").)*\\"
                 |"(?:[^"\\\n]|\\.)*"
                 |'[^'\n]*'
                 |Bearer[ \t]+[^\s"',;]+
                 |[^\s"',;)}\]]+)""",
    re.VERBOSE | re.IGNORECASE,
)
_FLAG_VALUE = re.compile(
    r"""(?P<flag>(?<![\w-])--?[A-Za-z][\w-]*)
        (?P<space>[ \t]+)
        (?P<value>"[^"\n]*"|'[^'\n]*'|[^\s"'-][^\s"']*)""",
    re.VERBOSE,
)
_SHAPES = re.compile(
    r"""\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b   # AWS access key id
      | \bgh[pousr]_[A-Za-z0-9]{30,}\b                     # GitHub tokens
      | \bgithub_pat_[A-Za-z0-9_]{30,}\b
      | \bhf_[A-Za-z0-9]{30,}\b                            # Hugging Face
      | \bsk-(?:proj-)?[A-Za-z0-9_-]{20,}                  # OpenAI and the like
      | \bxox[abprs]-[A-Za-z0-9-]{10,}                     # Slack
      | \bAIza[0-9A-Za-z_-]{35}                            # Google API keys
      | \beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JWT
      | \b(?:local-)?[0-9a-fA-F]{40}\b                     # W&B keys (and git hashes)
    """,
    re.VERBOSE,
)
# netrc-style entries (a .netrc pasted into a log, or a file copied into a run folder).
_NETRC_ENTRY = re.compile(
    r"(?<![\w-])(?:machine[ \t]+\S+|default)"
    r"(?:\s+(?:login|password|passwd|account|port|macdef)\s+\S+)+",
    re.IGNORECASE,
)
_NETRC_VALUE = re.compile(
    r"(?P<word>\b(?:login|password|passwd|account)\b)(?P<space>\s+)(?P<value>\S+)", re.I
)
# "password X" without a separator, anywhere.
_PASSWORD_WORD = re.compile(
    r"(?P<word>(?<![\w-])(?:password|passwd))(?P<space>[ \t]+)(?P<value>(?!\[redacted\])\S+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<kind>Bearer)[ \t]+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a key, variable or option name (``HF_TOKEN``, ``apiKey``, ``--password``)
    names a secret. ``tokenizer``, ``max_tokens`` and ``author`` do not."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    compact = "".join(words)
    if len(words) > 1 and words[-1] in ("key", "keys"):  # wandb_key, TRAINDESK_WANDB_KEY
        return True
    return any(w in _SECRET_WORDS for w in words) or any(p in compact for p in _SECRET_PARTS)


def scrub(text: str, found: list[str] | None = None) -> str:
    """``text`` with every value that looks like a credential replaced by ``[redacted]``;
    ``found`` (if given) gets what was redacted: a key's name, or the kind of credential."""
    seen: list[str] = found if found is not None else []

    def shape(kind: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            seen.append(kind)
            return REDACTED

        return replace

    text = _PRIVATE_KEY.sub(shape("a private key"), text)
    if "PRIVATE KEY" in text and _PRIVATE_KEY_END.search(text):
        text = _PRIVATE_KEY_END.sub(shape("a private key"), text, count=1)
    text = _URL_PASSWORD.sub(lambda m: _note(seen, "a URL's password", m.group("head") + REDACTED),
                             text)  # fmt: skip
    text = _NETRC_ENTRY.sub(partial(_netrc, seen), text)
    text = _KEY_VALUE.sub(partial(_key_value, seen), text)
    text = _FLAG_VALUE.sub(partial(_flag_value, seen), text)
    text = _PASSWORD_WORD.sub(
        lambda m: _note(seen, "a password", f"{m.group('word')}{m.group('space')}{REDACTED}"),
        text,
    )
    text = _BEARER.sub(lambda m: _note(seen, "a bearer token", f"{m.group('kind')} {REDACTED}"),
                       text)  # fmt: skip
    return _SHAPES.sub(shape("a credential-shaped string"), text)


def _note(seen: list[str], what: str, replacement: str) -> str:
    seen.append(what)
    return replacement


def _netrc(seen: list[str], match: re.Match[str]) -> str:
    def value(m: re.Match[str]) -> str:
        if m.group("value") == REDACTED:
            return m.group(0)
        seen.append(f"netrc {m.group('word').lower()}")
        return f"{m.group('word')}{m.group('space')}{REDACTED}"

    return _NETRC_VALUE.sub(value, match.group(0))


def safe_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed variables of ``environ`` (``TRAINDESK_*``, ``QT_QPA_PLATFORM``,
    ``CUDA_VISIBLE_DEVICES``, ...), values scrubbed; a secret-looking name shows no value."""
    out: dict[str, str] = {}
    for name in sorted(environ):
        if name in SAFE_ENV_NAMES or name.startswith(SAFE_ENV_PREFIXES):
            out[name] = REDACTED if is_secret_name(name) else scrub(environ[name])
    return out


def _redacted_like(value: str) -> str:
    """``[redacted]`` in the quotes ``value`` had, so TOML and JSON stay valid."""
    for quote in ('\\"', '"', "'"):
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            return f"{quote}{REDACTED}{quote}"
    return REDACTED


def _key_value(seen: list[str], match: re.Match[str]) -> str:
    if not is_secret_name(match.group("key")):
        return match.group(0)
    if match.group("value").strip("\\\"'") != REDACTED:
        seen.append(match.group("key"))
    value = _redacted_like(match.group("value"))
    return f"{match.group('key')}{match.group('quote')}{match.group('sep')}{value}"


def _flag_value(seen: list[str], match: re.Match[str]) -> str:
    if not is_secret_name(match.group("flag")):
        return match.group(0)
    seen.append(match.group("flag"))
    return f"{match.group('flag')}{match.group('space')}{_redacted_like(match.group('value'))}"
