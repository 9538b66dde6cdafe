"""``trainer gpus`` and ``trainer queue``: the machine's GPUs, leases and queue (the lease
store). No torch is imported. (``trainer limits``, a control message, is in commands.)"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from trainer.errors import UsageError
from trainer.resources.acquire import read_inventory
from trainer.resources.sizes import format_size
from trainer.resources.store import LeaseStore


def gpus_report() -> dict[str, Any]:
    """The inventory with each device's leases, as ``trainer gpus --json`` prints it."""
    inventory = read_inventory()
    with LeaseStore() as store:
        leases = store.leases()
        queue = store.queue()
    devices = []
    for d in inventory.devices:
        held = [lease for lease in leases if lease.gpu == d.index]
        devices.append({
            "index": d.index, "name": d.name, "mem_total": d.mem_total, "mem_used": d.mem_used,
            "util": d.util, "simulated": d.simulated,
            "processes": [{"pid": p, "mem": m} for p, m in (d.processes or [])],
            "leases": [{"run": Path(x.run).name, "folder": x.run, "pid": x.pid,
                        "mem_budget": x.mem_budget, "shared": x.shared, "since": x.created}
                       for x in held],
        })  # fmt: skip
    return {
        "backend": inventory.label, "simulated": inventory.simulated,
        "unavailable_reason": inventory.unavailable_reason, "gpus": devices,
        "queued": len(queue),
    }  # fmt: skip


def cmd_gpus(args: argparse.Namespace) -> int:
    report = gpus_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report["gpus"]:
        print(f"no GPUs: {report['unavailable_reason'] or 'none found'} (runs train on the CPU)")
        return 0
    mark = " (simulated)" if report["simulated"] else ""
    print(f"{len(report['gpus'])} GPUs via {report['backend']}{mark}")
    for g in report["gpus"]:
        used, total = g["mem_used"], g["mem_total"]
        free = None if used is None or total is None else total - used
        holders = (
            ", ".join(f"{x['run']}{' (shared)' if x['shared'] else ''}" for x in g["leases"])
            or "free"
        )
        print(f"  GPU {g['index']}  {g['name'] or '?'}  {format_size(free)} free of "
              f"{format_size(total)}  util {_pct(g['util'])}  {holders}")  # fmt: skip
    if report["queued"]:
        print(f"{report['queued']} run(s) queued: see `trainer queue`")
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def cmd_queue(args: argparse.Namespace) -> int:
    with LeaseStore() as store:
        if args.action is not None:
            return _queue_action(store, args.action, args.ids)
        entries = store.queue()
    if args.json:
        print(json.dumps([{"id": e.id, "position": e.position, "run": Path(e.run).name,
                           "folder": e.run, "request": e.request.to_json(),
                           "priority": e.priority, "pid": e.pid, "since": e.created,
                           "reason": e.reason} for e in entries], indent=2))  # fmt: skip
        return 0
    if not entries:
        print("no runs are queued")
        return 0
    for e in entries:
        waited = time.time() - e.created
        print(f"  {e.position}. [{e.id}] {Path(e.run).name}  {e.request.describe()}  "
              f"priority {e.priority}  waiting {waited:.0f}s  {e.reason}")  # fmt: skip
    return 0


def _queue_action(store: LeaseStore, action: str, ids: list[int]) -> int:
    need = {"cancel": 1, "move": 2, "priority": 2}[action]
    if len(ids) != need:
        usage = {"cancel": "cancel ID", "move": "move ID POSITION", "priority": "priority ID P"}
        raise UsageError(f"trainer queue {usage[action]}: give {need} number(s)")
    known = {e.id: e for e in store.queue()}
    if ids[0] not in known:
        raise UsageError(f"no queue entry {ids[0]}: see `trainer queue` for the ids")
    name = Path(known[ids[0]].run).name
    if action == "cancel":
        store.cancel(ids[0])
        print(f"cancelled: {name} leaves the queue and stops")
    elif action == "move":
        store.move(ids[0], ids[1])
        print(f"moved {name} to position {ids[1]}")
    else:
        store.set_priority(ids[0], ids[1])
        print(f"{name} now has priority {ids[1]}")
    return 0
