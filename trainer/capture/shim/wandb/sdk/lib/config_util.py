"""``wandb.sdk.lib.config_util`` (stand-in): ``ConfigError``, as Hugging Face catches it."""

from ... import ConfigError

__all__ = ["ConfigError"]
