"""``wandb.sdk.wandb_config`` (stand-in)."""

from .. import Config

__all__ = ["Config"]
