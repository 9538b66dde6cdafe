"""The ``trainer`` subcommands. Only ``run`` and ``resume`` import torch (through the recipes).

Why over 400 lines: one short function per subcommand; they share the helpers for a RUN argument
and the runs directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from trainer import control, paths
from trainer.annotations import read_annotations
from trainer.errors import RunNotFoundError, UsageError
from trainer.export import stream_csv, stream_json
from trainer.journal.reader import JournalReader
from trainer.journal.status import ALIVE, derive_status
from trainer.runs import RunSummary, resolve_run, summarize, summarize_all


def _runs_dir(args: argparse.Namespace, *, create: bool = False) -> Path:
    """The runs directory; a ``--runs-dir`` that does not exist is an error that names it
    (``create``: made, with a note, where its parent exists)."""
    given = getattr(args, "runs_dir", None)
    folder = paths.runs_dir(given)
    return paths.check_runs_dir(folder, explicit=bool(given), create=create)


# ------------------------------------------------------------------------ run / resume
def cmd_run(args: argparse.Namespace) -> int:
    _set_thread_env(args.cpu_threads)
    _runs_dir(args, create=True)
    if args.max_restarts is not None:
        from trainer.cli.supervise import supervise_run

        return supervise_run(args)
    if getattr(args, "command_mode", False):
        from trainer.cli.command_run import execute_command

        return execute_command(args)
    if args.nproc_per_node is not None:
        from trainer.cli.command_run import execute_distributed

        return execute_distributed(args)
    if args.capture:
        raise UsageError(
            "--capture is for commands: `trainer run [options] -- python train.py ARGS`"
        )
    from trainer.cli.execute import execute, prepare_target

    target = prepare_target(args)
    return execute(target, args)


def cmd_resume(args: argparse.Namespace) -> int:
    run = resolve_run(args.run, _runs_dir(args))
    summary = summarize(run.root, with_latest=False)
    if summary.error:
        raise RunNotFoundError(summary.error)
    if summary.status == "paused":
        control.send(run, "resume")
        print(f"resume requested: {summary.name} continues from step {summary.step}")
        return 0
    if summary.status in ALIVE:
        raise UsageError(
            f"run {summary.name} is {summary.status}: only a paused, stopped, crashed or failed "
            "run can be resumed (stop it first with `trainer stop`)"
        )
    more = args.max_steps and (summary.max_steps is None or args.max_steps > summary.max_steps)
    if summary.status == "finished" and not more:
        budget = f" (N > {summary.max_steps})" if summary.max_steps is not None else ""
        raise UsageError(
            f"run {summary.name} finished at step {summary.step}: give --max-steps N{budget} "
            "to train it further"
        )
    _check_trust(run.root, trusted=bool(getattr(args, "trust", False)))
    from trainer.resources.limits import Resources

    _set_thread_env(args.cpu_threads or Resources.load(run.root).limits.cpu_threads)
    if args.max_restarts is not None:
        from trainer.cli.supervise import supervise_resume

        return supervise_resume(run.root, args)
    from trainer.cli.execute import execute_resume

    return execute_resume(run, args)


def _check_trust(folder: Path, *, trusted: bool) -> None:
    """A folder made elsewhere runs its command or script only with --trust (shown first)."""
    from trainer import trust
    from trainer.journal.reader import JournalReader

    with JournalReader(folder) as reader:
        info = reader.run_info()
    command = trust.needs_trust(folder, info.id, info.kind, info.entry)
    trust.require(folder, info.id, info.kind, info.entry, trusted=trusted)
    if command is not None:
        print(f"trusted with --trust: resuming {folder.name} runs {command}", flush=True)


def _set_thread_env(cpu_threads: int | None) -> None:
    """Thread-pool sizes must be in the environment before torch is imported."""
    import os

    from trainer.resources.limits import thread_environment

    os.environ.update(thread_environment(cpu_threads))


# ------------------------------------------------------------------------ inspection
def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    delta = max(0.0, time.time() - seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta / size:.0f}{unit}"
    return f"{delta:.0f}s"


def _main_metric(s: RunSummary) -> str:
    for key in ("train/loss", "val/loss", "loss"):
        if key in s.latest:
            return f"{key}={s.latest[key]:.4g}"
    return next((f"{k}={v:.4g}" for k, v in sorted(s.latest.items())), "")


def cmd_ls(args: argparse.Namespace) -> int:
    runs_dir = _runs_dir(args)
    summaries = summarize_all(runs_dir)
    if args.json:
        print(json.dumps([s.to_json() for s in summaries], indent=2))
        return 0
    if not summaries:
        _out(f"no runs in {runs_dir} (start one with `trainer run spirals`)")
        return 0
    rows = [("NAME", "ID", "STATUS", "STEP", "ATT", "ENTRY", "UPDATED", "METRIC")]
    for s in summaries:
        step = f"{s.step}/{s.max_steps}" if s.max_steps else str(s.step)
        entry = Path(s.entry).name
        rows.append((s.name, s.id, s.status, step, str(s.attempt), entry, _age(s.updated),
                     s.error or _main_metric(s)))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        _out("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)), r[-1])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    run = resolve_run(args.run, _runs_dir(args))
    summary = summarize(run.root)
    if summary.error:
        raise RunNotFoundError(summary.error)
    with JournalReader(run.root) as reader:
        info = reader.run_info()
        events = reader.events()
    notes = read_annotations(run.root)
    if args.json:
        out: dict[str, Any] = summary.to_json()
        out.update(
            tags=list(notes.tags), note=notes.note,
            config=info.config, host=info.host, pid=info.pid, heartbeat=info.heartbeat_wall,
            events=[{"wall": e.wall, "attempt": e.attempt, "step": e.step, "kind": e.kind,
                     "message": e.message} for e in events],
        )  # fmt: skip
        print(json.dumps(out, indent=2))
        return 0
    progress = f"{summary.step}/{summary.max_steps}" if summary.max_steps else str(summary.step)
    _out(f"{summary.name}  ({summary.id})")
    _out(f"  status    {summary.status}" + (f": {info.exit_reason}" if info.exit_reason else ""))
    _out(f"  step      {progress}   attempt {summary.attempt}")
    _out(f"  entry     {info.entry} ({info.kind})")
    _out(f"  folder    {run.root}")
    _out(f"  created   {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.created))}"
          f"   host {info.host}   pid {info.pid}")  # fmt: skip
    if info.heartbeat_wall:
        _out(f"  heartbeat {_age(info.heartbeat_wall)} ago")
    if notes.tags:
        _out(f"  tags      {', '.join(notes.tags)}")
    for n, line in enumerate(notes.note.splitlines()):
        _out(f"  {'note' if n == 0 else '':<9} {line}")
    if summary.latest:
        _out("  metrics")
        for key, value in sorted(summary.latest.items()):
            _out(f"    {key:<24} {value:.6g}")
    if events:
        _out("  events")
        for e in events[-10:]:
            when = time.strftime("%H:%M:%S", time.localtime(e.wall))
            step = "" if e.step is None else f"step {e.step}"
            first_line = e.message.splitlines()[0] if e.message else ""
            _out(f"    {when} #{e.attempt} {e.kind:<11} {step:<11} {first_line}")
    return 0


def _out(*parts: object) -> None:
    """print() for text that comes from journals: control characters shown as escapes (a run
    from elsewhere must not drive the terminal)."""
    from trainer.inert import inert

    print(*(inert(p) for p in parts))


def cmd_logs(args: argparse.Namespace) -> int:
    run = resolve_run(args.run, _runs_dir(args))
    path = (
        run.structured_log
        if args.structured
        else (run.stderr_log if args.stderr else run.stdout_log)
    )
    if not path.exists():
        print(f"(no {path.name} yet in {run.logs})", file=sys.stderr)
        if not args.follow:
            return 0
    offset = 0
    ended: float | None = None
    while True:
        if path.exists():
            with path.open("r", encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                chunk = fh.read()
                offset = fh.tell()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        if not args.follow:
            return 0
        if ended is not None:
            return 0  # that was the read after the process had gone
        summary = summarize(run.root, with_latest=False)
        if summary.status not in ALIVE:
            # The run has ended, but its process may still be printing its last lines: follow
            # until it has exited (a few seconds at most), then read once more.
            ended = _wait_for_exit(run.root, deadline=time.monotonic() + 5.0)
            continue
        time.sleep(0.5)  # the polling period of -f, not synchronisation


def _wait_for_exit(folder: Path, deadline: float) -> float:
    """Wait until the run's last process is gone or ``deadline`` (monotonic) passes."""
    from trainer.errors import JournalError
    from trainer.journal.status import process_alive

    try:
        with JournalReader(folder) as reader:
            info = reader.run_info()
    except JournalError:
        return time.monotonic()
    while process_alive(info.pid, info.pid_started) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table, with a deadline
    return time.monotonic()


