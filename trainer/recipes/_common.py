"""Shared pieces of the built-in recipes: device, threads, batches, schedule and the loop.

Exact resume on the CPU rests on three rules that every recipe follows:

* a step's batch is a pure function of ``(seed, step)`` (:func:`step_generator`), so the data
  position is just the step and nothing about a data loader needs saving;
* the checkpoint holds the model, optimizer, scheduler and metric-window state dicts and the
  step; :meth:`trainer.api.Run.checkpoint` adds the torch and Python RNG states, which
  :meth:`trainer.api.Run.restore` puts back (dropout draws from the global torch RNG);
* the learning-rate schedule's horizon is the *config's* ``max_steps`` when the run starts,
  never the run's (which an "extend" message may grow, or a test may cut short), and it is
  saved with the scheduler, so a run stopped early and resumed (even with a larger
  ``max_steps``) takes the same steps as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import ConfigError
from trainer.perf import PhaseTimer

if TYPE_CHECKING:
    from trainer.api import Run

#: Multiplier that spreads ``seed`` apart from ``step`` in :func:`step_generator`.
SEED_STRIDE = 1_000_003


# -------------------------------------------------------------------- set-up
def pick_device(value: str) -> torch.device:
    """The config's ``device``: "auto" is CUDA where there is one, else the CPU."""
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"config key 'device': {value!r} is not available here (no CUDA device): "
                "use --device cpu or auto"
            )
        device = torch.device(value)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"config key 'device': {value!r} is not available here (CUDA devices are "
                f"cuda:0..cuda:{count - 1}): use --device cuda:0, cpu or auto"
            )
        return device
    return torch.device(value)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads`` (0 leaves torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for one step's batch: a pure function of (seed, step)."""
    gen = torch.Generator()
    gen.manual_seed(seed * SEED_STRIDE + step)
    return gen


def data_generator(seed: int) -> torch.Generator:
    """A CPU generator for a dataset built from the seed (step 0 is never a training step)."""
    return step_generator(seed, 0)


class WarmupCosine:
    """LambdaLR factor: linear warmup over ``warmup`` steps, then cosine down to ``min_ratio``.

    The factor for the step after ``i`` scheduler steps is ``self(i)``; past ``total`` it stays
    at ``min_ratio``. A callable object rather than a closure: LambdaLR saves its attributes
    in the scheduler's state dict, so a resumed run keeps the horizon it started with even if
    the config's ``max_steps`` grew in between (``trainer resume --max-steps``, "extend").
    """

    def __init__(self, warmup: int, total: int, min_ratio: float) -> None:
        self.warmup = warmup
        self.total = total
        self.min_ratio = min_ratio

    def __call__(self, i: int) -> float:
        if self.warmup > 0 and i < self.warmup:
            return (i + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (i - self.warmup) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: Mapping[str, Any]
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + cosine over the config's ``max_steps`` (see the module docstring)."""
    factor = WarmupCosine(
        int(config["warmup_steps"]), int(config["max_steps"]), float(config["min_lr_ratio"])
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def classification_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy of a classifier on a fixed validation set."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    acc = (logits.argmax(1) == y).float().mean()
    return {"loss": float(loss.item()), "acc": float(acc.item())}


def gpu_metrics(device: torch.device) -> dict[str, float]:
    """GPU memory and utilisation of the run's device, where it is a GPU."""
    if device.type != "cuda":
        return {}
    index = device.index if device.index is not None else torch.cuda.current_device()
    out = {
        "perf/gpu_mem_allocated_gb": torch.cuda.memory_allocated(index) / 2**30,
        "perf/gpu_mem_reserved_gb": torch.cuda.memory_reserved(index) / 2**30,
    }
    # No NVML in this torch build: utilisation is "n/a", not an error.
    with contextlib.suppress(Exception):
        out["perf/gpu_util"] = float(torch.cuda.utilization(index))
    return out


def rss_mb() -> float:
    """This process's resident memory in MiB (about 20 µs)."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


# -------------------------------------------------------------------- several processes
def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless running under torchrun with a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped in DistributedDataParallel under torchrun; itself otherwise."""
    if world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (checkpoints hold its state)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch (rows rank, rank + n, ...); all of it alone.

    Every rank draws the same global batch from ``(seed, step)``, so the shards partition it
    and the averaged gradients equal one process's on the whole batch.
    """
    rank, n = world()
    return batch if n == 1 else batch[rank::n]


def mean_across_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each value averaged over the ranks (the same on every rank)."""
    if world()[1] == 1 or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= world()[1]
    return dict(zip(keys, tensor.tolist(), strict=True))


# -------------------------------------------------------------------- a small transformer
class Block(nn.Module):
    """Pre-norm transformer block: self-attention (optionally causal) and a GELU MLP."""

    def __init__(
        self, d_model: int, n_heads: int, d_mlp: int, dropout: float = 0.0, causal: bool = True
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ConfigError(
                f"config key 'n_heads': {n_heads} does not divide d_model={d_model}: "
                "choose n_heads so that d_model % n_heads == 0"
            )
        self.n_heads = n_heads
        self.causal = causal
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: compute only the last position's output (all positions attended)."""
        b, _, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        if last_only:
            q, x = q[:, -1:], x[:, -1:]
        heads = self.n_heads
        q, k, v = (z.reshape(b, -1, heads, d // heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal and not last_only,
            dropout_p=self.dropout if self.training else 0.0,
        )  # fmt: skip
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, -1, d)))
        return x + self.drop(self.mlp(self.ln2(x)))


# -------------------------------------------------------------------- metric windows
class Window:
    """Sums of per-step metrics since the last log, kept as tensors (no sync per step).

    Its state goes into the checkpoint, so a log that spans a resume averages the same steps.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, values: Mapping[str, torch.Tensor]) -> None:
        for key, value in values.items():
            value = value.detach().float()
            old = self.sums.get(key)
            self.sums[key] = value.clone() if old is None else old + value
        self.count += 1

    def means(self) -> dict[str, float]:
        n = max(1, self.count)
        return {key: float(total.item()) / n for key, total in self.sums.items()}

    def reset(self) -> None:
        self.sums.clear()
        self.count = 0

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = int(state["count"])


# -------------------------------------------------------------------- the loop
StepFn = Callable[[int, PhaseTimer], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[], dict[str, float]]


def train_loop(
    run: Run,
    *,
    recipe: str,
    device: torch.device,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: StepFn,
    evaluate: EvalFn,
    items_per_step: int,
    rate_key: str,
) -> int:
    """Train from the run's checkpoint (if any) to ``run.max_steps``; return the last step.

    ``loss_fn(step, timer)`` computes the step's loss on its batch and extra metrics (detached
    tensors, averaged into ``train/<name>``), timing the making of its batch as
    ``timer.phase("data")`` (the rest counts as forward); ``evaluate()`` returns
    ``val/<name>`` values (called in eval mode without gradients). Call this after seeding
    torch and building the model, so that the restored RNG state is the one the first resumed
    step draws from.
    """
    config = run.config
    max_steps_default = int(config["max_steps"])
    log_every = int(config["log_every"])
    eval_every = int(config["eval_every"])
    grad_clip = float(config.get("grad_clip", 0.0))
    checkpoint_every = run.checkpoint_every
    if checkpoint_every is None:
        checkpoint_every = int(config.get("checkpoint_every", 0)) or None
    window = Window()

    start = 0
    state = run.restore()
    if state is not None:
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        window.load_state_dict(state["window"], device)
        start = int(state["step"])
    elif run.start_step > 0:
        run.event("warning", f"no checkpoint could be loaded: {recipe} starts from step 0")

    def snapshot(step: int) -> dict[str, Any]:
        return {
            "recipe": recipe,
            "step": step,
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "window": window.state_dict(),
        }

    saved = start
    step = start
    model.train()
    t_window = time.perf_counter()
    window_steps = 0
    eval_seconds = 0.0
    sync = torch.cuda.synchronize if device.type == "cuda" and config.get("perf_sync") else None
    timer = PhaseTimer(sync)
    clock = time.perf_counter
    for step in itertools.count(start + 1):
        max_steps = run.max_steps if run.max_steps is not None else max_steps_default
        if step > max_steps:
            step -= 1
            break
        lr = optimizer.param_groups[0]["lr"]
        t0, data0 = clock(), timer.totals.get("data", 0.0)
        loss, extras = loss_fn(step, timer)
        timer.add("forward", clock() - t0 - (timer.totals.get("data", 0.0) - data0))
        with timer.phase("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with timer.phase("optimizer"):
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            scheduler.step()
        t_log = clock()
        window.add({"loss": loss, **extras})
        window_steps += 1

        last = step == max_steps
        metrics: dict[str, float] = {}
        this_eval = 0.0
        if step % eval_every == 0 or last:
            t_eval = time.perf_counter()
            model.eval()
            with torch.no_grad():
                metrics.update({f"val/{k}": v for k, v in evaluate().items()})
            model.train()
            this_eval = time.perf_counter() - t_eval
            eval_seconds += this_eval
            metrics["perf/eval_s"] = this_eval
        if step % log_every == 0 or last:
            means = mean_across_ranks(window.means(), device)
            metrics.update({f"train/{k}": v for k, v in means.items()})
            metrics["train/lr"] = float(lr)
            # One instant ends this window and starts the next, for the step time and for the
            # phases alike: this step's logging so far counts here, the rest (run.log below)
            # in the next window, so the phases never add up to more than the step time.
            boundary = clock()
            timer.add("logging", boundary - t_log - this_eval)
            t_log, this_eval = boundary, 0.0
            elapsed = boundary - t_window - eval_seconds
            step_time = elapsed / max(1, window_steps)
            metrics["perf/step_time"] = step_time
            metrics[rate_key] = items_per_step / step_time if step_time > 0 else 0.0
            metrics["perf/rss_mb"] = rss_mb()
            metrics.update(timer.metrics(window_steps))
            metrics.update(gpu_metrics(device))
            timer.reset()
            if step % log_every == 0:  # an off-grid last step keeps its window for a resume
                window.reset()
            t_window = boundary
            window_steps = 0
            eval_seconds = 0.0
        if metrics:
            run.log(metrics, step=step)
        timer.add("logging", clock() - t_log - this_eval)

        due = run.should_checkpoint(step) or bool(
            run.checkpoint_every is None and checkpoint_every and step % checkpoint_every == 0
        )
        if due:
            with timer.phase("checkpoint"):
                run.checkpoint(snapshot(step), step=step)
            saved = step
        if run.should_stop():
            break
    if saved != step:
        run.checkpoint(snapshot(step), step=step)
    return step
