"""A training script with a bug: it logs a step at a time and raises at step ``fail_at``.

For the tests of what happens to a failing run (its status, its traceback, restarts and
giving up). It imports no torch: a failing attempt then costs about 0.6 s of CPU instead of
2.5 s, and the supervision tests start several. Config (override with --set): max_steps,
fail_at, step_sleep (ignored, as tiny_train.py's tests pass it).
"""

import trainer

DEFAULTS = {"max_steps": 50, "fail_at": 1, "step_sleep": 0.0}

with trainer.init(config=DEFAULTS) as run:
    for step in range(run.start_step + 1, (run.max_steps or 0) + 1):
        if step == int(run.config["fail_at"]):
            raise RuntimeError(f"planned failure at step {step}")
        run.log({"train/loss": 1.0 / step}, step=step)
