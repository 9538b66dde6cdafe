"""``wandb.sdk.wandb_settings`` (stand-in)."""

from .. import Settings

__all__ = ["Settings"]
