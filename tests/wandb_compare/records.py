"""What the real ``wandb`` package recorded offline: its ``run-ID.wandb`` file, read back.

The file is W&B's LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB
blocks of chunks (CRC32C, length, type FULL/FIRST/MIDDLE/LAST), each record a protobuf
``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import fnmatch
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7


def chunks(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left  # the block's zero padding
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        body = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            yield body
        elif kind == 2:
            pending = body
        elif kind == 3:
            pending += body
        elif kind == 4:
            yield pending + body
            pending = b""


def _key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def read_records(path: Path | str) -> Iterator[tuple[str, Any]]:
    """``(kind, body)`` for the records a script's points, config and summary depend on."""
    from wandb.proto import wandb_internal_pb2 as pb

    for raw in chunks(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            yield "history", row
        elif kind == "run":
            yield "config", {_key(i): json.loads(i.value_json) for i in record.run.config.update}
        elif kind == "config":
            yield "config", {_key(i): json.loads(i.value_json) for i in record.config.update}
        elif kind == "summary":
            yield "summary", {_key(i): json.loads(i.value_json) for i in record.summary.update}
        elif kind == "metric":
            m = record.metric
            yield (
                "metric",
                {
                    "name": m.name,
                    "glob": m.glob_name,
                    "step_metric": m.step_metric,
                    "step_sync": m.options.step_sync,
                    "hidden": m.options.hidden,
                },
            )
        elif kind == "exit":
            yield "exit", record.exit.exit_code


def _media(row: dict[str, Any]) -> set[str]:
    """Keys of media objects (``img.width``... beside ``img._type``): never chart points."""
    return {k[: -len("._type")] for k in row if k.endswith("._type")}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, bool | int | float) else None


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def points_of_run(path: Path, prefix: str = "") -> dict[str, Any]:
    """The points W&B charts for one run file (each key at its step metric's value, else at
    ``_step``), its final config and the scalars of its final summary."""
    exact: dict[str, dict[str, Any]] = {}
    globs: list[dict[str, Any]] = []
    points: list[tuple[str, int, float]] = []
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for kind, body in read_records(path):
        if kind == "metric":
            if body["glob"]:
                globs.append(body)
            elif body["name"]:
                exact[body["name"]] = body
        elif kind == "config":
            # W&B's own bookkeeping (_wandb, _wandb.visualize...) is not the user's config.
            config.update({prefix + k: v for k, v in body.items() if k.split(".")[0] != "_wandb"})
        elif kind == "summary":
            summary.update(body)
        elif kind == "history":
            media = _media(body)
            for key, value in body.items():
                number = _number(value)
                if key.startswith("_") or number is None:
                    continue
                if any(key.startswith(m + ".") for m in media):
                    continue
                metric = exact.get(key) or next(
                    (g for g in reversed(globs) if fnmatch.fnmatchcase(key, g["glob"])), None
                )
                step_metric = metric["step_metric"] if metric else ""
                x = body["_step"]
                if (
                    step_metric
                    and step_metric != key
                    and _number(body.get(step_metric)) is not None
                ):
                    x = body[step_metric]
                points.append((prefix + key, int(x), number))
    flat = _flat(summary)
    media = _media(flat)
    shown = {
        prefix + k: float(v)
        for k, v in flat.items()
        if not k.startswith("_")
        and _number(v) is not None
        and not any(k.startswith(m + ".") for m in media)
    }
    return {"points": points, "config": config, "summary": shown}


def run_files(wandb_dir: Path) -> list[tuple[str, Path]]:
    """``(display name, file)`` of each run recorded under ``wandb_dir``, oldest first."""
    from wandb.proto import wandb_internal_pb2 as pb

    found = []
    for path in wandb_dir.glob("*run-*/run-*.wandb"):
        for raw in chunks(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "run":
                start = record.run.start_time.seconds + record.run.start_time.nanos / 1e9
                found.append((start, record.run.display_name, path))
                break
    return [(name, path) for _start, name, path in sorted(found)]
