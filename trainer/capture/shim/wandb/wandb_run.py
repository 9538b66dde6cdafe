"""``wandb.wandb_run`` (stand-in): ``Run``, as Lightning's WandbLogger imports it."""

from . import Run

__all__ = ["Run"]
