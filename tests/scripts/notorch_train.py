"""A training loop without torch: a step every ``step_sleep`` seconds, logged; it stops at a
safe point when asked (with no checkpoint: it has no state to keep) and raises at step
``fail_at``.

For the tests whose run only has to fail, be killed, or be alive and stepping: it imports
no torch, so it costs about 0.5 s of CPU to start instead of tiny_train.py's 2.5 s. A test
that stops, checkpoints or resumes a run uses tiny_train.py. Config (override with --set):
max_steps, fail_at (-1: never), step_sleep.
"""

import time

import trainer

DEFAULTS = {"max_steps": 50, "fail_at": -1, "step_sleep": 0.0}

with trainer.init(config=DEFAULTS) as run:
    for step in range(run.start_step + 1, (run.max_steps or 0) + 1):
        if step == int(run.config["fail_at"]):
            raise RuntimeError(f"planned failure at step {step}")
        run.log({"train/loss": 1.0 / step}, step=step)
        if float(run.config["step_sleep"]) > 0:
            time.sleep(float(run.config["step_sleep"]))  # simulated compute, not synchronisation
        if run.should_stop():
            break
print(f"notorch_train done at step {run.step}")
