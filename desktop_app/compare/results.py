"""A run's results for the runs table: the last, best and final value of chosen metrics. Qt-free.

Cheap at any run size: the last value of every key is in the runs listing already
(:attr:`~trainer.runs.RunSummary.latest`), and a key's lowest and highest values come from the
journal's coarsest summary rows (:meth:`~trainer.journal.reader.JournalReader.extent`: a few
rows, never the points). "Best" is the lowest or the highest value by the metric's name (a
loss or an error is best low, an accuracy high; :func:`best_direction`), which the user may
switch. "Final" is the last value of a run that has ended (none while it runs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trainer.annotations import Annotations, read_annotations
from trainer.errors import JournalError
from trainer.journal.reader import JournalReader
from trainer.journal.status import ALIVE

Direction = Literal["min", "max"]
#: Words in a metric's name that make a high value the best one; anything else is best low.
_HIGHER = re.compile(
    r"acc|accuracy|f1|precision|recall|auc|bleu|rouge|score|reward|return|iou|map\b|top\d|"
    r"psnr|ssim|r2\b|correct|hit|win|success"
)
#: Words that win over the above (``err``, ``loss``: "top1_err" is an error).
_LOWER = re.compile(r"loss|err|error|perplexity|ppl|mse|mae|rmse|nll|wer|cer|regret|time|lat")


def best_direction(key: str) -> Direction:
    """Whether the best value of metric ``key`` is its lowest or its highest, by its name."""
    leaf = key.lower().rsplit("/", 1)[-1]
    if _LOWER.search(leaf):
        return "min"
    return "max" if _HIGHER.search(leaf) else "min"


@dataclass(frozen=True)
class KeyResult:
    """What the journal's summaries say of one key: its lowest and highest finite values."""

    low: float
    high: float

    def best(self, direction: Direction) -> float:
        return self.low if direction == "min" else self.high


@dataclass(frozen=True)
class RunResults:
    """A run's summary results for the chosen keys and its annotations, as read together."""

    keys: dict[str, KeyResult]
    annotations: Annotations


def read_results(folder: Path, keys: tuple[str, ...]) -> RunResults:
    """The results of ``keys`` in the run at ``folder`` and its annotations (blocking: call
    it off the GUI thread). A key the run lacks is left out; an unreadable journal gives none."""
    found: dict[str, KeyResult] = {}
    if keys:
        try:
            with JournalReader(folder) as reader:
                for key in keys:
                    extent = reader.extent(key)
                    if extent is not None and math.isfinite(extent.y_min):
                        found[key] = KeyResult(extent.y_min, extent.y_max)
        except JournalError:
            found = {}
    return RunResults(found, read_annotations(folder))


def final_value(status: str, last: float | None) -> float | None:
    """The last value once the run has ended; None while it is alive."""
    return None if status in ALIVE else last


def number_text(value: float | None) -> str:
    """A result as the table shows it (4 significant digits; nan and inf as such)."""
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"
