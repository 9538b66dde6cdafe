"""``python -m bench [--quick] [--only NAME ...] [--output PATH] [--strict]``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from bench import (
    app_live,
    app_memory,
    app_start,
    big_run,
    flat_out,
    journal_size,
    log_cost,
    many_runs,
    redraw,
    report,
    summary_cost,
    tail_read,
    training_overhead,
)
from bench.common import Result

MODULES: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        log_cost,
        flat_out,
        journal_size,
        training_overhead,
        tail_read,
        app_start,
        redraw,
        app_live,
        app_memory,
        many_runs,
        big_run,
        summary_cost,
    )
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="TrainDesk's benchmarks: ratios measured side by side"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument(
        "--only", action="append", choices=list(MODULES), metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(MODULES)}",
    )  # fmt: skip
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT,
        help="where to write the Markdown report (default: docs/performance.md)",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.only or list(MODULES)
    started = time.perf_counter()
    results: list[Result] = []
    for name in names:
        print(f"{name} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        bench: Callable[[bool], list[Result]] = MODULES[name].run
        got = bench(args.quick)
        results += got
        verdicts = ", ".join(f"{r.verdict} {r.ratio:.3g}" for r in got)
        print(f"{time.perf_counter() - t0:.0f} s: {verdicts}", flush=True)
    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    info = report.RunInfo(
        command=f"python -m bench {argv_text}".strip(),
        quick=args.quick,
        seconds=time.perf_counter() - started,
        methods={name: MODULES[name].__doc__ or "" for name in names},
    )
    text = report.markdown(results, info, report.machine())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print()
    print(report.table(results))
    print(f"\nwritten to {args.output}")
    return 1 if args.strict and not all(r.passed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
