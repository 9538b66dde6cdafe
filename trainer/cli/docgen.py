"""Write the CLI reference (docs/cli.md) from the parser itself, so it never drifts.

``python -m trainer.cli.docgen > docs/cli.md``; a test checks that the file is current.
"""

from __future__ import annotations

import argparse
import os

from trainer.cli.main import build_parser

HEADER = r"""# `trainer` command reference

Generated from `trainer --help` by `python -m trainer.cli.docgen > docs/cli.md`; a test fails
when this file and the parser disagree.

RUN is a run's id, a unique prefix of its id, its name, or the path of its run folder.
A run's name may be any printable text (spaces and letters of any script too) without
`/ \ : * ? " < > |`, not starting with `-` or a space, not ending with `.` or a space, at
most 100 characters. A `--runs-dir` that does not exist is an error, except for `trainer
run` and `trainer import`, which create it (with a note) where its parent exists.

`trainer stop` and `trainer pause` wait until the run has done it (`--no-wait` returns at
once): `trainer pause lm && trainer resume lm` works however long a step takes, and
`trainer stop` prints the step of the checkpoint the run wrote
(`lm stopped at step 213: its checkpoint at step 213 (ckpt-000000213.pt)`).
The runs directory is `--runs-dir`, else `$TRAINDESK_HOME`, else the platform's user data
folder (`~/.local/share/traindesk/runs` on Linux).

## Exit codes

| code | meaning |
|---|---|
| 0 | done: finished, or stopped on request (SIGINT, SIGTERM, `trainer stop`) |
| 1 | the training code raised; the traceback is in the journal and `logs/stderr.log` |
| 2 | bad usage or config (unknown recipe or key, bad value, bad name, missing script) |
| 3 | a run or journal that cannot be found or read (damaged, newer schema, read-only) |
| 4 | the disk (or a file-size limit) is full; everything committed before is kept |
| 5 | the run is in use: another attempt holds its folder's lock (the message names it) |
| 130 | interrupted twice (a second Ctrl-C exits at once; the journal stays intact) |
| 128+N | `trainer run -- CMD`: its command was killed by signal N (137: SIGKILL); `crashed` |
"""


def render() -> str:
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    parts = [HEADER, "## trainer\n", "```text", parser.format_help().rstrip(), "```\n"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += [f"## trainer {name}\n", "```text", sub.format_help().rstrip(), "```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
