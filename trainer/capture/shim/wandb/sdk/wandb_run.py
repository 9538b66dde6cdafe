"""``wandb.sdk.wandb_run`` (stand-in)."""

from .. import Run

__all__ = ["Run"]
