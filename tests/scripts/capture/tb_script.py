"""A script that writes TensorBoard logs with torch.utils.tensorboard into ./tb."""

import time

from torch.utils.tensorboard import SummaryWriter

writer = SummaryWriter("tb")
for step in range(1, 31):
    writer.add_scalar("train/loss", 1.0 / step, step)
    writer.add_scalar("train/acc", step / 30, step)
    writer.flush()
    time.sleep(0.01)  # simulated compute
writer.close()
