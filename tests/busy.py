"""Run a command while a bounded background load keeps every core busy (``make test-busy``).

    python tests/busy.py [--seconds S] [--hogs N] -- COMMAND ARGS...

Starts N processes (default: one per core) that spin on the CPU for at most S seconds each,
runs COMMAND, then ends the hogs and exits with COMMAND's exit code. The hogs run at normal
priority, so the tests compete with them as they would with other work on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1500.0, help="each hog's longest spin")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="how many hogs")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    code = SPIN.format(seconds=args.seconds)
    hogs = [
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        for _ in range(max(0, args.hogs))
    ]
    print(f"busy.py: {len(hogs)} hogs spinning for at most {args.seconds:g} s", flush=True)
    try:
        return subprocess.call(command, shell=len(command) == 1)
    finally:
        for hog in hogs:
            if hog.poll() is None:
                os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()


if __name__ == "__main__":
    sys.exit(main())
