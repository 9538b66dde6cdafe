"""The built-in recipes: real training on the CPU (tiny sizes), exact resume, configs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trainer import config as tconfig
from trainer import recipes
from trainer.api import Run, create_run, resume_run
from trainer.checkpoint import list_checkpoints
from trainer.errors import ConfigError
from trainer.journal.reader import JournalReader
from trainer.paths import RunPaths

NAMES = ["spirals", "charlm", "grokking"]
REQUIRED = [
    "max_steps", "seed", "device", "batch_size", "lr", "log_every", "eval_every",
    "checkpoint_every", "keep_checkpoints", "threads",
]  # fmt: skip
COMMON_METRICS = {"train/loss", "train/lr", "perf/step_time", "perf/rss_mb", "perf/eval_s"} | {
    f"perf/{phase}_s" for phase in ("data", "forward", "backward", "optimizer", "logging")
}
METRICS = {
    "spirals": COMMON_METRICS | {"train/acc", "val/loss", "val/acc", "perf/samples_per_s"},
    "charlm": COMMON_METRICS | {"val/loss", "perf/tokens_per_s"},
    "grokking": COMMON_METRICS | {"train/acc", "val/loss", "val/acc", "perf/samples_per_s"},
}


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def quick_config(name: str, *overrides: str) -> dict[str, Any]:
    spec = recipes.get(name).spec()
    return tconfig.resolve(spec, env="quick", overrides=["threads=1", *overrides])


def train_new(
    name: str, cfg: dict[str, Any], root: Path, *, max_steps: int, checkpoint_every: int = 20
) -> Run:
    run = create_run(
        entry=name, kind="recipe", config=cfg, runs_root=root, max_steps=max_steps,
        checkpoint_every=checkpoint_every, keep_checkpoints=2,
    )  # fmt: skip
    with run:
        recipes.get(name).entry_point()(run)
    return run


def train_resumed(
    name: str, cfg: dict[str, Any], folder: Path, *, max_steps: int, checkpoint_every: int = 20
) -> Run:
    run = resume_run(
        RunPaths(folder), config=cfg, max_steps=max_steps, checkpoint_every=checkpoint_every,
        keep_checkpoints=2,
    )  # fmt: skip
    with run:
        recipes.get(name).entry_point()(run)
    return run


def read_series(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with JournalReader(folder) as reader:
        keys = reader.keys()
        return {key: (s.steps, s.values) for key in keys for s in [reader.series(key)]}


def final_status(folder: Path) -> str:
    with JournalReader(folder) as reader:
        return reader.run_info().status


# -------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", NAMES)
def test_defaults_file_is_complete(name: str) -> None:
    recipe = recipes.get(name)
    text = recipe.defaults_file.read_text(encoding="utf-8")
    assert text.startswith(f"# {name}:"), "a comment header describes the recipe"
    spec = recipe.spec()
    for key in REQUIRED:
        assert key in spec.defaults, key
    assert spec.defaults["device"] == "auto"
    assert spec.constraints["device"].pattern == "^(auto|cpu|cuda(:[0-9]+)?)$"
    for key, value in spec.defaults.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert key in spec.constraints, f"numeric key {key!r} has no constraint"
    assert "quick" in spec.envs
    defaults = tconfig.resolve(spec)
    quick = tconfig.resolve(spec, env="quick")
    assert int(quick["max_steps"]) < int(defaults["max_steps"])
    for bad in ["device=gpu", "lr=0", "max_steps=0", "log_every=0"]:
        with pytest.raises(ConfigError):
            tconfig.resolve(spec, overrides=[bad])


def test_grokking_defaults_hold_out_data_and_use_a_prime() -> None:
    from trainer.recipes.grokking import is_prime

    cfg = tconfig.resolve(recipes.get("grokking").spec())
    assert 0 < float(cfg["train_fraction"]) < 1
    assert is_prime(int(cfg["p"]))
    assert float(cfg["weight_decay"]) >= 0.1


def test_charlm_text_is_deterministic_and_capped() -> None:
    from trainer.recipes.charlm import stdlib_text

    text = stdlib_text(50_000)
    assert len(text) == 50_000
    assert text == stdlib_text(50_000)
    assert b"def " in text


def test_grokking_split_is_a_partition() -> None:
    from trainer.recipes.grokking import make_split

    x_train, y_train, x_val, _ = make_split(11, 0.4, seed=3)
    pairs = {tuple(r[:2].tolist()) for r in torch.cat([x_train, x_val])}
    assert len(pairs) == 121 and len(x_train) == round(0.4 * 121)
    assert torch.equal(y_train, (x_train[:, 0] + x_train[:, 1]) % 11)
    assert torch.equal(make_split(11, 0.4, seed=3)[0], x_train)


# -------------------------------------------------------------------- training
def test_spirals_learns(tmp_path: Path) -> None:
    cfg = quick_config("spirals")
    run = train_new("spirals", cfg, tmp_path, max_steps=int(cfg["max_steps"]))
    series = read_series(run.paths.root)
    assert set(series) - {"perf/checkpoint_s"} == METRICS["spirals"]
    loss = series["train/loss"][1]
    assert loss[-1] < 0.5 * loss[0]
    steps, acc = series["val/acc"]
    assert steps[-1] == cfg["max_steps"] and acc[-1] >= 0.9
    assert final_status(run.paths.root) == "finished"
    assert list_checkpoints(run.paths.checkpoints)[-1][0] == cfg["max_steps"]


@pytest.mark.parametrize("name", ["charlm", "grokking"])
def test_loss_falls(name: str, tmp_path: Path) -> None:
    cfg = quick_config(name)
    run = train_new(name, cfg, tmp_path, max_steps=int(cfg["max_steps"]))
    series = read_series(run.paths.root)
    assert set(series) - {"perf/checkpoint_s"} == METRICS[name]
    loss = series["train/loss"][1]
    assert loss[-1] < loss[0] - 0.3, loss
    assert np.all(series["perf/step_time"][1] > 0)
    # The phases account for the step: their sum is most of the step time (checkpoints, which
    # some windows hold, are a phase of their own; the rest is the loop's own bookkeeping).
    # They are timed inside the window the step time covers, so they never exceed it, however
    # loaded the machine (it once did: the logging step's time straddled two windows).
    phases = sum(series[f"perf/{p}_s"][1] for p in ("data", "forward", "backward", "optimizer",
                                                    "logging"))  # fmt: skip
    if "perf/checkpoint_s" in series:
        checkpoint_steps = dict(zip(*series["perf/checkpoint_s"], strict=True))
        phases = phases + np.array([checkpoint_steps.get(s, 0.0)
                                    for s in series["perf/step_time"][0]])  # fmt: skip
    share = phases / series["perf/step_time"][1]
    assert np.median(share) >= 0.8 and share.max() <= 1 + 1e-9, share
    assert np.all(series["perf/backward_s"][1] > 0) and np.all(series["perf/data_s"][1] > 0)
    lr = series["train/lr"][1]
    assert np.all(lr > 0) and lr.max() <= cfg["lr"] * (1 + 1e-9)


# -------------------------------------------------------------------- exact resume
@pytest.mark.parametrize(("name", "total", "stop_at", "extra"), [
    ("spirals", 60, 23, ()),
    ("charlm", 50, 27, ()),  # quick has dropout: the restored torch RNG matters
    ("grokking", 50, 20, ()),
    ("grokking", 30, 17, ("batch_size=0",)),  # full batch
])  # fmt: skip
def test_resume_repeats_an_uninterrupted_run(
    name: str, total: int, stop_at: int, extra: tuple[str, ...], tmp_path: Path
) -> None:
    # The config's max_steps (the schedule's horizon) is the same for both runs; only the
    # run's own max_steps cuts run B short, as a stop would.
    cfg = quick_config(name, f"max_steps={total}", *extra)
    a = train_new(name, cfg, tmp_path / "a", max_steps=total)
    b = train_new(name, cfg, tmp_path / "b", max_steps=stop_at)
    assert list_checkpoints(b.paths.checkpoints)[-1][0] == stop_at
    b2 = train_resumed(name, cfg, b.paths.root, max_steps=total)
    assert b2.start_step == stop_at and b2.attempt == 2
    assert final_status(b.paths.root) == "finished"

    series_a, series_b = read_series(a.paths.root), read_series(b.paths.root)
    optional = {"perf/checkpoint_s"}
    assert set(series_a) - optional == set(series_b) - optional == METRICS[name]
    compared = 0
    for key in sorted(series_a):
        if key.startswith("perf/"):
            continue  # timings and memory differ from run to run
        steps_a, values_a = series_a[key]
        steps_b, values_b = series_b[key]
        after_a, after_b = steps_a > stop_at, steps_b > stop_at
        np.testing.assert_array_equal(steps_a[after_a], steps_b[after_b], err_msg=key)
        assert after_a.any(), key
        np.testing.assert_allclose(
            values_b[after_b], values_a[after_a], rtol=0, atol=1e-6, err_msg=key
        )
        compared += 1
    assert compared == len([k for k in METRICS[name] if not k.startswith("perf/")])

    # Checkpoints hold only plain data: they load with weights_only=True.
    for _step, path in list_checkpoints(b.paths.checkpoints):
        payload = torch.load(path, map_location="cpu", weights_only=True)
        assert payload["state"]["recipe"] == name
        assert payload["state"]["step"] == payload["step"]


def test_resume_after_a_stop_request(tmp_path: Path) -> None:
    cfg = quick_config("spirals", "max_steps=40")
    a = train_new("spirals", cfg, tmp_path / "a", max_steps=40, checkpoint_every=0)

    run = create_run(
        entry="spirals", kind="recipe", config=cfg, runs_root=tmp_path / "b", max_steps=40,
        checkpoint_every=0,
    )  # fmt: skip
    original_log = run.log

    def log_then_stop(metrics: Any, step: int | None = None) -> None:
        original_log(metrics, step=step)
        if step == 15:
            run.request_stop("test")

    run.log = log_then_stop  # type: ignore[method-assign]
    with run:
        recipes.get("spirals").entry_point()(run)
    assert final_status(run.paths.root) == "stopped"
    assert [s for s, _ in list_checkpoints(run.paths.checkpoints)] == [15]
    train_resumed("spirals", cfg, run.paths.root, max_steps=40, checkpoint_every=0)

    series_a, series_b = read_series(a.paths.root), read_series(run.paths.root)
    for key in ["train/loss", "train/acc", "val/acc", "train/lr"]:
        np.testing.assert_allclose(series_b[key][1], series_a[key][1], rtol=0, atol=1e-6)


def test_extend_keeps_the_schedule_also_across_a_resume(tmp_path: Path) -> None:
    """Run A is extended from 30 to 40 steps while it runs; run B ends at 30 and is resumed
    to 40 with the config's max_steps raised (as ``trainer resume --max-steps 40`` does):
    both keep the 30-step schedule and take the same steps."""
    cfg = quick_config("spirals", "max_steps=30")
    a = create_run(
        entry="spirals", kind="recipe", config=cfg, runs_root=tmp_path / "a", max_steps=30,
        checkpoint_every=0,
    )  # fmt: skip
    original_log = a.log

    def log_and_extend(metrics: Any, step: int | None = None) -> None:
        original_log(metrics, step=step)
        if step == 10:
            assert a.max_steps is not None
            a.max_steps += 10

    a.log = log_and_extend  # type: ignore[method-assign]
    with a:
        recipes.get("spirals").entry_point()(a)
    series_a = read_series(a.paths.root)
    assert series_a["train/loss"][0][-1] == 40
    assert [s for s, _ in list_checkpoints(a.paths.checkpoints)] == [40]
    lr = series_a["train/lr"][1]
    assert math.isclose(lr[-1], float(cfg["lr"]) * float(cfg["min_lr_ratio"]), rel_tol=1e-6)

    b = train_new("spirals", cfg, tmp_path / "b", max_steps=30, checkpoint_every=0)
    train_resumed("spirals", {**cfg, "max_steps": 40}, b.paths.root, max_steps=40)
    series_b = read_series(b.paths.root)
    for key in ["train/loss", "train/acc", "train/lr", "val/acc"]:
        steps_a, values_a = series_a[key]
        steps_b, values_b = series_b[key]
        np.testing.assert_array_equal(steps_a[steps_a > 30], steps_b[steps_b > 30])
        np.testing.assert_allclose(
            values_b[steps_b > 30], values_a[steps_a > 30], rtol=0, atol=1e-6, err_msg=key
        )


# -------------------------------------------------------------------- devices
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_without_cuda_is_a_config_error(name: str, tmp_path: Path) -> None:
    cfg = quick_config(name, "device=cuda")
    with pytest.raises(ConfigError) as info:
        train_new(name, cfg, tmp_path, max_steps=5)
    assert str(info.value) == (
        "config key 'device': 'cuda' is not available here (no CUDA device): "
        "use --device cpu or auto"
    )
