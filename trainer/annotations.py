"""A run's tags and note, kept in its folder as ``annotations.json``. Torch-free and Qt-free.

The app writes them (the runs table's context menu) and ``trainer show`` may print them; they
travel with the run folder. The file is small JSON, written atomically (write, fsync, rename)
as 0600. A run folder may come from elsewhere, so reading never trusts it: nothing is
evaluated, a file over :data:`MAX_BYTES` or not JSON counts as no annotations, a symlink is
never followed (:mod:`trainer.jail`), and tags and note are cut to size.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from trainer import jail

ANNOTATIONS_NAME = "annotations.json"
#: A bigger file is not read (a note of a few pages fits many times over).
MAX_BYTES = 64 * 1024
MAX_TAGS = 64
MAX_TAG_CHARS = 64
MAX_NOTE_CHARS = 16_000


class AnnotationError(ValueError):
    """Tags or a note that cannot be stored (the message says which and why)."""


@dataclass(frozen=True)
class Annotations:
    """The tags (no duplicates, in the order given) and the free-text note of a run."""

    tags: tuple[str, ...] = ()
    note: str = ""

    def __bool__(self) -> bool:
        return bool(self.tags or self.note)


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags from what a person typed: separated by commas or spaces, duplicates dropped.
    AnnotationError for too many or too long ones."""
    tags: list[str] = []
    for part in text.replace(",", " ").split():
        if part not in tags:
            tags.append(part)
    return check(Annotations(tuple(tags))).tags


def check(annotations: Annotations) -> Annotations:
    """``annotations`` if they can be stored; AnnotationError naming what is wrong."""
    if len(annotations.tags) > MAX_TAGS:
        raise AnnotationError(f"at most {MAX_TAGS} tags, not {len(annotations.tags)}")
    for tag in annotations.tags:
        if not tag or len(tag) > MAX_TAG_CHARS or any(c.isspace() or c == "," for c in tag):
            raise AnnotationError(
                f"tag {tag[:MAX_TAG_CHARS]!r}: a tag is 1 to {MAX_TAG_CHARS} characters, "
                "without spaces or commas"
            )
        if not tag.isprintable():
            raise AnnotationError(f"tag {tag!r} holds characters that cannot be shown")
    if len(annotations.note) > MAX_NOTE_CHARS:
        raise AnnotationError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    return annotations


def read_annotations(folder: Path) -> Annotations:
    """The run's annotations; empty when there are none or the file cannot be trusted."""
    path = folder / ANNOTATIONS_NAME
    try:
        fd = jail.open_fd(folder, path, os.O_RDONLY)
    except (OSError, jail.OutsideRunFolderError):
        return Annotations()
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return Annotations()
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Annotations()
    if not isinstance(raw, dict):
        return Annotations()
    tags = raw.get("tags", [])
    note = raw.get("note", "")
    clean = tuple(
        dict.fromkeys(
            t for t in (tags if isinstance(tags, list) else [])
            if isinstance(t, str) and t and len(t) <= MAX_TAG_CHARS and t.isprintable()
            and not any(c.isspace() or c == "," for c in t)
        )
    )[:MAX_TAGS]  # fmt: skip
    return Annotations(clean, note[:MAX_NOTE_CHARS] if isinstance(note, str) else "")


def write_annotations(folder: Path, annotations: Annotations) -> Path:
    """Store ``annotations`` in the run folder (atomic, 0600; none: the file is removed).
    AnnotationError for what cannot be stored, OSError if the folder is not writable."""
    check(annotations)
    path = folder / ANNOTATIONS_NAME
    if not annotations:
        jail.unlink(folder, path)
        return path
    text = json.dumps({"tags": list(annotations.tags), "note": annotations.note}, indent=1)
    tmp = folder / f".{ANNOTATIONS_NAME}.{os.getpid()}.tmp"
    fd = jail.open_fd(folder, tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        jail.replace(folder, tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
