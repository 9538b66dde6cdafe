"""Real training code under capture, unchanged: a tiny Hugging Face Trainer and a tiny
Lightning module. The journal holds exactly the points the framework logged, its own record
(the Trainer's ``log_history``, Lightning's ``CSVLogger`` file) being the reference."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, cli
from trainer.export import read_series
from trainer.journal import JournalReader

SCRIPTS = ROOT / "tests" / "scripts" / "frameworks"
PY = sys.executable
#: No network at run time: everything is built in code.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_MODE": "offline", "WANDB_SILENT": "true"}  # fmt: skip

needs_hf = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None or importlib.util.find_spec("accelerate")
    is None, reason="transformers and accelerate are not installed",
)  # fmt: skip
needs_lightning = pytest.mark.skipif(
    importlib.util.find_spec("lightning") is None, reason="lightning is not installed"
)


def points(folder: Path) -> dict[str, set[tuple[int, float]]]:
    return {key: set(zip(s.steps.tolist(), s.values.tolist(), strict=True))
            for key, s in read_series(folder).items()}  # fmt: skip


def summary(folder: Path) -> dict[str, float]:
    with JournalReader(folder) as reader:
        found = [e for e in reader.events() if e.kind == "summary"]
        assert reader.run_info().status == "finished"
    assert len(found) == 1
    return dict(found[0].data or {})


def close(got: set[tuple[int, float]], want: set[tuple[int, float]], rel: float) -> None:
    """The same steps, and values equal within ``rel`` (TensorBoard keeps float32)."""
    got_sorted, want_sorted = sorted(got), sorted(want)
    assert [s for s, _ in got_sorted] == [s for s, _ in want_sorted], (got_sorted, want_sorted)
    np.testing.assert_allclose([v for _, v in got_sorted], [v for _, v in want_sorted], rtol=rel)


# ------------------------------------------------------------------ Hugging Face Trainer
SUMMARY_ONLY = {"train_runtime", "train_samples_per_second", "train_steps_per_second",
                "train_loss", "total_flos"}  # fmt: skip


def hf_key(key: str) -> str:
    """The Trainer's own renaming for W&B and TensorBoard (``rewrite_logs``)."""
    for prefix in ("eval_", "test_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix) :]}"
    return f"train/{key}"


def hf_reference(folder: Path, summary_only: set[str]) -> dict[str, set[tuple[int, float]]]:
    want: dict[str, set[tuple[int, float]]] = {}
    for entry in json.loads((folder / "log_history.json").read_text()):
        step = entry.pop("step")
        for key, value in entry.items():
            if key not in summary_only:
                want.setdefault(hf_key(key), set()).add((step, float(value)))
    return want


@needs_hf
def test_hugging_face_trainer_reporting_to_wandb(runs_dir: Path, tmp_path: Path) -> None:
    done = cli("run", "--name", "hf-wandb", "--quiet", "--capture", "wandb", "--",
               PY, str(SCRIPTS / "hf_train.py"), "wandb", cwd=tmp_path, timeout=300,
               **OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    got = points(runs_dir / "hf-wandb")
    want = hf_reference(tmp_path, SUMMARY_ONLY)
    # W&B's own step counter as a metric: one point per log() call, at W&B's step.
    global_steps = got.pop("train/global_step")
    assert len(global_steps) == len(json.loads((tmp_path / "log_history.json").read_text()))
    assert got == want
    final = json.loads((tmp_path / "log_history.json").read_text())[-1]
    shown = summary(runs_dir / "hf-wandb")
    for key in SUMMARY_ONLY & final.keys():
        assert shown[key] == final[key]


@needs_hf
def test_hugging_face_trainer_reporting_to_tensorboard(runs_dir: Path, tmp_path: Path) -> None:
    # docs/capture/huggingface.md: the Trainer writes where TENSORBOARD_LOGGING_DIR says.
    done = cli("run", "--name", "hf-tb", "--quiet", "--capture", "tensorboard=tb", "--",
               PY, str(SCRIPTS / "hf_train.py"), "tensorboard", cwd=tmp_path, timeout=300,
               TENSORBOARD_LOGGING_DIR="tb", **OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    got = points(runs_dir / "hf-tb")
    want = hf_reference(tmp_path, set())  # the TensorBoard callback writes every scalar
    assert got.keys() == want.keys()
    for key in want:
        close(got[key], want[key], rel=1e-6)


# ------------------------------------------------------------------ Lightning
def lightning_reference(folder: Path) -> dict[str, set[tuple[int, float]]]:
    want: dict[str, set[tuple[int, float]]] = {}
    with open(folder / "csv" / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            step = int(row.pop("step"))
            for key, value in row.items():
                if value != "":
                    want.setdefault(key, set()).add((step, float(value)))
    return want


@needs_lightning
def test_lightning_wandb_logger_and_csv_logger(runs_dir: Path, tmp_path: Path) -> None:
    done = cli("run", "--name", "lit-wandb", "--quiet", "--capture", "wandb", "--",
               PY, str(SCRIPTS / "lightning_train.py"), "wandb", cwd=tmp_path, timeout=300,
               **OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    got = points(runs_dir / "lit-wandb")
    want = lightning_reference(tmp_path)
    got.pop("trainer/global_step")  # W&B's own step counter, one point per log() call
    assert got == want
    with JournalReader(runs_dir / "lit-wandb") as reader:
        config = [e.data for e in reader.events() if e.kind == "config" and e.data == {"lr": 0.1}]
    assert config, "save_hyperparameters() reaches the journal through wandb.config"
    # The CSVLogger's own file, imported: the same points.
    done = cli("import", str(tmp_path / "csv" / "metrics.csv"), "--name", "lit-csv")
    assert done.returncode == 0, done.stdout + done.stderr
    imported = points(runs_dir / "lit-csv")
    assert imported == want


@needs_lightning
def test_lightning_tensorboard_logger(runs_dir: Path, tmp_path: Path) -> None:
    done = cli("run", "--name", "lit-tb", "--quiet", "--capture", "tensorboard=tb", "--",
               PY, str(SCRIPTS / "lightning_train.py"), "tensorboard", cwd=tmp_path,
               timeout=300, **OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    got = points(runs_dir / "lit-tb")
    want = lightning_reference(tmp_path)
    assert got.pop("hp_metric") == {(0, -1.0)}  # TensorBoardLogger's hyperparameter marker
    assert got.keys() == want.keys()
    for key in want:
        close(got[key], want[key], rel=1e-6)
