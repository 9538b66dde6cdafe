"""What to launch, and the trainer command line that launches it. Qt-free and torch-free.

The app never trains in its own process: a run is ``python -m trainer run ...`` (or, in a
frozen bundle, ``<bundle> trainer run ...``), started and watched by the supervisor. Three
kinds of target: a built-in recipe (``trainer run RECIPE``, on torchrun with
``--nproc-per-node``), a script (``trainer run path/to/train.py``) and any command
(``trainer run [options] -- CMD ARGS``, run in its own working directory).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainer.errors import TrainDeskError
from trainer.paths import runs_dir as default_runs_dir
from trainer.paths import validate_run_name
from trainer.resources.sizes import UNITS
from trainer.runs import default_run_name
from trainer.supervision.process import trainer_command

__all__ = [
    "LaunchSpec", "distributed_args", "resume_args", "run_args", "run_argv", "size_arg",
    "trainer_command",
]  # fmt: skip


def is_script_target(target: str) -> bool:
    """True if ``target`` names a script rather than a built-in recipe (the trainer's rule)."""
    return target.endswith(".py") or os.sep in target or "/" in target


@dataclass(frozen=True)
class LaunchSpec:
    """One run to launch: a recipe name, a script path or a command, and the options of
    ``trainer run``.

    ``overrides`` are ``key=value`` strings as ``--set`` takes them (values read as TOML).
    ``name`` and ``runs_dir`` may be left out: :meth:`resolved` fills them in.

    A command run (:meth:`for_command`) has ``command`` (the argv), ``cwd`` (where it runs;
    None: the app's own) and ``captures`` (``--capture`` values: ``wandb``,
    ``tensorboard[=DIR]``, ``print:kv``, ``print:dict``, ``print:REGEX``); its ``target`` is
    the command line, for display. ``nproc_per_node``, ``nnodes``, ``node_rank``,
    ``rdzv_endpoint`` and ``elastic_restarts`` put a recipe on torchrun (None: left out).

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
    command: list[str] | None = None
    cwd: Path | None = None
    captures: list[str] = field(default_factory=list)
    nproc_per_node: int | None = None
    nnodes: int | None = None
    node_rank: int | None = None
    rdzv_endpoint: str | None = None
    elastic_restarts: int | None = None

    @classmethod
    def for_command(
        cls, command: Sequence[str], cwd: str | Path | None = None, **fields: Any
    ) -> LaunchSpec:
        """A command run: ``command`` (argv, not empty) run in ``cwd``; ``fields`` as for
        the constructor (``captures``, ``overrides``, ``name``, the resources ...)."""
        argv = [str(a) for a in command]
        if not argv:
            raise ValueError("a command run needs a command")
        where = Path(cwd).expanduser() if cwd is not None else None
        return cls(shlex.join(argv), command=argv, cwd=where, **fields)

    @property
    def is_command(self) -> bool:
        return self.command is not None

    @property
    def is_script(self) -> bool:
        return not self.is_command and is_script_target(self.target)

    @property
    def name_source(self) -> str:
        """What a generated name starts with: the recipe, the script, or for a command its
        first ``.py`` argument or its program (the trainer's rule)."""
        if self.command is None:
            return self.target
        script = next((a for a in self.command[1:] if a.endswith(".py")), self.command[0])
        return Path(script).name

    def resolved(self, taken: frozenset[str] | set[str] = frozenset()) -> LaunchSpec:
        """A copy with ``runs_dir`` and ``name`` set; a generated name avoids existing folders
        and the names in ``taken`` (runs being launched)."""
        root = Path(self.runs_dir) if self.runs_dir is not None else default_runs_dir()
        name = self.name
        if name is None:
            base = default_run_name(self.name_source)
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
    """The arguments of ``trainer run`` for ``spec`` (after the ``trainer`` command itself).

    A command's are ``run [options] -- CMD ARGS``: every option before ``--`` (each as
    ``--opt=value``, so that no option value can be taken for the command), the command
    after it; that is how the trainer tells a command from a recipe or a script.
    """
    args = ["run"]
    if spec.command is None:
        target = spec.target
        if spec.is_script:
            target = os.path.abspath(os.path.expanduser(target))
        args.append(target)
    args += [f"--set={item}" for item in spec.overrides]
    if spec.name is not None:
        args.append(f"--name={spec.name}")
    if spec.device is not None:
        args.append(f"--device={spec.device}")
    if spec.max_steps is not None:
        args.append(f"--max-steps={spec.max_steps}")
    args += distributed_args(spec)
    args += [f"--capture={item}" for item in spec.captures]
    args += resource_args(spec)
    if spec.runs_dir is not None:  # absolute: a command runs in another directory
        args.append(f"--runs-dir={os.path.abspath(os.path.expanduser(spec.runs_dir))}")
    # No --quiet: on a pipe the trainer prints a plain progress line every few seconds,
    # which the app's console shows (and logs/stdout.log keeps).
    if spec.command is not None:
        args += ["--", *spec.command]
    return args


def distributed_args(spec: LaunchSpec) -> list[str]:
    """The torchrun options of ``spec`` (only those it sets)."""
    return _options(spec, ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint",
                           "elastic_restarts"))  # fmt: skip


#: LaunchSpec fields given to the trainer as sizes (``20GiB``), not plain numbers.
_SIZES = frozenset({"gpu_mem", "max_rss", "disk_floor"})


def resource_args(spec: LaunchSpec) -> list[str]:
    """The ``--gpus``, ``--gpu-mem``, ... options of ``spec`` (only those it sets)."""
    return _options(spec, ("gpus", "gpu_mem", "share_gpu", "gpu_policy", "priority", "max_rss",
                           "cpu_threads", "disk_floor"))  # fmt: skip


def _options(spec: LaunchSpec, fields: tuple[str, ...]) -> list[str]:
    """``--field-name=value`` for each of ``fields`` that ``spec`` sets (a flag for True)."""
    args = []
    for field_name in fields:
        value = getattr(spec, field_name)
        if value is None or value is False:
            continue
        flag = "--" + field_name.replace("_", "-")
        if value is True:
            args.append(flag)
        else:
            args.append(f"{flag}={size_arg(value) if field_name in _SIZES else value}")
    return args


def size_arg(n: int) -> str:
    """Bytes as the trainer reads them back exactly: ``20GiB``, ``512MiB``, else ``123B``."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = UNITS[unit.lower()]
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def resume_args(
    run_folder: Path, max_steps: int | None = None, *, trust: bool = False
) -> list[str]:
    """The arguments of ``trainer resume FOLDER`` (restart from the last checkpoint);
    ``trust``: the user confirmed running the command of a folder made elsewhere."""
    args = ["resume", str(run_folder)]
    if max_steps is not None:
        args.append(f"--max-steps={max_steps}")
    if trust:
        args.append("--trust")
    return [*args, f"--runs-dir={run_folder.parent}"]


def run_argv(spec: LaunchSpec) -> list[str]:
    """The full command line that launches ``spec``."""
    return trainer_command(*run_args(spec))


def name_problem(name: str, runs_dir: Path) -> str:
    """Why ``name`` cannot be a new run's name in ``runs_dir`` ("" if it can, or is empty)."""
    name = name.strip()
    if not name:
        return ""
    try:
        validate_run_name(name)
    except TrainDeskError as exc:
        return str(exc)
    if (runs_dir / name).exists():
        return f"a run named {name!r} already exists in {runs_dir}"
    return ""
