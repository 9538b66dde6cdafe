"""``wandb.sdk.lib.disabled`` (stand-in)."""

from ... import RunDisabled

__all__ = ["RunDisabled"]
