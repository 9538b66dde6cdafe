"""``trainer doctor [--json] [--bundle FILE.zip [--force] [--runs N]]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer import paths, settings
from trainer.diagnostics.bundle import build_bundle
from trainer.diagnostics.checks import run_checks
from trainer.errors import UsageError


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the checks (a table, or JSON); write the bundle if asked. 1 if a check failed."""
    runs_dir = paths.runs_dir(args.runs_dir)
    bundle = Path(args.bundle) if args.bundle else None
    if bundle is not None and bundle.exists() and not args.force:  # before the slow checks
        raise UsageError(f"{bundle} already exists: choose another FILE or add --force")
    if args.recent < 0:
        raise UsageError(f"--runs {args.recent}: give 0 or more runs")
    report = run_checks(runs_dir)
    if args.json:
        print(json.dumps({**report.to_json(), "settings": settings.current()}, indent=2,
                         default=str))  # fmt: skip
    else:
        print(report.table())
        print(settings_table())
    if bundle is not None:
        names = build_bundle(bundle, runs_dir, recent=args.recent, force=args.force,
                             report=report)  # fmt: skip
        runs = len({n.split("/")[1] for n in names if n.startswith("runs/")})
        runs_text = "1 run" if runs == 1 else f"{runs} runs"
        print(f"wrote {bundle}: {len(names)} files, {runs_text} (secrets scrubbed)",
              file=sys.stderr)  # fmt: skip
    return report.exit_code


def settings_table() -> str:
    """The settings (environment variables) as they are now: each of the user's, and any
    other that is set (docs/settings.md says what each means)."""
    lines = ["\nsettings (environment variables, see docs/settings.md):"]
    for s in settings.SETTINGS.values():
        raw = s.raw()
        if raw is None and s.set_by != settings.BY_YOU:
            continue
        default = f" (default {s.default})" if s.default not in (None, "") else ""
        shown = f"{s.name}={raw}" if raw is not None else f"{s.name} unset{default}"
        problem = s.problem()
        lines.append(f"  {shown}" + (f"  warning: {problem}" if problem else ""))
    return "\n".join(lines)
