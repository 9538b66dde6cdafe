"""The resource options of ``trainer run`` and ``trainer resume``: GPUs, queue, limits."""

from __future__ import annotations

import argparse
from dataclasses import replace

from trainer.resources.acquire import parse_gpus
from trainer.resources.limits import Limits, Resources
from trainer.resources.sizes import parse_size
from trainer.resources.store import POLICIES

_FLAGS = ("gpus", "gpu_mem", "share_gpu", "gpu_policy", "priority", "max_rss", "cpu_threads",
          "disk_floor")  # fmt: skip


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("resources and limits")
    g.add_argument("--gpus", metavar="auto|none|any|N|device=I,J",
                   help="GPUs to lease (default auto: one if the run may use CUDA and there is "
                   "a GPU); a run waits, queued, until they are free")  # fmt: skip
    g.add_argument(
        "--gpu-mem",
        metavar="SIZE",
        help="GPU memory the run needs free on each GPU, and its cap (e.g. 20GiB)",
    )
    g.add_argument(
        "--share-gpu",
        action="store_true",
        default=None,
        help="allow other sharing runs on the same GPU",
    )
    g.add_argument("--gpu-policy", choices=POLICIES, help="how GPUs are picked (least-used)")
    g.add_argument(
        "--priority", type=int, metavar="P", help="queue priority: higher starts first (default 0)"
    )
    g.add_argument(
        "--max-rss",
        metavar="SIZE",
        help="stop the run with a checkpoint when its RSS exceeds SIZE (e.g. 8GiB)",
    )
    g.add_argument("--cpu-threads", type=int, metavar="N", help="CPU threads for torch/OpenMP")
    g.add_argument(
        "--disk-floor",
        metavar="SIZE",
        help="pause the run while its disk has less free space (default 512MiB)",
    )


def resources_from_args(args: argparse.Namespace, saved: Resources | None = None) -> Resources:
    """The run's resources: ``saved`` (a resume) with the options given on top."""
    base = saved or Resources()
    sizes = {
        "max_rss": (args.max_rss, "--max-rss"),
        "gpu_mem": (args.gpu_mem, "--gpu-mem"),
        "disk_floor": (args.disk_floor, "--disk-floor"),
    }
    changes: dict[str, int] = {
        key: parse_size(text, what=flag) for key, (text, flag) in sizes.items() if text is not None
    }
    if args.cpu_threads is not None:
        changes["cpu_threads"] = args.cpu_threads
    limits = Limits(**{**base.limits.to_json(), **changes})
    return replace(
        base,
        gpus=parse_gpus(args.gpus) if args.gpus is not None else base.gpus,
        share=bool(args.share_gpu) or base.share,
        policy=args.gpu_policy or base.policy,
        priority=args.priority if args.priority is not None else base.priority,
        limits=limits,
    )


def forward(args: argparse.Namespace) -> list[str]:
    """The options as given, for a child ``trainer`` command line."""
    out = []
    for name in _FLAGS:
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        out.append(flag if value is True else f"{flag}={value}")
    return out
