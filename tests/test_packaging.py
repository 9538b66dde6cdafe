"""The wheel and the sdist, built and installed as a user would, run outside the checkout.

The sdist is built from a copy of the project's build inputs, the wheel from that sdist (as
``python -m build`` does), and the wheel is installed with ``--no-deps`` into a fresh virtual
environment in a temporary folder. That environment borrows the dependencies (torch, PySide6,
...) of the test's own interpreter through a ``.pth`` file, so nothing is downloaded; the
borrowed folder's own ``.pth`` files (an editable install of this checkout) are not run, so
``trainer`` and ``desktop_app`` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import trainer

ROOT = Path(__file__).resolve().parent.parent
#: What building the sdist reads; everything else in the checkout stays out of the copy.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "trainer", "desktop_app", "resources")

pytestmark = [pytest.mark.packaging, pytest.mark.xdist_group("packaging")]


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Build the sdist from a copy of the sources, then the wheel from the sdist."""
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = work / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # --no-isolation: setuptools comes from this environment, so the build needs no network.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
         env, cwd=work)  # fmt: skip
    (sdist,) = out.glob("traindesk-*.tar.gz")
    (wheel,) = out.glob("traindesk-*.whl")
    return sdist, wheel


def test_the_dists_carry_the_resources_and_one_version(dists: tuple[Path, Path]) -> None:
    sdist, wheel = dists
    version = trainer.__version__
    assert sdist.name == f"traindesk-{version}.tar.gz"
    assert wheel.name == f"traindesk-{version}-py3-none-any.whl"
    recipes = sorted(p.name for p in (ROOT / "resources" / "recipes").glob("*.toml"))
    assert recipes
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for recipe in recipes:
        assert f"trainer/_resources/recipes/{recipe}" in names
    assert "trainer/py.typed" in names
    assert not any(n.startswith(("tests/", "bench/", "resources/")) for n in names)
    with tarfile.open(sdist) as tf:
        members = set(tf.getnames())
    for recipe in recipes:
        assert f"traindesk-{version}/resources/recipes/{recipe}" in members


@pytest.fixture(scope="module")
def installed(dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel installed; returns its bin folder."""
    _, wheel = dists
    venv = tmp_path_factory.mktemp("venv") / "env"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env, cwd=venv.parent)
    bindir = venv / "bin"
    python = bindir / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   env, cwd=venv.parent).strip()  # fmt: skip
    # This interpreter's packages (torch, PySide6, ...) after the venv's own.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_traindesk_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)], env, cwd=venv.parent)  # fmt: skip
    return bindir


def _user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("TRAINDESK_")}  # fmt: skip
    env.update(TRAINDESK_HOME=str(home / "runs"), XDG_DATA_HOME=str(home / "data"),
               XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"),
               XDG_CACHE_HOME=str(home / "cache"), QT_QPA_PLATFORM="offscreen")  # fmt: skip
    return env


def test_the_installed_wheel_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    env = _user_env(tmp_path)
    cwd = tmp_path
    where = _run([str(installed / "python"), "-c",
                  "import trainer, desktop_app, trainer.paths as p; "
                  "print(trainer.__file__); print(desktop_app.__file__); "
                  "print(p.resources_dir())"], env, cwd).split()  # fmt: skip
    for path in where:
        assert Path(path).is_relative_to(installed.parent), where
        assert not Path(path).is_relative_to(ROOT), where
    assert where[2].endswith(os.path.join("trainer", "_resources"))

    version = trainer.__version__
    assert _run([str(installed / "trainer"), "--version"], env, cwd).strip() == (
        f"trainer {version}"
    )
    assert _run([str(installed / "traindesk"), "--version"], env, cwd).strip() == (
        f"traindesk {version}"
    )

    recipes = _run([str(installed / "trainer"), "recipes"], env, cwd)
    for name in ("spirals", "charlm", "grokking"):
        assert name in recipes
    assert "max_steps = 600" in _run([str(installed / "trainer"), "recipes", "--config",
                                      "spirals"], env, cwd)  # fmt: skip

    _run([str(installed / "trainer"), "run", "spirals", "--name", "wheel",
          "--set", "max_steps=30", "--set", "eval_every=10"], env, cwd)  # fmt: skip
    shown = json.loads(_run([str(installed / "trainer"), "show", "wheel", "--json"], env, cwd))
    assert shown["status"] == "finished"

    state = tmp_path / "state.json"
    _run([str(installed / "traindesk"), "--open", "wheel", "--quit-after", "2",
          "--dump-state", str(state)], env, cwd, timeout=120)  # fmt: skip
    runs = json.loads(state.read_text())["runs"]
    assert [r["name"] for r in runs] == ["wheel"]
    assert runs[0]["status"] == "finished"
