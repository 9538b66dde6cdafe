"""TrainDesk's trainer: run folders, the journal and headless training.

Importing ``trainer`` is cheap and imports no torch: ``trainer.init`` loads the API lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.version import __version__

__all__ = ["Run", "__version__", "init"]

if TYPE_CHECKING:
    from trainer.api import Run, init


def __getattr__(name: str) -> Any:
    if name in __all__:
        from trainer import api

        return getattr(api, name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