def cmd_export(args: argparse.Namespace) -> int:
    run = resolve_run(args.run, _runs_dir(args))
    from trainer import jail

    jail.check(run.root, run.journal)  # never export a journal linked in from elsewhere
    out_path = Path(args.output) if args.output else None
    if out_path is not None and out_path.exists() and not args.force:
        raise UsageError(f"{out_path} already exists: choose another -o FILE or add --force")
    tmp = out_path.with_name(f".{out_path.name}.tmp") if out_path else None
    # Streamed: each key is read in chunks as it is written (constant memory, any length).
    with JournalReader(run.root) as reader:
        info = reader.run_info()
        keys = reader.keys()
        fh = tmp.open("w", encoding="utf-8", newline="") if tmp else sys.stdout
        try:
            if args.format == "csv":
                count = stream_csv(fh, reader, keys, all_attempts=args.all_attempts)
            else:
                head = {"id": info.id, "name": info.name, "entry": info.entry,
                        "status": derive_status(info), "attempt": info.attempt,
                        "created": info.created, "config": info.config}  # fmt: skip
                events = [{"wall": e.wall, "attempt": e.attempt, "step": e.step,
                           "kind": e.kind, "message": e.message}
                          for e in reader.events()]  # fmt: skip
                count = stream_json(fh, reader, keys, run=head, events=events,
                                    all_attempts=args.all_attempts)  # fmt: skip
        finally:
            if tmp is not None:
                fh.close()
    if tmp is not None and out_path is not None:
        tmp.replace(out_path)
        print(f"wrote {count} points of {len(keys)} keys to {out_path}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------ control
def _live(args: argparse.Namespace) -> tuple[paths.RunPaths, RunSummary]:
    run = resolve_run(args.run, _runs_dir(args))
    summary = summarize(run.root, with_latest=False)
    if summary.error:
        raise RunNotFoundError(summary.error)
    if summary.status not in ALIVE:
        hint = " (use `trainer resume` to restart it)" if summary.status != "finished" else ""
        raise UsageError(f"run {summary.name} is not live (status: {summary.status}){hint}")
    return run, summary


def cmd_control(args: argparse.Namespace) -> int:
    run, summary = _live(args)
    if args.control == "pause" and summary.status == "paused":
        print(f"{summary.name} is paused already (at step {summary.step})")
        return 0
    sent = time.time()
    control.send(run, args.control)
    if not args.wait:
        print(f"{args.control} requested for {summary.name}: it acts at its next safe point")
        return 0
    print(f"{args.control} requested for {summary.name}: waiting for its next safe point "
          "(Ctrl-C stops waiting; the request stays)", flush=True)  # fmt: skip
    try:
        return _wait_obeyed(run, summary.name, args.control, sent)
    except KeyboardInterrupt:
        print(f"stopped waiting: {summary.name} still acts on the {args.control} request at "
              "its next safe point", file=sys.stderr)  # fmt: skip
        return 130


#: How often ``trainer stop/pause/checkpoint`` look at the run while they wait.
WAIT_POLL_S = 0.1


def _wait_obeyed(run: paths.RunPaths, name: str, command: str, sent: float) -> int:
    """Wait, as long as the run lives, until it has done what ``command`` asked; report it."""
    while True:
        summary = summarize(run.root, with_latest=False)
        status = summary.status
        if command == "pause" and status == "paused":
            print(f"{name} is paused at step {summary.step} (`trainer resume {name}` goes on)")
            return 0
        if command == "checkpoint":
            saved = _checkpoint_after(run, sent)
            if saved is not None:
                print(f"{name} saved a checkpoint at step {saved[0]} ({saved[1]})")
                return 0
        if status not in ALIVE:
            if command == "stop" and status in ("stopped", "finished"):
                saved = _checkpoint_after(run, 0.0, attempt=summary.attempt)
                where = (f"its checkpoint at step {saved[0]} ({saved[1]})" if saved
                         else "no checkpoint")  # fmt: skip
                print(f"{name} {status} at step {summary.step}: {where}")
                return 0
            raise UsageError(
                f"run {name} ended ({status}) before it could {command}: see `trainer show {name}`"
            )
        time.sleep(WAIT_POLL_S)  # polling the journal until the run has obeyed


def _checkpoint_after(
    run: paths.RunPaths, since: float, attempt: int | None = None
) -> tuple[int, str] | None:
    """(step, file) of the newest checkpoint journaled after ``since`` (unix time), in
    ``attempt`` if given; None if there is none."""
    from trainer.errors import JournalError

    try:
        with JournalReader(run.root) as reader:
            events = reader.events()
    except JournalError:
        return None
    saved = [e for e in events if e.kind == "checkpoint" and e.wall >= since and
             e.step is not None and (attempt is None or e.attempt == attempt)]  # fmt: skip
    if not saved:
        return None
    newest = max(saved, key=lambda e: (e.step, e.id))
    return int(newest.step or 0), newest.message


def cmd_extend(args: argparse.Namespace) -> int:
    if args.steps <= 0:
        raise UsageError(f"extend by {args.steps} steps: give a positive number of steps")
    run, summary = _live(args)
    control.send(run, "extend", steps=args.steps)
    print(f"extend requested: {summary.name} trains {args.steps} more steps")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from trainer import recipes

    if args.config:
        recipe = recipes.get(args.config)
        print(recipe.defaults_file.read_text(encoding="utf-8"), end="")
        return 0
    width = max(len(n) for n in recipes.RECIPES)
    for recipe in recipes.RECIPES.values():
        print(f"{recipe.name:<{width}}  {recipe.summary}")
    return 0


def cmd_gpus(args: argparse.Namespace) -> int:
    from trainer.cli.resources_cmd import cmd_gpus as run

    return run(args)


def cmd_queue(args: argparse.Namespace) -> int:
    from trainer.cli.resources_cmd import cmd_queue as run

    return run(args)


def cmd_limits(args: argparse.Namespace) -> int:
    """``trainer limits RUN``: new memory and disk limits for a live run, as a control message."""
    from trainer.resources.sizes import format_size, parse_size

    changes: dict[str, int] = {}
    if args.max_rss is not None:
        changes["max_rss"] = parse_size(args.max_rss, what="--max-rss")
    if args.disk_floor is not None:
        changes["disk_floor"] = parse_size(args.disk_floor, what="--disk-floor")
    if not changes:
        raise UsageError("trainer limits: give --max-rss SIZE and/or --disk-floor SIZE")
    run, summary = _live(args)
    control.send(run, "limits", **changes)
    shown = ", ".join(f"{k.replace('_', '-')} {format_size(v)}" for k, v in changes.items())
    print(f"limits sent to {summary.name} ({shown}): it applies them at its next safe point")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from trainer.diagnostics.command import cmd_doctor as run

    return run(args)


def cmd_import(args: argparse.Namespace) -> int:
    from trainer.imports.to_run import import_run

    paths_, points, keys = import_run(
        Path(args.source).expanduser(), _runs_dir(args, create=True), fmt=args.format,
        name=args.name,
        run=args.run, on_problem=lambda problem: print(f"warning: skipped {problem}",
                                                       file=sys.stderr),
    )  # fmt: skip
    print(f"imported {points} points of {keys} keys into run {paths_.name} ({paths_.root})")
    return 0
