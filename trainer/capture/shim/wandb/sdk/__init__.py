"""``wandb.sdk``: the module layout integrations import from (stand-in, see ``wandb``)."""

from .. import Artifact, Config, Run, Settings, Summary
from . import lib, wandb_config, wandb_run, wandb_settings

__all__ = ["Artifact", "Config", "Run", "Settings", "Summary", "lib", "wandb_config",
           "wandb_run", "wandb_settings"]  # fmt: skip
