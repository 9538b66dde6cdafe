"""Writing imported points into a new run folder (status "finished", kind "import")."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

from trainer.config import to_toml
from trainer.errors import UsageError
from trainer.imports.tabular import Point, read_csv, read_json
from trainer.imports.tfevents import event_files, read_dir_checked
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths, validate_run_name, write_private_text
from trainer.runs import default_run_name, new_run_id

FORMATS = ("auto", "csv", "json", "tensorboard")


def detect_format(source: Path) -> str:
    if source.is_dir() or "tfevents" in source.name:
        return "tensorboard"
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"
    raise UsageError(f"cannot tell the format of {source}: give --format csv, json or tensorboard")


def read_points(
    source: Path, fmt: str = "auto", run: str | None = None, problems: list[str] | None = None
) -> tuple[list[Point], dict[str, Any]]:
    """The points of ``source`` and the config it carries (if any); the parts of a TensorBoard
    file that were skipped (corrupt, truncated) are added to ``problems``."""
    if not source.exists():
        raise UsageError(f"{source} does not exist: check the path")
    fmt = detect_format(source) if fmt == "auto" else fmt
    if fmt == "tensorboard":
        folder = source if source.is_dir() else source.parent
        if not event_files(folder):
            raise UsageError(f"{source} holds no TensorBoard event files (*tfevents*)")
        events, skipped = read_dir_checked(folder)
        if problems is not None:
            problems += [str(p) for p in skipped]
        return [(e.tag, e.step, e.value, e.wall) for e in events], {}
    if fmt == "csv":
        return read_csv(source, run), {}
    return read_json(source)


def import_run(
    source: Path,
    runs_dir: Path,
    *,
    fmt: str = "auto",
    name: str | None = None,
    run: str | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> tuple[RunPaths, int, int]:
    """Import ``source`` as a new finished run; returns (run paths, points stored, keys).

    A point repeated at the same step is stored once (the last one read), and NaN is not
    stored (the journal's rule): the count is of the points the run holds. Each skipped part
    of a TensorBoard file is journaled as a warning and given to ``on_problem``.
    """
    problems: list[str] = []
    points, config = read_points(source, fmt, run, problems)
    for problem in problems:
        if on_problem is not None:
            on_problem(problem)
    if not points:
        raise UsageError(f"{source} holds no numeric metrics: nothing to import")
    name = validate_run_name(name or default_run_name(source.stem or "import"))
    folder = runs_dir / name
    if folder.exists():
        raise UsageError(f"a run named {name!r} already exists in {runs_dir}: choose --name")
    points.sort(key=lambda p: (p[1], p[3] if p[3] is not None else 0.0))
    walls = [p[3] for p in points if p[3] is not None]
    created = min(walls) if walls else time.time()
    paths = RunPaths(folder).create()
    write_private_text(paths.config, to_toml(config, header=f"imported from {source}"))
    writer = JournalWriter.create(
        paths.journal, run_id=new_run_id(), name=name, entry=str(source.resolve()),
        kind="import", config=config, created=created,
    )  # fmt: skip
    stored, last = 0, 0
    try:
        for problem in problems:
            writer.event("warning", f"import skipped {problem}", step=0)
        for step, group in groupby(points, key=lambda p: p[1]):
            rows = list(group)
            wall = next((p[3] for p in rows if p[3] is not None), None)
            values = {p[0]: p[2] for p in rows}
            writer.log_scalars(values, step, wall=wall)
            stored += sum(1 for v in values.values() if v == v)
            last = step
        writer.event("imported", f"{stored} points from {source}", step=last)
        writer.set_status("finished", exit_reason=f"imported from {source.name}", step=last)
        writer.set_fields(max_steps=last)
    finally:
        writer.close()
    if writer.error is not None:
        raise writer.failure()
    return paths, stored, len({p[0] for p in points if p[2] == p[2]})
