"""training_overhead: the ``charlm`` recipe's steps/s with journaling vs a do-nothing sink.

Both variants are the same real run (``create_run``, ``with run:``, the recipe's
``train(run)``, heartbeats, system samples, events and status all journaled); in the
"null sink" variant only the journal writer's ``log_scalars`` is replaced by a function that
discards the metrics. The config is the recipe's ``[env.quick]`` overlay on one thread on the
CPU with more steps and no periodic checkpoints. Speed is measured from the end of the first
step to the end of the last one (``run.should_stop()`` is called once per step), not from
process start. The variants alternate (J N, N J, ...) after one untimed warm-up run; the runs
are short and many, as the speed of a shared machine drifts within seconds. The training
thread's CPU time per step (``time.thread_time()``) over the same span is reported too: it is
far less noisy than wall time, though it misses any wait for the GIL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.common import (
    Result,
    interleave,
    median,
    median_ci,
    paired_ratios,
    scratch,
    settle,
)

NAME = "training_overhead"
DIAGNOSIS = (
    "Not the journal, as far as a profiler can tell: the ratio's interval spans the limit, "
    "and runs of this benchmark have given medians on both sides of it. py-spy sampling the "
    "threads that hold the GIL (250 Hz, four journaled runs of 600 steps) found the "
    "`journal-writer` thread in 4 of 3,319 samples (0.12%), the heartbeat thread in 2, and "
    "the training thread inside `Run.log`/`JournalWriter.log_scalars` in 1 of 3,394 samples "
    "of `train_loop`: journaling takes about 0.2% of the training process, in line with the "
    "training thread's CPU time per step (null sink / journaled 0.99 to 1.00 across runs). Wall "
    "time on this shared 2-core machine moves by 3% between neighbouring runs, which is more "
    "than the 1% the target asks this benchmark to resolve; a quiet machine (or more runs) is "
    "needed to settle it."
)


def _discard(values: Mapping[str, float], step: int) -> None:
    """The do-nothing sink."""


def _config(steps: int) -> dict[str, object]:
    from trainer import recipes
    from trainer.config import resolve

    overrides = [f"max_steps={steps}", "threads=1", 'device="cpu"', "checkpoint_every=0"]
    return dict(resolve(recipes.get("charlm").spec(), env="quick", overrides=overrides))


def _one_run(config: dict[str, object], root: Path, name: str, journal: bool) -> dict[str, float]:
    """Train once: steps/s between the end of the first and of the last step, and the
    training thread's CPU seconds per step over the same span."""
    from trainer import recipes
    from trainer.api import create_run

    steps = int(config["max_steps"])  # type: ignore[call-overload]
    run = create_run(
        entry="charlm", kind="recipe", config=config, runs_root=root, name=name, max_steps=steps
    )
    if not journal:
        run._writer.log_scalars = _discard  # type: ignore[method-assign]
    stamps: list[float] = []
    cpu: list[float] = []
    should_stop: Callable[[], bool] = run.should_stop

    def timed_should_stop() -> bool:
        stamps.append(time.perf_counter())
        cpu.append(time.thread_time())
        return should_stop()

    run.should_stop = timed_should_stop  # type: ignore[method-assign]
    with run:
        recipes.get("charlm").entry_point()(run)
    if len(stamps) != steps:
        raise RuntimeError(f"charlm ran {len(stamps)} steps, expected {steps}")
    n = len(stamps) - 1
    return {"rate": n / (stamps[-1] - stamps[0]), "cpu": (cpu[-1] - cpu[0]) / n}


def run(quick: bool) -> list[Result]:
    import torch

    torch.set_num_threads(1)
    steps, reps = (150, 8) if quick else (200, 24)
    config = _config(steps)
    with scratch(NAME) as root:
        _one_run(_config(60), root, "warm-up", journal=True)
        settle()
        got = interleave(
            {
                "journal": lambda rep: _one_run(config, root, f"j{rep}", True),
                "null": lambda rep: _one_run(config, root, f"n{rep}", False),
            },
            reps,
        )
    journal, null = got["journal"], got["null"]
    ratios = paired_ratios(journal, null, "rate", "rate")
    cpu = paired_ratios(null, journal, "cpu", "cpu")  # > 1: the null sink used more CPU
    return [
        Result(
            bench=NAME,
            target=f"charlm steps/s with journaling vs a do-nothing sink ([env.quick], "
            f"{steps} steps, 1 thread, metrics every {config['log_every']} steps, "
            f"{reps} runs each)",
            ratio=median(ratios),
            limit=0.99,
            higher_is_better=True,
            ours=f"{median([r['rate'] for r in journal]):.1f} steps/s",
            reference=f"null sink {median([r['rate'] for r in null]):.1f} steps/s",
            details=[
                "journaled steps/s per run: " + ", ".join(f"{r['rate']:.1f}" for r in journal),
                "null-sink steps/s per run: " + ", ".join(f"{r['rate']:.1f}" for r in null),
                "paired ratios: " + ", ".join(f"{r:.3f}" for r in ratios),
                f"training thread's CPU time per step, null sink / journaled (median of pairs): "
                f"{median(cpu):.3f}",
            ],
            ci=median_ci(ratios),
            diagnosis=DIAGNOSIS,
        )
    ]
