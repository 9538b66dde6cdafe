"""Small W&B scripts, each run under the real ``wandb`` (offline) and under TrainDesk's stand-in.

Each scenario is ``(code, env)``: the code is a W&B script body (it imports what it needs);
what it prints is compared too, so a script may print what W&B returns (``wandb.run``,
``run.step``, ``config.as_dict()``). Keep each one small: every row costs a process per side.
"""

from __future__ import annotations

SCENARIOS: dict[str, tuple[str, dict[str, str]]] = {
    "log counts steps from 0": (
        """
import wandb
run = wandb.init(project="p")
for i in range(5):
    wandb.log({"loss": 1.0 / (i + 1)})
print(run.step)
wandb.finish()
""",
        {},
    ),
    "log(step=N) then log() lands at N": (
        """
import wandb
wandb.init(project="p")
wandb.log({"a": 1.0})
wandb.log({"a": 2.0}, step=5)
wandb.log({"b": 3.0})
wandb.log({"a": 4.0})
wandb.finish()
""",
        {},
    ),
    "a lower step is dropped": (
        """
import wandb
run = wandb.init(project="p")
wandb.log({"a": 1.0}, step=3)
wandb.log({"a": 2.0}, step=4)
wandb.log({"a": 9.0, "b": 9.0}, step=2)
wandb.log({"a": 5.0})
print(run.step)
wandb.finish()
""",
        {},
    ),
    "commit=False merges into the next log": (
        """
import wandb
wandb.init(project="p")
wandb.log({"a": 1.0}, commit=False)
wandb.log({"b": 2.0}, commit=False)
wandb.log({"a": 3.0})
wandb.log({"c": 4.0})
wandb.finish()
""",
        {},
    ),
    "step with commit=True commits at once": (
        """
import wandb
run = wandb.init(project="p")
wandb.log({"a": 1.0}, step=2, commit=True)
wandb.log({"a": 2.0}, step=2)
print(run.step)
wandb.finish()
""",
        {},
    ),
    "a higher step commits the pending row": (
        """
import wandb
wandb.init(project="p")
wandb.log({"a": 1.0}, step=1)
wandb.log({"b": 2.0}, step=1)
wandb.log({"a": 3.0}, step=7)
wandb.finish()
""",
        {},
    ),
    "an empty log moves the step on": (
        """
import wandb
run = wandb.init(project="p")
wandb.log({})
wandb.log({"a": 1.0})
wandb.log({}, step=10)
wandb.log({"a": 2.0})
print(run.step)
wandb.finish()
""",
        {},
    ),
    "define_metric glob with step_metric": (
        """
import wandb
wandb.init(project="p")
wandb.define_metric("epoch")
wandb.define_metric("val/*", step_metric="epoch")
for i in range(6):
    wandb.log({"train/loss": 1.0 / (i + 1)})
    if i % 2:
        wandb.log({"val/acc": i / 10, "epoch": i // 2})
wandb.finish()
""",
        {},
    ),
    "step_sync copies the step metric's last value": (
        """
import wandb
wandb.init(project="p")
wandb.define_metric("acc", step_metric="epoch")
wandb.log({"epoch": 3})
wandb.log({"acc": 0.5})
wandb.log({"acc": 0.6, "epoch": 4})
wandb.log({"acc": 0.7})
wandb.finish()
""",
        {},
    ),
    "step_sync=False leaves the row alone": (
        """
import wandb
wandb.init(project="p")
wandb.define_metric("acc", step_metric="epoch", step_sync=False)
wandb.log({"epoch": 3})
wandb.log({"acc": 0.5})
wandb.log({"acc": 0.6, "epoch": 4})
wandb.finish()
""",
        {},
    ),
    "Hugging Face style global step": (
        """
import wandb
wandb.init(project="p")
wandb.define_metric("train/global_step")
wandb.define_metric("*", step_metric="train/global_step", step_sync=True)
for step in (5, 10, 15):
    wandb.log({"train/loss": 1.0 / step, "train/global_step": step})
wandb.log({"eval/loss": 0.5, "train/global_step": 15})
wandb.log({"train/epoch": 1.0})
wandb.finish()
""",
        {},
    ),
    "Lightning style trainer/global_step": (
        """
import wandb
run = wandb.init(project="p")
run.define_metric("trainer/global_step")
run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
for step in (0, 1, 2):
    run.log({"train_loss": 1.0 + step, "trainer/global_step": step})
run.log({"val_loss": 0.5, "epoch": 0, "trainer/global_step": 2})
run.finish()
""",
        {},
    ),
    "a second init() returns the active run": (
        """
import wandb
a = wandb.init(project="p", name="one")
a.log({"x": 1.0})
b = wandb.init(project="p", name="two")
print(a is b, wandb.run is a)
b.log({"x": 2.0})
wandb.finish()
""",
        {},
    ),
    "init, finish, init: two runs kept apart": (
        """
import wandb
for name in ("lr1", "lr2"):
    run = wandb.init(project="p", name=name, config={"lr": 1 if name == "lr1" else 2})
    for i in range(3):
        run.log({"loss": i * 1.0})
    run.finish()
print(wandb.run is None)
""",
        {},
    ),
    "reinit=create_new runs two at once": (
        """
import wandb
a = wandb.init(project="p", name="a", reinit="create_new")
b = wandb.init(project="p", name="b", reinit="create_new")
print(wandb.run is b)
a.log({"x": 1.0})
b.log({"x": 2.0})
a.log({"x": 3.0})
b.finish()
a.finish()
""",
        {},
    ),
    "reinit=True finishes the previous run": (
        """
import wandb
a = wandb.init(project="p", name="a")
a.log({"x": 1.0})
b = wandb.init(project="p", name="b", reinit=True)
print(a is b)
b.log({"x": 2.0})
wandb.finish()
""",
        {},
    ),
    "config as a dict": (
        """
import wandb
run = wandb.init(project="p", config={"lr": 0.1, "layers": [1, 2], "opt": {"name": "adam"}})
print(wandb.config.lr, wandb.config["layers"], run.config.opt)
wandb.finish()
""",
        {},
    ),
    "config by attribute and item": (
        """
import wandb
wandb.init(project="p")
wandb.config.lr = 0.5
wandb.config["batch"] = 32
wandb.config.setdefaults({"lr": 9, "seed": 1})
print(wandb.config.lr, wandb.config.seed, "batch" in wandb.config)
wandb.finish()
""",
        {},
    ),
    "config.update and allow_val_change": (
        """
import wandb
from wandb.sdk.lib.config_util import ConfigError
wandb.init(project="p", config={"lr": 0.1})
wandb.config.update({"wd": 0.01})
try:
    wandb.config.update({"lr": 0.2})
except ConfigError:
    print("ConfigError")
wandb.config.update({"lr": 0.3}, allow_val_change=True)
print(wandb.config.lr)
wandb.finish()
""",
        {},
    ),
    "config from an argparse Namespace": (
        """
import argparse, wandb
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args([])
wandb.init(project="p", config=args)
wandb.config.update(argparse.Namespace(seed=7))
print(wandb.config.epochs)
wandb.finish()
""",
        {},
    ),
    "config.as_dict and exclude keys": (
        """
import wandb
wandb.init(project="p", config={"lr": 0.1, "secret": "x"}, config_exclude_keys=["secret"])
print(sorted(wandb.config.as_dict().items()), sorted(wandb.config.keys()))
wandb.finish()
""",
        {},
    ),
    "summary set explicitly": (
        """
import wandb
run = wandb.init(project="p")
run.log({"acc": 0.5})
run.log({"acc": 0.9})
run.log({"acc": 0.7})
run.summary["best_acc"] = 0.9
wandb.summary["acc"] = 0.8
run.summary.update({"epochs": 3})
wandb.finish()
""",
        {},
    ),
    "summary written at exit without finish()": (
        """
import wandb
run = wandb.init(project="p")
run.log({"loss": 2.0})
run.log({"loss": 1.0}, commit=False)
run.summary["final"] = 1.0
""",
        {},
    ),
    "define_metric summary=max,min": (
        """
import wandb
wandb.init(project="p")
wandb.define_metric("acc", summary="max")
wandb.define_metric("loss", summary="min")
for acc, loss in ((0.5, 3.0), (0.9, 1.0), (0.7, 2.0)):
    wandb.log({"acc": acc, "loss": loss})
wandb.finish()
""",
        {},
    ),
    "NaN and infinity are kept": (
        """
import wandb
wandb.init(project="p")
wandb.log({"loss": 1.0})
wandb.log({"loss": float("nan")})
wandb.log({"loss": float("inf"), "g": -float("inf")})
wandb.finish()
""",
        {},
    ),
    "numpy and torch scalars, bools, ints": (
        """
import numpy as np, torch, wandb
wandb.init(project="p")
wandb.log({"np32": np.float32(0.5), "np64": np.float64(0.25), "npi": np.int64(3),
           "t": torch.tensor(1.5), "ti": torch.tensor(2), "b": True, "i": 7})
wandb.finish()
""",
        {},
    ),
    "nested dicts are dotted keys": (
        """
import wandb
wandb.init(project="p")
wandb.log({"train": {"loss": 1.0, "acc": {"top1": 0.5}}, "lr": 0.1})
wandb.finish()
""",
        {},
    ),
    "an array beside scalars": (
        """
import numpy as np, wandb
wandb.init(project="p")
wandb.log({"loss": 1.0, "weights": np.arange(5.0), "lst": [1, 2, 3], "name": "text",
           "one": np.array([2.0])})
wandb.log({"loss": 0.5})
wandb.finish()
""",
        {},
    ),
    "media beside scalars": (
        """
import numpy as np, wandb
wandb.init(project="p")
table = wandb.Table(columns=["a", "b"], data=[[1, 2]])
table.add_data(3, 4)
wandb.log({"loss": 1.0, "hist": wandb.Histogram([1, 2, 3]),
           "img": wandb.Image(np.zeros((8, 8, 3), dtype=np.uint8)), "table": table})
wandb.log({"loss": 0.5, "h2": wandb.Histogram(np_histogram=np.histogram([1, 2, 3]))})
wandb.finish()
""",
        {},
    ),
    "run.dir, url, termlog, Settings, Artifact, log_code": (
        """
import os, wandb
run = wandb.init(project="p", settings=wandb.Settings(console="off"))
print(os.path.isdir(run.dir), run.url)
wandb.termlog("hello")
wandb.termwarn("careful")
art = wandb.Artifact("model", type="model")
with open(os.path.join(run.dir, "w.txt"), "w") as fh:
    fh.write("w")
art.add_file(os.path.join(run.dir, "w.txt"))
run.log_artifact(art)
run.log_code(".")
wandb.save(os.path.join(run.dir, "w.txt"))
run.log({"loss": 1.0})
wandb.finish()
""",
        {},
    ),
    "WANDB_MODE=disabled records nothing": (
        """
import wandb
run = wandb.init(project="p", config={"lr": 1})
run.log({"loss": 1.0})
run.summary["x"] = 1
print(run.disabled, wandb.config.lr)
wandb.finish()
print(wandb.run is None)
""",
        {"WANDB_MODE": "disabled"},
    ),
    "init(mode=disabled) records nothing": (
        """
import wandb
run = wandb.init(project="p", mode="disabled")
wandb.log({"loss": 1.0})
wandb.define_metric("loss", step_metric="epoch")
print(run.disabled)
run.finish()
""",
        {},
    ),
    "WANDB_MODE=offline records as usual": (
        """
import wandb
wandb.init(project="p")
wandb.log({"loss": 1.0})
wandb.log({"loss": 0.5})
wandb.finish()
""",
        {"WANDB_MODE": "offline"},
    ),
    "wandb.run is None after finish, with-block": (
        """
import wandb
print(wandb.run is None)
with wandb.init(project="p") as run:
    print(wandb.run is run)
    run.log({"loss": 1.0})
print(wandb.run is None)
""",
        {},
    ),
    "log after finish is an error": (
        """
import wandb
run = wandb.init(project="p")
run.log({"loss": 1.0})
run.finish()
try:
    run.log({"loss": 2.0})
except wandb.errors.UsageError as exc:
    print(type(exc).__name__)
""",
        {},
    ),
    "wandb.plot charts beside scalars": (
        """
import wandb
run = wandb.init(project="p")
table = wandb.Table(data=[[1, 2], [2, 3]], columns=["x", "y"])
run.log({"line": wandb.plot.line(table, "x", "y", title="t"), "loss": 1.0})
run.log({"loss": 0.5})
run.finish()
""",
        {},
    ),
    "log before init is an error": (
        """
import wandb
try:
    wandb.log({"loss": 1.0})
except Exception as exc:
    print(type(exc).__name__)
""",
        {},
    ),
}
