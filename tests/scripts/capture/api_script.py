"""Our own API, run as a command (`trainer run -- python api_script.py`): resumable."""

import time

import trainer

with trainer.init(config={"max_steps": 40, "step_sleep": 0.0}) as run:
    state = run.restore()
    total = state["total"] if state else 0.0
    for step in range(run.start_step + 1, int(run.config["max_steps"]) + 1):
        total += step
        run.log({"train/total": total}, step=step)
        time.sleep(float(run.config["step_sleep"]))  # simulated compute
        if step % 5 == 0 or run.should_stop():
            run.checkpoint({"total": total}, step=step)
        if run.should_stop():
            break
