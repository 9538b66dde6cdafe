"""``spirals``: an MLP separates two interleaved spirals generated from the seed (seconds).

The points are drawn once from the seed; a fixed share is held out for validation. Each
step's mini-batch is drawn from a generator seeded by (seed, step), so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from trainer.perf import PhaseTimer
from trainer.recipes._common import (
    classification_eval,
    data_generator,
    data_parallel,
    make_scheduler,
    pick_device,
    set_threads,
    shard,
    step_generator,
    train_loop,
)

if TYPE_CHECKING:
    from trainer.api import Run


def make_spirals(
    n_points: int, turns: float, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_points`` points (x, y) in about [-1, 1]², half on each spiral, and their labels."""
    gen = data_generator(seed)
    labels = torch.arange(n_points) % 2
    # sqrt spreads the points evenly along the arc rather than crowding the centre.
    t = torch.rand(n_points, generator=gen).sqrt()
    angle = t * turns * 2 * math.pi + labels * math.pi
    points = torch.stack([t * angle.cos(), t * angle.sin()], dim=1)
    points += noise * torch.randn(n_points, 2, generator=gen)
    order = torch.randperm(n_points, generator=gen)
    return points[order], labels[order]


def build_model(hidden: int, depth: int) -> nn.Module:
    layers: list[nn.Module] = []
    width = 2
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, 2))
    return nn.Sequential(*layers)


def train(run: Run) -> None:
    cfg = run.config
    device = pick_device(str(cfg["device"]))
    set_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    batch_size = int(cfg["batch_size"])

    points, labels = make_spirals(
        int(cfg["n_points"]), float(cfg["turns"]), float(cfg["noise"]), seed
    )
    n_val = max(1, round(len(points) * float(cfg["val_fraction"])))
    x_train, y_train = points[n_val:].to(device), labels[n_val:].to(device)
    x_val, y_val = points[:n_val].to(device), labels[:n_val].to(device)

    torch.manual_seed(seed)
    model = data_parallel(build_model(int(cfg["hidden"]), int(cfg["depth"])).to(device), device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
    )
    scheduler = make_scheduler(optimizer, cfg)

    def loss_fn(step: int, timer: PhaseTimer) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with timer.phase("data"):
            idx = torch.randint(len(x_train), (batch_size,), generator=step_generator(seed, step))
            idx = shard(idx).to(device)
            inputs, target = x_train[idx], y_train[idx]
        logits = model(inputs)
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(1) == target).float().mean()
        return loss, {"acc": acc}

    def evaluate() -> dict[str, float]:
        return classification_eval(model, x_val, y_val)

    train_loop(
        run, recipe="spirals", device=device, model=model, optimizer=optimizer,
        scheduler=scheduler, loss_fn=loss_fn, evaluate=evaluate, items_per_step=batch_size,
        rate_key="perf/samples_per_s",
    )  # fmt: skip
