"""Log KEYS scalars per step as fast as possible for SECONDS, through the public API (used by
``bench/flat_out.py`` and ``tests/test_backpressure.py``).

argv: runs_dir seconds keys. Prints one JSON line: steps logged, RSS at start and peak (bytes),
the writer's buffer bound and how long log() waited. No torch: the trainer's own cost only.
"""

import json
import sys
import time

import psutil

import trainer

runs, seconds, keys = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
names = [f"k{i}" for i in range(keys)]
proc = psutil.Process()
with trainer.init(name="flat", config={}, runs_dir=runs) as run:
    start_rss = proc.memory_info().rss
    values = dict.fromkeys(names, 0.0)  # one dict, reused: log() copies it
    step = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            step += 1
            for i, name in enumerate(names):
                values[name] = step + i / 100
            run.log(values, step=step)
    writer = run._writer
    report = {
        "steps": step,
        "start_rss": start_rss,
        "max_queued": writer.max_queued,
        "throttled_s": writer.throttled_s,
    }
# VmHWM: this program's own peak (ru_maxrss would carry the parent's over exec)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({**report, "peak_rss": peak}), flush=True)
