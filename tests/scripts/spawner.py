"""A training script with a grandchild (as DataLoader workers are): it writes the grandchild's
pid to ``<run folder>/grandchild.pid`` and then trains slowly until stopped."""

import subprocess
import sys
import time

import trainer

with trainer.init(config={"max_steps": 100000}) as run:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (run.paths.root / "grandchild.pid").write_text(str(worker.pid))
    for step in range(run.start_step + 1, run.max_steps + 1):
        run.log({"train/loss": 1.0 / step}, step=step)
        time.sleep(0.01)  # simulated compute
        if run.should_stop():
            break
    worker.kill()
    worker.wait()
