"""One rank of a built-in recipe under torchrun: ``python -m trainer.distributed RECIPE``.

``trainer run RECIPE --nproc-per-node N`` runs ``torch.distributed.run`` as its command
(:mod:`trainer.cli.command_run`); torchrun starts this module once per rank. Every rank:

* joins the process group (gloo on the CPU, NCCL on GPUs, one GPU per local rank);
* trains the recipe with DistributedDataParallel on its shard of each global batch;
* sends a heartbeat record (rank, node, host, pid, device, step, restart) through the capture
  file every second, so the trainer can show the ranks.

Rank 0 alone sends metrics and events and saves checkpoints; every rank resumes from the
newest checkpoint, so torchrun's elastic restarts continue the run. A stop (SIGTERM from the
trainer) is agreed on by all ranks at the same step.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainer import recipes, settings
from trainer.capture.api_run import CaptureRun
from trainer.distributed_tree import die_with_parent, parent_is_torchrun
from trainer.errors import ConfigError, TrainDeskError

#: Seconds between a rank's heartbeat records.
RANK_BEAT_S = 1.0


class RankRun(CaptureRun):
    """A :class:`CaptureRun` for one rank: rank 0 reports, every rank beats."""

    def __init__(self, capture_file: str, run_dir: str, config: dict[str, Any]) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.local_rank = settings.LOCAL_RANK.get()
        self.node = settings.GROUP_RANK.get() or settings.NODE_RANK.get()
        self.restart = settings.RESTART_COUNT.get()
        self.device = str(config.get("device", "cpu"))
        super().__init__(capture_file, run_dir, config)
        self._halt = threading.Event()
        self._beat = threading.Thread(target=self._beat_loop, name=f"rank{self.rank}-beat",
                                      daemon=True)  # fmt: skip
        self._beat.start()

    def _beat_loop(self) -> None:
        while True:
            self._writer.write({
                "kind": "rank", "rank": self.rank, "world": self.world,
                "local_rank": self.local_rank, "node": self.node, "host": socket.gethostname(),
                "pid": os.getpid(), "device": self.device, "step": self.step,
                "restart": self.restart, "wall": time.time(),
            })  # fmt: skip
            if self._halt.wait(RANK_BEAT_S):
                return

    def _announce(self) -> None:
        if self.rank == 0:
            super()._announce()

    def log(self, metrics: Any, step: int | None = None) -> None:
        if self.rank == 0:
            super().log(metrics, step)
        else:
            self.step = max(self.step, step if step is not None else self.step + 1)

    def event(self, kind: str, message: str = "", **data: Any) -> None:
        if self.rank == 0:
            super().event(kind, message, **data)

    def should_stop(self) -> bool:
        """Agreed by every rank (a collective: all ranks call it at the same steps)."""
        where = self.device if self.device.startswith("cuda") else "cpu"  # NCCL: on the GPU
        flag = torch.tensor([1.0 if self.stop_reason else 0.0], device=where)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and self.stop_reason is None:
            self.stop_reason = "stopped by another rank"
        return bool(flag.item())

    def checkpoint(self, state: dict[str, Any], step: int | None = None) -> Path:
        from trainer import checkpoint

        step = self.step if step is None else step
        path = checkpoint.checkpoint_path(self.paths.checkpoints, step)
        if self.rank == 0:
            path = super().checkpoint(state, step)
        dist.barrier()  # no rank goes on (and may be restarted) before the checkpoint exists
        return path

    def finish(self, status: str | None = None, reason: str | None = None) -> None:
        self._halt.set()
        self._beat.join(5)
        super().finish(status, reason)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m trainer.distributed RECIPE (started by torchrun)", file=sys.stderr)
        return 2
    capture, run_dir = settings.CAPTURE_FILE.raw(), settings.RUN_DIR.raw()
    if not capture or not run_dir:
        print("error: run it as `trainer run RECIPE --nproc-per-node N`", file=sys.stderr)
        return 2
    # torchrun put this rank in a session of its own: if torchrun is killed outright (the
    # trainer gone), nothing else would stop it. If it died before this line, go now.
    die_with_parent()
    if not parent_is_torchrun():
        print("error: torchrun, which started this rank, is gone: exiting", file=sys.stderr)
        return 1
    import json

    config: dict[str, Any] = json.loads(settings.COMMAND_CONFIG.get())
    cuda = str(config.get("device", "auto")) != "cpu" and torch.cuda.is_available()
    local_rank = settings.LOCAL_RANK.get()
    if cuda:
        torch.cuda.set_device(local_rank)
        config["device"] = f"cuda:{local_rank}"
    else:
        config["device"] = "cpu"
    dist.init_process_group("nccl" if cuda else "gloo")
    run: RankRun | None = None
    try:
        world = dist.get_world_size()
        batch = int(config.get("batch_size", world))
        if batch % world:
            raise ConfigError(
                f"config key 'batch_size': {batch} does not split over {world} processes: "
                f"use a multiple of {world}"
            )
        run = RankRun(capture, run_dir, config)
        recipes.get(args[0]).entry_point()(run)  # type: ignore[arg-type]
        return 0
    except TrainDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if run is not None:
            run.finish()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
