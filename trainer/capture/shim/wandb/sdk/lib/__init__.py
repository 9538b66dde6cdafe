"""``wandb.sdk.lib`` (stand-in): ``RunDisabled``, as Lightning's WandbLogger imports it."""

from . import config_util, disabled
from .disabled import RunDisabled

__all__ = ["RunDisabled", "config_util", "disabled"]
