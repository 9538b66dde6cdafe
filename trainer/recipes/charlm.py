"""``charlm``: a small character-level transformer language model on Python's own sources.

The text is the standard library's top-level ``.py`` files, read in sorted name order up to
``data_bytes`` bytes: every Python installation has it, so nothing is downloaded. The vocabulary
is the 256 byte values (no vocabulary file). The last ``val_fraction`` of the text is held out;
validation uses fixed, evenly spaced windows of it. Each step's windows are drawn from a
generator seeded by (seed, step), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import ConfigError
from trainer.perf import PhaseTimer
from trainer.recipes._common import (
    Block,
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

VOCAB = 256


def stdlib_text(limit: int) -> bytes:
    """The first ``limit`` bytes of the standard library's top-level modules, sorted by name."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[bytes] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        parts.append(data)
        total += len(data)
        if total >= limit:
            break
    text = b"".join(parts)[:limit]
    if not text:
        raise ConfigError(
            f"no Python sources found under {root}: the charlm recipe reads the standard "
            "library's .py files; use another recipe on this installation"
        )
    return text


class CharLM(nn.Module):
    """GPT-style: byte embeddings + learned positions, causal blocks, tied output head."""

    def __init__(
        self, block_size: int, d_model: int, n_layers: int, n_heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, 4 * d_model, dropout, causal=True) for _ in range(n_layers)
        )
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB, bias=False)
        self.head.weight = self.tok.weight
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.tok(idx) + self.pos(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def train(run: Run) -> None:
    cfg = run.config
    device = pick_device(str(cfg["device"]))
    set_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    batch_size = int(cfg["batch_size"])
    block = int(cfg["block_size"])

    text = torch.frombuffer(bytearray(stdlib_text(int(cfg["data_bytes"]))), dtype=torch.uint8)
    n_val = int(len(text) * float(cfg["val_fraction"]))
    train_text, val_text = text[: len(text) - n_val], text[len(text) - n_val :]
    if len(train_text) <= block + 1 or len(val_text) <= block + 1:
        raise ConfigError(
            f"config key 'data_bytes': {len(text)} bytes of text are too few for block_size="
            f"{block} and val_fraction={cfg['val_fraction']}: raise data_bytes or lower "
            "block_size"
        )
    span = torch.arange(block + 1)
    n_eval = int(cfg["eval_batches"]) * batch_size
    eval_starts = torch.linspace(0, len(val_text) - block - 1, n_eval).long()
    val_windows = val_text[eval_starts[:, None] + span].long()

    torch.manual_seed(seed)
    model: nn.Module = CharLM(
        block, int(cfg["d_model"]), int(cfg["n_layers"]), int(cfg["n_heads"]),
        float(cfg["dropout"]),
    ).to(device)  # fmt: skip
    model = data_parallel(model, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]),
        betas=(0.9, 0.99),
    )  # fmt: skip
    scheduler = make_scheduler(optimizer, cfg)

    def lm_loss(windows: torch.Tensor) -> torch.Tensor:
        windows = windows.to(device)
        logits = model(windows[:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB), windows[:, 1:].reshape(-1))

    def loss_fn(step: int, timer: PhaseTimer) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with timer.phase("data"):
            starts = shard(
                torch.randint(
                    len(train_text) - block - 1, (batch_size,), generator=step_generator(seed, step)
                )
            )
            windows = train_text[starts[:, None] + span].long().to(device)
        return lm_loss(windows), {}

    def evaluate() -> dict[str, float]:
        total = torch.zeros((), device=device)
        for chunk in val_windows.split(batch_size):
            total += lm_loss(chunk) * len(chunk)
        return {"loss": float(total.item()) / len(val_windows)}

    train_loop(
        run, recipe="charlm", device=device, model=model, optimizer=optimizer,
        scheduler=scheduler, loss_fn=loss_fn, evaluate=evaluate,
        items_per_step=batch_size * block, rate_key="perf/tokens_per_s",
    )  # fmt: skip
