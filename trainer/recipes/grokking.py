"""``grokking``: modular addition with a small transformer; validation accuracy jumps late.

Every pair (a, b) with 0 <= a, b < p is an example "a b =" whose answer is (a + b) mod p. A
``train_fraction`` of the p² pairs, chosen from the seed, is the training set; the rest is
held out. With strong weight decay the model first memorises the training set (train accuracy
near 1, validation near chance) and, thousands of steps later, generalises: validation
accuracy climbs to near 1 ("grokking", Power et al. 2022).

Each step trains on the whole training set (``batch_size = 0``) or on a mini-batch drawn from
a generator seeded by (seed, step), so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import ConfigError
from trainer.perf import PhaseTimer
from trainer.recipes._common import (
    Block,
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


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def make_split(
    p: int, train_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val): rows "a b =" (``=`` is token p), answers (a+b) mod p."""
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).unbind(1)
    x = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    y = (a + b) % p
    order = torch.randperm(p * p, generator=data_generator(seed))
    n_train = round(train_fraction * p * p)
    if not 1 <= n_train < p * p:
        raise ConfigError(
            f"config key 'train_fraction': {train_fraction} leaves {n_train} of {p * p} pairs "
            "for training: choose a fraction that leaves some pairs on each side"
        )
    train, val = order[:n_train], order[n_train:]
    return x[train], y[train], x[val], y[val]


class AdditionModel(nn.Module):
    """Token and position embeddings, bidirectional blocks, read out at the "=" position."""

    def __init__(self, p: int, d_model: int, n_layers: int, n_heads: int, d_mlp: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(p + 1, d_model)
        self.pos = nn.Embedding(3, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_mlp, causal=False) for _ in range(n_layers)
        )
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x) + self.pos.weight
        for i, block in enumerate(self.blocks):
            h = block(h, last_only=i == len(self.blocks) - 1)
        return self.head(self.ln(h[:, -1]))


def train(run: Run) -> None:
    cfg = run.config
    device = pick_device(str(cfg["device"]))
    set_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    p = int(cfg["p"])

    x_train, y_train, x_val, y_val = make_split(p, float(cfg["train_fraction"]), seed)
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_val, y_val = x_val.to(device), y_val.to(device)
    n_train = len(x_train)
    batch_size = int(cfg["batch_size"])
    full_batch = batch_size == 0 or batch_size >= n_train
    if full_batch:
        batch_size = n_train

    torch.manual_seed(seed)
    model: nn.Module = AdditionModel(
        p, int(cfg["d_model"]), int(cfg["n_layers"]), int(cfg["n_heads"]), int(cfg["d_mlp"])
    ).to(device)
    model = data_parallel(model, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]),
        betas=(0.9, 0.98),
    )  # fmt: skip
    scheduler = make_scheduler(optimizer, cfg)

    def loss_fn(step: int, timer: PhaseTimer) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with timer.phase("data"):
            if full_batch:
                x, y = shard(x_train), shard(y_train)
            else:
                idx = torch.randperm(n_train, generator=step_generator(seed, step))[:batch_size]
                idx = shard(idx).to(device)
                x, y = x_train[idx], y_train[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"acc": (logits.argmax(1) == y).float().mean()}

    def evaluate() -> dict[str, float]:
        return classification_eval(model, x_val, y_val)

    train_loop(
        run, recipe="grokking", device=device, model=model, optimizer=optimizer,
        scheduler=scheduler, loss_fn=loss_fn, evaluate=evaluate, items_per_step=batch_size,
        rate_key="perf/samples_per_s",
    )  # fmt: skip
