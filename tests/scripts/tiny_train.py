"""A tiny, deterministic training script for tests: a linear model, real torch, real journal.

Config (defaults below, override with --set): max_steps, lr, seed, checkpoint_every,
step_sleep (seconds of simulated compute per step, so tests can kill it mid-run),
leak_mb (grow memory), fail_at (raise at this step).

Plain SGD, written out: building a ``torch.optim`` optimizer imports ``torch._dynamo``
(about 2 s of CPU per process with torch 2.13, as long as ``import torch`` itself), and the
suite starts this script a few hundred times.
"""

import time

import torch

import trainer

DEFAULTS = {
    "max_steps": 200,
    "lr": 0.05,
    "seed": 0,
    "checkpoint_every": 10,
    "step_sleep": 0.0,
    "fail_at": -1,
    "keys": 2,
    "leak_mb": 0,
}

with trainer.init(config=DEFAULTS) as run:
    cfg = run.config
    torch.manual_seed(int(cfg["seed"]))
    model = torch.nn.Linear(4, 1)
    lr = float(cfg["lr"])
    state = run.restore()
    if state is not None:
        model.load_state_dict(state["model"])
    step = run.start_step
    leak = []  # a bug that keeps memory every step (leak_mb > 0)
    while step < (run.max_steps or 0):
        step += 1
        gen = torch.Generator().manual_seed(1000 + step)
        x = torch.randn(32, 4, generator=gen)
        y = x.sum(dim=1, keepdim=True) + 0.01 * torch.randn(32, 1)  # global RNG: restored
        loss = torch.nn.functional.mse_loss(model(x), y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for param, grad in zip(model.parameters(), grads, strict=True):
                param.add_(grad, alpha=-lr)  # what torch.optim.SGD does without momentum
        if step == int(cfg["fail_at"]):
            raise RuntimeError(f"planned failure at step {step}")
        metrics = {"train/loss": loss.item(), "train/w0": model.weight[0, 0].item()}
        for k in range(2, int(cfg["keys"])):
            metrics[f"extra/k{k}"] = loss.item() * k
        run.log(metrics, step=step)
        if int(cfg["leak_mb"]) > 0:
            leak.append(bytearray(int(cfg["leak_mb"]) * 2**20))
        if float(cfg["step_sleep"]) > 0:
            time.sleep(float(cfg["step_sleep"]))  # simulated compute, not synchronisation
        snapshot = {"model": model.state_dict()}
        if run.should_checkpoint(step):
            run.checkpoint(snapshot, step=step)
        if run.should_stop():
            run.checkpoint(snapshot, step=step)
            break
    else:
        run.checkpoint({"model": model.state_dict()}, step=step)
print(f"tiny_train done at step {run.step}")
