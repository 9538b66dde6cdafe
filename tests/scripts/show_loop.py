"""``trainer show ARGS`` over and over in one process, until its stdin is closed.

Usage: show_loop.py PACE_S ARGS... (the arguments of ``trainer show``)

Each round calls the CLI's own ``main(["show", *ARGS])``, which opens the journal afresh and
closes it again, as a ``trainer show`` process does, without the 0.4 s of CPU a new
interpreter spends importing before it reads anything. A round starts every PACE_S seconds
at most; the first runs at once. Every round whose output mentions a locked or busy
database is printed as a JSON line ``{"locked": TEXT}``; the last line is ``{"shows": N}``.
"""

import contextlib
import io
import json
import logging
import select
import sys
import traceback

from tests.hammer import LOCKED
from trainer.cli.main import main


class _RoundStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now: each round's log lines land in its output,
    as they would on a ``trainer show`` process's stderr."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


pace = float(sys.argv[1])
args = ["show", *sys.argv[2:]]
# Before main() configures logging on its first call (it keeps a handler set up here).
logging.basicConfig(
    level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", handlers=[_RoundStderr()]
)
shows = 0
while True:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
        except (Exception, SystemExit):  # what a `trainer show` process would print, dying
            traceback.print_exc()
    shows += 1
    text = out.getvalue()
    if any(s in text.lower() for s in LOCKED):
        print(json.dumps({"locked": text.strip()[-300:]}), flush=True)
    # Stdin readable means closed (nothing is ever written to it): the hammer is done.
    if select.select([sys.stdin], [], [], pace)[0]:
        break
print(json.dumps({"shows": shows}), flush=True)
