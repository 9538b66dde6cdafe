"""What to launch, and the trainer command line that launches it. Qt-free and torch-free.

The app never trains in its own process: a run is ``python -m trainer run ...`` (or, in a
frozen bundle, ``<bundle> trainer run ...``), started and watched by the supervisor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from trainer.paths import runs_dir as default_runs_dir
from trainer.resources.sizes import UNITS
from trainer.runs import default_run_name
from trainer.supervision.process import trainer_command

__all__ = ["LaunchSpec", "resume_args", "run_args", "run_argv", "size_arg", "trainer_command"]


def is_script_target(target: str) -> bool:
    """True if ``target`` names a script rather than a built-in recipe (the trainer's rule)."""
    return target.endswith(".py") or os.sep in target or "/" in target


@dataclass(frozen=True)
class LaunchSpec:
    """One run to launch: a recipe name or a script path, and the options of ``trainer run``.

    ``overrides`` are ``key=value`` strings as ``--set`` takes them (values read as TOML).
    ``name`` and ``runs_dir`` may be left out: :meth:`resolved` fills them in.

    The resource fields are ``trainer run``'s options of the same names; None (or False) leaves
    an option out, so the trainer's default applies. ``gpus`` is ``"none"``, ``"any"``, a
    count (``"2"``) or ``"device=0,2"`` (None: auto). Sizes are bytes.
    """

    target: str
    overrides: list[str] = field(default_factory=list)
    name: str | None = None
    device: str | None = None
    runs_dir: Path | None = None
    max_steps: int | None = None
    gpus: str | None = None
    gpu_mem: int | None = None
    share_gpu: bool = False
    gpu_policy: str | None = None
    priority: int | None = None
    max_rss: int | None = None
    cpu_threads: int | None = None
    disk_floor: int | None = None

    @property
    def is_script(self) -> bool:
        return is_script_target(self.target)

    def resolved(self, taken: frozenset[str] | set[str] = frozenset()) -> LaunchSpec:
        """A copy with ``runs_dir`` and ``name`` set; a generated name avoids existing folders
        and the names in ``taken`` (runs being launched)."""
        root = Path(self.runs_dir) if self.runs_dir is not None else default_runs_dir()
        name = self.name
        if name is None:
            base = default_run_name(self.target)
            name, n = base, 1
            while name in taken or (root / name).exists():
                n += 1
                name = f"{base}-{n}"
        return replace(self, name=name, runs_dir=root)

    @property
    def run_folder(self) -> Path:
        """The folder the run will get (``runs_dir / name``); call on a resolved spec."""
        if self.name is None or self.runs_dir is None:
            raise ValueError("call LaunchSpec.resolved() first: the name or runs_dir is unset")
        return Path(self.runs_dir) / self.name


def run_args(spec: LaunchSpec) -> list[str]:
    """The arguments of ``trainer run`` for ``spec`` (after the ``trainer`` command itself)."""
    target = spec.target
    if spec.is_script:
        target = os.path.abspath(os.path.expanduser(target))
    args = ["run", target]
    args += [f"--set={item}" for item in spec.overrides]
    if spec.name is not None:
        args.append(f"--name={spec.name}")
    if spec.device is not None:
        args.append(f"--device={spec.device}")
    if spec.max_steps is not None:
        args.append(f"--max-steps={spec.max_steps}")
    args += resource_args(spec)
    if spec.runs_dir is not None:
        args.append(f"--runs-dir={spec.runs_dir}")
    args.append("--quiet")
    return args


def resource_args(spec: LaunchSpec) -> list[str]:
    """The ``--gpus``, ``--gpu-mem``, ... options of ``spec`` (only those it sets)."""
    args = []
    if spec.gpus is not None:
        args.append(f"--gpus={spec.gpus}")
    if spec.gpu_mem is not None:
        args.append(f"--gpu-mem={size_arg(spec.gpu_mem)}")
    if spec.share_gpu:
        args.append("--share-gpu")
    if spec.gpu_policy is not None:
        args.append(f"--gpu-policy={spec.gpu_policy}")
    if spec.priority is not None:
        args.append(f"--priority={spec.priority}")
    if spec.max_rss is not None:
        args.append(f"--max-rss={size_arg(spec.max_rss)}")
    if spec.cpu_threads is not None:
        args.append(f"--cpu-threads={spec.cpu_threads}")
    if spec.disk_floor is not None:
        args.append(f"--disk-floor={size_arg(spec.disk_floor)}")
    return args


def size_arg(n: int) -> str:
    """Bytes as the trainer reads them back exactly: ``20GiB``, ``512MiB``, else ``123B``."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = UNITS[unit.lower()]
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def resume_args(run_folder: Path, max_steps: int | None = None) -> list[str]:
    """The arguments of ``trainer resume FOLDER`` (restart from the last checkpoint)."""
    args = ["resume", str(run_folder)]
    if max_steps is not None:
        args.append(f"--max-steps={max_steps}")
    return [*args, f"--runs-dir={run_folder.parent}", "--quiet"]


def run_argv(spec: LaunchSpec) -> list[str]:
    """The full command line that launches ``spec``."""
    return trainer_command(*run_args(spec))
