"""A torch-free run that logs ``keys`` x ``rate`` points a second (default 10 x 500 = 5,000/s).

Usage: ``python -m trainer run bench/scripts/firehose.py --name fire --runs-dir D --quiet
--set seconds=N`` (also ``--set rate=STEPS_PER_S --set keys=K``).

The pace follows a deadline: step ``i`` is due at ``start + i / rate``; each wake-up logs every
step that is due, then sleeps until the next one is. A late wake-up is caught up at once, so the
points per second do not drift however long the run. ``run.should_stop()`` is called once per
wake-up, so a stop request (or SIGTERM) ends the run within a few milliseconds.
"""

from __future__ import annotations

import math
import time

import trainer

DEFAULTS = {"seconds": 10.0, "rate": 500, "keys": 10}

with trainer.init(config=DEFAULTS) as run:
    seconds = float(run.config["seconds"])
    rate = int(run.config["rate"])
    names = [f"train/metric_{k}" for k in range(int(run.config["keys"]))]
    total = round(seconds * rate)
    step = 0
    start = time.perf_counter()
    while step < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while step < due:
            step += 1
            x = step / rate
            run.log(
                {name: math.exp(-x / 20) + 0.1 * math.sin(x * (k + 1)) for k, name in
                 enumerate(names)},
                step=step,
            )  # fmt: skip
        if run.should_stop():
            break
        time.sleep(max(0.0, start + step / rate - time.perf_counter()))
    print(f"firehose: {step} steps x {len(names)} keys in {time.perf_counter() - start:.2f} s")
