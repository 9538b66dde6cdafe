"""``trainer``: the headless command line. ``--help``, ``ls`` and ``show`` import no torch.

Exit codes: 0 done (finished, or stopped on request); 1 the training raised; 2 bad usage or
config; 3 a run or journal that cannot be found or read; 4 the disk is full; 5 the run is in
use by another attempt; 130 interrupted twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from trainer.errors import TrainDeskError, disk_full, disk_full_cause


def build_parser() -> argparse.ArgumentParser:
    from trainer.cli import commands
    from trainer.cli.resource_options import add_options as add_resource_options
    from trainer.cli.supervise import add_options as add_supervision_options

    parser = argparse.ArgumentParser(
        prog="trainer",
        description="TrainDesk's headless trainer: run, watch and control training runs.",
        epilog="Exit codes: 0 done or stopped, 1 training error, 2 usage or config error, "
        "3 run or journal not found/readable, 4 disk full, 130 interrupted twice.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def runs_dir_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--runs-dir",
            metavar="D",
            help="the runs directory (default: $TRAINDESK_HOME or the user data dir)",
        )

    p = sub.add_parser("run", help="run a recipe or a script.py as a new run")
    p.add_argument("target", metavar="RECIPE|script.py", help="a built-in recipe or a script")
    p.add_argument("--config", metavar="FILE", help="a TOML config file")
    p.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
        help="override one config value (repeatable)",
    )  # fmt: skip
    p.add_argument("--env", metavar="NAME", help="apply the config's [env.NAME] overlay")
    p.add_argument("--name", metavar="N", help="the run's name (default: recipe and time)")
    p.add_argument("--max-steps", type=int, metavar="N", help="train for N steps")
    p.add_argument("--device", metavar="auto|cpu|cuda[:i]", help="where to train")
    p.add_argument("--seed", type=int, metavar="S", help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("script_args", nargs="*", metavar="-- ARGS",
                   help="arguments for a script; or `trainer run [options] -- CMD ARGS` to "
                   "run any command as a run")  # fmt: skip
    g = p.add_argument_group("several processes (torchrun)")
    g.add_argument("--nproc-per-node", type=int, metavar="N",
                   help="train the recipe with DistributedDataParallel on N processes per "
                   "node, through torchrun")  # fmt: skip
    g.add_argument("--nnodes", type=int, metavar="M", help="the number of nodes (default 1)")
    g.add_argument("--node-rank", type=int, metavar="R", help="this node's rank (0..M-1)")
    g.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="the rendezvous of all nodes")
    g.add_argument(
        "--elastic-restarts",
        type=int,
        default=3,
        metavar="K",
        help="times torchrun restarts the workers after a failure (default 3)",
    )
    p.add_argument("--capture", action="append", default=[],
                   metavar="wandb|tensorboard[=DIR]|print:kv|print:dict|print:REGEX",
                   help="with -- CMD: where the command's metrics come from besides "
                   "trainer.init (repeatable)")  # fmt: skip
    runs_dir_opt(p)
    add_resource_options(p)
    add_supervision_options(p)
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("ls", help="list runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_ls)

    p = sub.add_parser("show", help="show one run")
    p.add_argument("run", metavar="RUN", help="id, unique id prefix, name or run folder path")
    p.add_argument("--json", action="store_true", help="print JSON")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_show)

    p = sub.add_parser("logs", help="print a run's console log")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")
    p.add_argument("--stderr", action="store_true", help="the stderr log instead of stdout")
    p.add_argument("--structured", action="store_true", help="the JSON-lines trainer log")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_logs)

    p = sub.add_parser("export", help="export a run's metrics")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", choices=["csv", "json"], required=True)
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--all-attempts", action="store_true", help="include superseded points")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_export)

    for name, text, wait in [
        ("stop", "stop a live run at its next safe point, with a checkpoint; waits for it "
         "and reports the checkpoint's step", True),
        ("pause", "pause a live run at its next safe point; returns once it is paused", True),
        ("checkpoint", "ask a live run to save a checkpoint now", False),
    ]:  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("run", metavar="RUN")
        p.add_argument(
            "--wait", action=argparse.BooleanOptionalAction, default=wait,
            help="wait until the run has obeyed (--no-wait: return once asked; default: "
            f"{'wait' if wait else 'no wait'})",
        )  # fmt: skip
        runs_dir_opt(p)
        p.set_defaults(func=commands.cmd_control, control=name)

    p = sub.add_parser("extend", help="let a live run train N more steps")
    p.add_argument("run", metavar="RUN")
    p.add_argument("steps", type=int, metavar="N")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_extend)

    p = sub.add_parser(
        "resume",
        help="unpause a paused run, or restart a stopped/crashed/failed one from its last "
        "checkpoint as a new attempt",
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("--max-steps", type=int, metavar="N", help="a new step budget")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--trust", action="store_true",
        help="run the command or script named by a run folder that was made elsewhere "
        "(copied or moved here): it is shown first",
    )  # fmt: skip
    runs_dir_opt(p)
    add_resource_options(p)
    add_supervision_options(p)
    p.set_defaults(func=commands.cmd_resume)

    p = sub.add_parser("import", help="import TensorBoard logs, a CSV or a JSON file as a run")
    p.add_argument("source", metavar="SOURCE", help="a TensorBoard log dir, a .csv or a .json")
    p.add_argument(
        "--format",
        choices=["auto", "csv", "json", "tensorboard"],
        default="auto",
        help="the source's format (default: from the name)",
    )
    p.add_argument("--name", metavar="N", help="the new run's name (default: source and time)")
    p.add_argument("--run", metavar="NAME", help="from a CSV of several runs, this one")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_import)

    p = sub.add_parser("gpus", help="list the GPUs, their memory and which runs lease them")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands.cmd_gpus)

    p = sub.add_parser("queue", help="list the runs waiting for GPUs; cancel or reorder them")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "action",
        nargs="?",
        choices=["cancel", "move", "priority"],
        help="cancel ID, move ID POSITION, or priority ID P",
    )
    p.add_argument("ids", nargs="*", type=int, metavar="N", help="queue entry id (and value)")
    p.set_defaults(func=commands.cmd_queue)

    p = sub.add_parser("limits", help="change a live run's RSS limit or disk floor")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--max-rss", metavar="SIZE", help="the new RSS limit (e.g. 8GiB)")
    p.add_argument("--disk-floor", metavar="SIZE", help="the new free-disk floor (e.g. 1GiB)")
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_limits)

    p = sub.add_parser(
        "doctor",
        help="check this machine for TrainDesk; --bundle writes a zip for a bug report",
        description="Check Python, torch, NVML, PySide6, SQLite WAL, the runs directory, the "
        "disk, the display and the lease store: one line each, PASS, WARN or FAIL with a fix. "
        "Exit code 0 when nothing fails, 1 when a check fails, 2 when --bundle FILE exists.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument(
        "--bundle", metavar="FILE.zip",
        help="also write a diagnostics zip (report, versions, recent runs' configs and log "
        "tails; secrets scrubbed)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite FILE.zip if it exists")
    p.add_argument(
        "--runs", type=int, default=5, metavar="N", dest="recent",
        help="the N most recently active runs go in the bundle (default: 5)",
    )  # fmt: skip
    runs_dir_opt(p)
    p.set_defaults(func=commands.cmd_doctor)

    p = sub.add_parser("recipes", help="list the built-in recipes")
    p.add_argument("--config", metavar="RECIPE", help="print a recipe's default config")
    p.set_defaults(func=commands.cmd_recipes)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for ``trainer run [options] -- CMD ARGS`` also set ``command_mode`` and
    keep the command exactly as typed (argparse drops a ``--`` inside it)."""
    args = parser.parse_args(argv)
    if args.command == "run":
        from trainer.cli.command_run import command_mode

        args.command_mode = command_mode(argv, args.target)
        if args.command_mode:
            start = argv.index("--") + 1
            args.script_args = argv[argv.index(args.target, start) + 1 :]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parse_args(parser, args_list)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)  # INFO goes to the run's structured log only
    try:
        return int(args.func(args) or 0)
    except TrainDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0  # `trainer ls | head`: the reader left
    except OSError as exc:  # a full disk outside the journal and checkpoints: still exit 4
        if disk_full_cause(exc) is None:
            raise
        error = disk_full("a file of the run", exc)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


def _version() -> str:
    from trainer.version import __version__

    return __version__
