"""``wandb.errors`` (stand-in)."""

from .. import CommError, Error, UsageError

__all__ = ["CommError", "Error", "UsageError"]
