"""Running a recipe or a user's script as a run: config, folder, console, progress, exit."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer import config as cfg
from trainer import paths, recipes
from trainer.api import Run, create_run, resume_run, set_active
from trainer.cli.console import ConsoleCapture, Progress
from trainer.cli.gpu_plan import hold_resources, plan_gpus
from trainer.cli.resource_options import resources_from_args
from trainer.errors import (
    ScriptError,
    TrainDeskError,
    UsageError,
    disk_full,
    disk_full_cause,
)
from trainer.journal.reader import JournalReader
from trainer.resources.acquire import release
from trainer.resources.limits import Resources
from trainer.resources.store import GpuRequest
from trainer.resources.tmpdirs import run_tmpdir

log = logging.getLogger("trainer.cli")

EXIT_TRAINING_ERROR = 1


@dataclass
class Target:
    """What a run executes: a built-in recipe or a script, and its resolved config."""

    kind: str  # "recipe" | "script"
    entry: str  # recipe name or absolute script path
    config: dict[str, Any]
    script_args: list[str] = field(default_factory=list)


def prepare_target(args: argparse.Namespace) -> Target:
    """Resolve the target and its config before anything is created on disk."""
    overrides = list(args.overrides)
    for flag, key in (("max_steps", "max_steps"), ("device", "device"), ("seed", "seed")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    file = Path(args.config) if args.config else None
    if args.target.endswith(".py") or os.sep in args.target:
        script = Path(args.target).expanduser()
        if not script.is_file():
            raise ScriptError(f"script {args.target} does not exist: check the path")
        spec = cfg.ConfigSpec.open()
        entry = str(script.resolve())
        config = cfg.resolve(spec, file=file, env=args.env, overrides=overrides)
        return Target("script", entry, config, list(args.script_args))
    recipe = recipes.get(args.target)
    if args.script_args:
        raise UsageError(f"recipe {recipe.name} takes no extra arguments: {args.script_args}")
    config = cfg.resolve(recipe.spec(), file=file, env=args.env, overrides=overrides)
    return Target("recipe", recipe.name, config)


def _run_options(config: dict[str, Any]) -> dict[str, Any]:
    max_steps = config.get("max_steps")
    return {
        "max_steps": int(max_steps) if isinstance(max_steps, int) else None,
        "keep_checkpoints": int(config.get("keep_checkpoints", 3)),
        "checkpoint_every": int(config["checkpoint_every"])
        if config.get("checkpoint_every")
        else None,
    }


def execute(target: Target, args: argparse.Namespace) -> int:
    resources = resources_from_args(args)
    request = plan_gpus(resources, target.config)
    run = create_run(
        entry=target.entry, kind=target.kind, config=target.config, name=args.name,
        runs_root=paths.runs_dir(args.runs_dir), **_run_options(target.config),
    )  # fmt: skip
    resources.save(run.paths.root)
    return _drive(run, target, quiet=args.quiet, resources=resources, request=request)


def execute_resume(run_paths: paths.RunPaths, args: argparse.Namespace) -> int:
    with JournalReader(run_paths.root) as reader:
        info = reader.run_info()
    config = dict(info.config)
    if args.max_steps is not None:
        config["max_steps"] = args.max_steps
    elif info.max_steps is not None and "max_steps" in config:
        config["max_steps"] = info.max_steps  # the budget as extended while it ran
    if info.kind in ("command", "distributed"):
        from trainer.cli.command_run import resume_command

        return resume_command(run_paths, args, info.entry, config)
    if info.kind == "recipe":
        spec = recipes.get(info.entry).spec()
        config = cfg.validate(spec, config)
        target = Target("recipe", info.entry, config)
    else:
        if not Path(info.entry).is_file():
            raise ScriptError(f"script {info.entry} of run {info.name} no longer exists")
        target = Target(info.kind, info.entry, config)
    resources = resources_from_args(args, Resources.load(run_paths.root))
    request = plan_gpus(resources, config)
    run = resume_run(run_paths, config=config, **_run_options(config))
    resources.save(run.paths.root)
    if args.max_steps is not None:
        run._writer.set_fields(max_steps=args.max_steps)
    print(f"resuming {run.name} from step {run.start_step} as attempt {run.attempt}")
    return _drive(run, target, quiet=args.quiet, resources=resources, request=request)


def _drive(
    run: Run,
    target: Target,
    *,
    quiet: bool,
    resources: Resources | None = None,
    request: GpuRequest | None = None,
) -> int:
    """Run the target inside the run: console captured, signals handled, status journaled."""
    resources = resources or Resources()
    request = request or GpuRequest()
    run.install_signal_handlers()
    os.environ[paths.ENV_RUN_DIR] = str(run.paths.root)
    with (
        ConsoleCapture(run.paths.stdout_log, run.paths.stderr_log) as console,
        run_tmpdir(run.id),
    ):
        print(f"run {run.name} ({run.id}) in {run.paths.root}", flush=True)
        try:
            gpus = hold_resources(run, request, resources)
            if gpus is None:
                reason = run.stop_reason or "cancelled: taken out of the queue"
                run.finish("stopped", f"stopped while queued ({reason})")
                print(f"run {run.name} stopped while queued", flush=True)
                return 0
            with Progress(run, terminal=console.terminal, enabled=not quiet):
                run.start()
                _call(run, target)
        except TrainDeskError as exc:
            _fail(run, exc)
            raise
        except KeyboardInterrupt:
            run.finish("stopped", "interrupted")
            return 0
        except BaseException as exc:
            full = disk_full_cause(exc)
            if full is not None:  # a log, a checkpoint or the journal: exit 4 (not restarted)
                error = disk_full(f"{run.name}: a file of the run", full)
                _fail(run, error)
                raise error from exc
            _fail(run, exc)
            traceback.print_exc(file=sys.stderr)
            where = f"{run.paths.stderr_log}"
            print(
                f"error: the run {run.name} failed: {type(exc).__name__}: {exc} "
                f"(traceback in {where} and the journal)",
                file=console.terminal if console.terminal is not None else sys.stdout,
            )
            return EXIT_TRAINING_ERROR
        finally:
            if request.wants_gpu:
                release(run.paths.root)
        run.finish()
        status = "stopped" if run.stop_reason else "finished"
        print(f"run {run.name} {status} at step {run.step}" +
              (f" ({run.stop_reason})" if run.stop_reason else ""), flush=True)  # fmt: skip
    return 0


def _fail(run: Run, exc: BaseException) -> None:
    # If the journal itself failed (disk full), the error's message already says so.
    with contextlib.suppress(TrainDeskError):
        run.fail(exc)


def _call(run: Run, target: Target) -> None:
    if target.kind == "recipe":
        recipes.get(target.entry).entry_point()(run)
        return
    set_active(run)
    saved_argv = sys.argv[:]
    sys.argv = [target.entry, *target.script_args]
    sys.path.insert(0, str(Path(target.entry).parent))
    try:
        runpy.run_path(target.entry, run_name="__main__")
    except SyntaxError as exc:
        raise ScriptError(f"script {target.entry} has a syntax error: {exc}") from exc
    finally:
        sys.argv = saved_argv
        set_active(None)
