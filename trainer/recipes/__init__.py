"""Built-in recipes: real training on generated or local data, no downloads.

Each recipe is a module with ``train(run: trainer.api.Run) -> None`` and a TOML defaults file
``resources/recipes/<name>.toml``. This registry imports no torch; a recipe's module is only
imported to run it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import ConfigSpec, load_spec
from trainer.errors import UsageError
from trainer.paths import resources_dir

if TYPE_CHECKING:
    from trainer.api import Run


@dataclass(frozen=True)
class Recipe:
    name: str
    module: str
    summary: str

    @property
    def defaults_file(self) -> Path:
        return resources_dir() / "recipes" / f"{self.name}.toml"

    def spec(self) -> ConfigSpec:
        return load_spec(self.defaults_file)

    def entry_point(self) -> Callable[[Run], None]:
        module = importlib.import_module(self.module)
        return module.train


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("spirals", "trainer.recipes.spirals", "MLP on two interleaved spirals (seconds)"),
        Recipe(
            "charlm",
            "trainer.recipes.charlm",
            "character-level transformer LM on the Python standard library's sources",
        ),
        Recipe(
            "grokking",
            "trainer.recipes.grokking",
            "modular addition with a small transformer: validation accuracy jumps late",
        ),
    ]
}


def get(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(RECIPES)
        raise UsageError(
            f"unknown recipe {name!r}: use one of {known}, or a path to a script.py"
        ) from None
