"""``trainer run [options] -- CMD ARGS``: any command as a run, its metrics captured.

The trainer process owns the run (folder, journal, heartbeat, leases, limits) and runs the
command as its child, in its own process group, so a supervisor's group kill reaches both.
It copies the child's output to the console and the run's logs, and journals the metrics it
captures (see :mod:`trainer.capture`). Control messages reach the child as signals:
stop is SIGTERM (SIGKILL after the stop deadline), pause and resume are SIGSTOP and SIGCONT.

Why over 400 lines: the command driver (the child, its output pumps, capture polling, control
messages as signals, the process tree of a torchrun) is one loop over one state; the capture
formats are in trainer.capture.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trainer import config as cfg
from trainer import control, paths
from trainer.api import Run, create_run, resume_run, stop_deadline
from trainer.capture.api_run import ENV_COMMAND_CONFIG
from trainer.capture.printed import Parser, parser_for
from trainer.capture.records import ENV_CAPTURE_FILE, CaptureTail
from trainer.cli.console import ConsoleCapture, Progress
from trainer.cli.resource_options import resources_from_args
from trainer.distributed_tree import ProcessTree, child_dies_with_us
from trainer.errors import UsageError
from trainer.imports.tfevents import EventFileReader, event_files
from trainer.resources.limits import Resources
from trainer.resources.tmpdirs import run_tmpdir
from trainer.runs import default_run_name
from trainer.supervision.exits import signal_name

#: Seconds between looks at the capture sources and the control channel.
POLL_S = 0.2
#: When a stopped command's whole tree is killed, as a share of the stop deadline: early
#: enough for the trainer to record the stop before its own deadline ends it.
KILL_AT = 0.8
SHIM_DIR = Path(__file__).resolve().parent.parent / "capture" / "shim"


@dataclass
class Captures:
    """What to capture from the command, from its ``--capture`` options."""

    wandb: bool = False
    tensorboard: list[Path] = field(default_factory=list)
    printed: list[Parser] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)


def parse_captures(specs: list[str], cwd: Path) -> Captures:
    out = Captures(specs=list(specs))
    for spec in specs:
        kind, _, arg = spec.partition("=") if not spec.startswith("print:") else ("print", "", "")
        if spec == "wandb":
            out.wandb = True
        elif kind == "tensorboard":
            out.tensorboard.append((cwd / (arg or "runs")).resolve())
        elif spec.startswith("print:"):
            out.printed.append(parser_for(spec.removeprefix("print:")))
        else:
            raise UsageError(
                f"--capture {spec!r} is unknown: use wandb, tensorboard[=DIR], print:kv, "
                "print:dict or print:REGEX"
            )
    return out


def command_mode(argv: list[str], target: str | None) -> bool:
    """True when ``trainer run`` was given ``-- CMD``: the target came after ``--``."""
    if target is None or "--" not in argv:
        return False
    cut = argv.index("--")
    return target in argv[cut + 1 :] and target not in argv[:cut]


def find_command(cmd: list[str]) -> None:
    if not cmd:
        raise UsageError("trainer run --: give the command to run after --")
    if shutil.which(cmd[0]) is None and not (Path(cmd[0]).is_file() and os.access(cmd[0], os.X_OK)):
        raise UsageError(f"command {cmd[0]!r} not found: check your PATH or give its full path")


def execute_command(args: argparse.Namespace) -> int:
    """``trainer run [options] -- CMD ARGS``."""
    from trainer.cli.gpu_plan import plan_gpus

    cmd = [args.target, *args.script_args]
    find_command(cmd)
    captures = parse_captures(args.capture, Path.cwd())
    spec = cfg.ConfigSpec.open()
    file = Path(args.config) if args.config else None
    config = cfg.resolve(spec, file=file, env=args.env, overrides=list(args.overrides))
    resources = resources_from_args(args)
    request = plan_gpus(resources, config)
    script = next((a for a in cmd[1:] if a.endswith(".py")), cmd[0])
    run = create_run(
        entry=shlex.join(cmd), kind="command", config=config,
        name=args.name or default_run_name(Path(script).name),
        runs_root=paths.runs_dir(args.runs_dir),
    )  # fmt: skip
    resources.save(run.paths.root)
    # What a resume needs to run the command the same way: its captures and its folder.
    (run.paths.root / "command.json").write_text(
        json.dumps({"captures": captures.specs, "cwd": os.getcwd()}), encoding="utf-8"
    )
    return drive_command(run, cmd, captures, quiet=args.quiet, resources=resources,
                         request=request)  # fmt: skip


def torchrun_command(args: argparse.Namespace, recipe: str) -> list[str]:
    """``python -m torch.distributed.run ... -m trainer.distributed RECIPE`` for the options."""
    nproc, nnodes = args.nproc_per_node, args.nnodes or 1
    if nproc < 1 or nnodes < 1:
        raise UsageError("--nproc-per-node and --nnodes must be 1 or more")
    if getattr(sys, "frozen", False):
        raise UsageError(
            "--nproc-per-node needs TrainDesk installed from source (torchrun cannot start "
            "from the bundle): see docs/deployment.md"
        )
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           f"--max-restarts={args.elastic_restarts}"]  # fmt: skip
    if nnodes == 1 and not args.rdzv_endpoint:
        cmd.append("--standalone")
    else:
        if not args.rdzv_endpoint:
            raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT, the same on all nodes")
        cmd += [f"--nnodes={nnodes}", f"--node-rank={args.node_rank or 0}",
                "--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}"]  # fmt: skip
    return [*cmd, "-m", "trainer.distributed", recipe]


def execute_distributed(args: argparse.Namespace) -> int:
    """``trainer run RECIPE --nproc-per-node N``: the recipe on torchrun, one run folder."""
    from trainer import recipes
    from trainer.cli.gpu_plan import plan_gpus
    from trainer.resources.store import GpuRequest

    recipe = recipes.get(args.target)
    overrides = list(args.overrides)
    for flag in ("max_steps", "seed", "device"):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{flag}={value!r}" if isinstance(value, str) else f"{flag}={value}")
    file = Path(args.config) if args.config else None
    config = cfg.resolve(recipe.spec(), file=file, env=args.env, overrides=overrides)
    cmd = torchrun_command(args, recipe.name)
    resources = resources_from_args(args)
    if resources.gpus is None and str(config.get("device", "auto")) != "cpu":
        from dataclasses import replace

        from trainer.resources.acquire import read_inventory

        if read_inventory().devices:  # one GPU per local rank
            resources = replace(resources, gpus=GpuRequest(count=args.nproc_per_node))
    request = plan_gpus(resources, config)
    max_steps = config.get("max_steps")
    run = create_run(
        entry=shlex.join(cmd), kind="distributed", config=config,
        name=args.name or default_run_name(recipe.name), runs_root=paths.runs_dir(args.runs_dir),
        max_steps=int(max_steps) if isinstance(max_steps, int) else None,
    )  # fmt: skip
    resources.save(run.paths.root)
    return drive_command(run, cmd, Captures(), quiet=args.quiet, resources=resources,
                         request=request)  # fmt: skip


def resume_command(run_paths: paths.RunPaths, args: argparse.Namespace, entry: str,
                   config: dict[str, Any]) -> int:  # fmt: skip
    """``trainer resume`` of a command run: the same command again, as a new attempt."""
    from trainer.cli.gpu_plan import plan_gpus

    cmd = shlex.split(entry)
    find_command(cmd)
    try:
        saved = json.loads((run_paths.root / "command.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    cwd = Path(saved.get("cwd") or Path.cwd())
    if not cwd.is_dir():
        raise UsageError(f"the command's folder {cwd} no longer exists: recreate it to resume")
    os.chdir(cwd)
    captures = parse_captures(list(saved.get("captures") or []), cwd)
    resources = resources_from_args(args, Resources.load(run_paths.root))
    request = plan_gpus(resources, config)
    run = resume_run(run_paths, config=config)
    print(f"resuming {run.name} as attempt {run.attempt}: {entry}")
    return drive_command(run, cmd, captures, quiet=args.quiet, resources=resources,
                         request=request)  # fmt: skip


def drive_command(
    run: Run,
    cmd: list[str],
    captures: Captures,
    *,
    quiet: bool,
    resources: Resources,
    request: Any,
) -> int:
    from trainer.cli.gpu_plan import hold_resources
    from trainer.resources.acquire import release

    run.install_signal_handlers()
    with ConsoleCapture(run.paths.stdout_log, run.paths.stderr_log) as console, run_tmpdir(run.id):
        print(f"run {run.name} ({run.id}) in {run.paths.root}: {shlex.join(cmd)}", flush=True)
        try:
            gpus = hold_resources(run, request, resources)
            if gpus is None:
                run.finish("stopped", f"stopped while queued ({run.stop_reason or 'cancelled'})")
                return 0
            with Progress(run, terminal=console.terminal, enabled=not quiet):
                run.start()
                code = CommandDriver(run, cmd, captures).run()
        finally:
            if request.wants_gpu:
                release(run.paths.root)
        if code == 0 or run.stop_reason:
            run.finish()
            status = "stopped" if run.stop_reason else "finished"
            print(f"run {run.name} {status} at step {run.step}", flush=True)
            return 0
        if code < 0:
            # Killed outright (SIGKILL, the OOM killer, a SIGTERM not sent by us): a crash,
            # not a training error. 128+N tells a supervisor which signal, as a shell does.
            why = f"the command was killed by {signal_name(-code)}"
            run.finish("crashed", why)
            print(f"error: the run {run.name} crashed: {why}", file=sys.stderr, flush=True)
            return 128 - code
        why = f"exited with code {code}"
        run.fail(RuntimeError(f"the command {why}"))
        print(f"error: the run {run.name} failed: the command {why}",
              file=console.terminal if console.terminal is not None else sys.stdout)  # fmt: skip
        return 1


class CommandDriver:
    """Runs the child, pumps its output, journals what it captures, relays control."""

    def __init__(self, run: Run, cmd: list[str], captures: Captures) -> None:
        self.run_ = run
        self.cmd = cmd
        self.captures = captures
        self.metrics: queue.Queue[tuple[int | None, dict[str, float]]] = queue.Queue()
        self.capture_file = run.paths.root / "capture" / f"attempt-{run.attempt}.jsonl"
        self.tail = CaptureTail(self.capture_file)
        self.tb_readers: dict[Path, EventFileReader] = {}
        self.started = time.time()
        self.auto_step = run.start_step
        self.paused = False
        self.ranks: dict[int, dict[str, Any]] = {}
        self.elastic_restart = 0
        self._ranks_saved = 0.0
        self.tree = ProcessTree(os.getpid())  # replaced by the command's tree once it starts

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            paths.ENV_RUN_DIR: str(self.run_.paths.root), ENV_CAPTURE_FILE: str(self.capture_file),
            ENV_COMMAND_CONFIG: json.dumps(self.run_.config), "PYTHONUNBUFFERED": "1",
            "TRAINDESK_RUN_NAME": self.run_.name,
        })  # fmt: skip
        if self.captures.wandb:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(SHIM_DIR), env.get("PYTHONPATH", "")) if p
            )
        if "trainer.distributed" in self.cmd:
            # Since torch 2.5 the ranks share torchrun's rendezvous TCPStore, and it outlives an
            # elastic restart with the previous attempt's keys in it: a restarted rank that
            # reads its peer's address before the peer has written the new one connects to a
            # dead socket (Gloo connectFullMesh: connection refused), so restarts fail when the
            # ranks start at different speeds (a loaded machine). pytorch/pytorch#135712; the
            # opt-out gives every attempt a store of its own (docs/multi-gpu.md).
            env.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
        return env

    def run(self) -> int:
        self.capture_file.parent.mkdir(parents=True, exist_ok=True)
        self.capture_file.touch()
        proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self._env(), preexec_fn=child_dies_with_us(),
        )  # fmt: skip
        self.tree = tree = ProcessTree(proc.pid)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=self._pump, args=(proc.stdout, "stdout"), name="cmd-stdout"),
            threading.Thread(target=self._pump, args=(proc.stderr, "stderr"), name="cmd-stderr"),
        ]
        for pump in pumps:
            pump.start()
        stop_sent: float | None = None
        # The whole tree is killed in time for the trainer to record it within the deadline.
        kill_after = stop_deadline() * KILL_AT
        try:
            while proc.poll() is None:
                tree.refresh_now_and_then()
                self._collect()
                self._control(proc)
                if self.run_.stop_reason and stop_sent is None:
                    if self.paused:
                        self._signal(proc, signal.SIGCONT)
                    # torchrun passes SIGTERM on to its workers and waits for them.
                    proc.send_signal(signal.SIGTERM)
                    stop_sent = time.monotonic()
                elif stop_sent is not None and time.monotonic() - stop_sent > kill_after:
                    tree.kill()
                    proc.kill()
                time.sleep(POLL_S)  # pacing the poll of the sources, not synchronisation
        finally:
            if proc.poll() is None:
                tree.kill()
                proc.kill()
                proc.wait()
            # What the command left running (torchrun's workers, when torchrun was killed).
            left = tree.reap(grace=min(5.0, kill_after))
            if left:
                self._event("warning", f"stopped {len(left)} processes the command left "
                            "running", {"pids": left})  # fmt: skip
            for pump in pumps:
                pump.join(30)
        self._collect(final=True)
        if self.ranks:
            self._ranks_saved = 0.0
            self._rank(self.ranks[min(self.ranks)])  # the final ranks.json
        return int(proc.returncode)

    # ------------------------------------------------------------------ sources
    def _pump(self, stream: IO[bytes], name: str) -> None:
        """Copy one output stream line by line to our console, parsing it on the way."""
        out = sys.stdout if name == "stdout" else sys.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            out.write(line)
            for parse in self.captures.printed:
                found = parse(line)
                if found is not None:
                    self.metrics.put(found)
        stream.close()

    def _collect(self, final: bool = False) -> None:
        run = self.run_
        while True:
            try:
                step, metrics = self.metrics.get_nowait()
            except queue.Empty:
                break
            if step is None:
                self.auto_step += 1
                step = self.auto_step
            else:
                self.auto_step = max(self.auto_step, step)
            run.log(metrics, step=step)
        for record in self.tail.read_new():
            self._record(record)
        for log_dir in self.captures.tensorboard:
            self._tensorboard(log_dir, final)

    def _record(self, record: dict[str, Any]) -> None:
        run = self.run_
        kind = record.get("kind")
        if kind == "log" and isinstance(record.get("metrics"), dict):
            metrics = {k: float(v) for k, v in record["metrics"].items()
                       if isinstance(v, int | float)}  # fmt: skip
            step = record.get("step")
            if metrics:
                run.log(metrics, step=int(step) if step is not None else run.step + 1)
        elif kind == "event":
            self._event(str(record.get("event") or "event"), str(record.get("message") or ""),
                        record.get("data"))  # fmt: skip
        elif kind == "config" and isinstance(record.get("config"), dict):
            self._event("config", "the command's config", record["config"])
        elif kind == "rank":
            self._rank(record)

    def _event(self, kind: str, message: str, data: Any) -> None:
        """Journal an event with the data as given (keys named like arguments included)."""
        self.run_._writer.event(kind, message, step=self.run_.step,
                                data=data if isinstance(data, dict) and data else None)  # fmt: skip

    def _rank(self, record: dict[str, Any]) -> None:
        """A rank's heartbeat (torchrun): kept in ranks.json; restarts journaled."""
        run = self.run_
        restart = int(record.get("restart") or 0)
        if restart > self.elastic_restart:
            self.elastic_restart = restart
            self.ranks.clear()
            self._event("elastic_restart", f"torchrun restarted the workers (restart {restart})",
                        {"restart": restart})  # fmt: skip
        rank = int(record.get("rank") or 0)
        if rank not in self.ranks:
            self._event("rank", f"rank {rank} of {record.get('world')} on {record.get('host')} "
                        f"(node {record.get('node')}, {record.get('device')}, pid "
                        f"{record.get('pid')})", record)  # fmt: skip
        self.ranks[rank] = record
        now = time.monotonic()
        if now - self._ranks_saved >= 1.0:
            self._ranks_saved = now
            from trainer.paths import write_private_text

            write_private_text(run.paths.root / "ranks.json",
                               json.dumps({"restart": self.elastic_restart,
                                           "ranks": [self.ranks[r] for r in sorted(self.ranks)]},
                                          indent=1))  # fmt: skip

    def _tensorboard(self, log_dir: Path, final: bool = False) -> None:
        for path in event_files(log_dir) if log_dir.is_dir() else []:
            reader = self.tb_readers.get(path)
            if reader is None:
                try:
                    if path.stat().st_mtime < self.started - 1:
                        continue  # an older run's log in the same folder
                except OSError:
                    continue
                reader = self.tb_readers[path] = EventFileReader(path)
            prefix = path.parent.relative_to(log_dir).as_posix()
            by_step: dict[int, dict[str, float]] = {}
            for event in reader.read_new(final=final):
                tag = event.tag if prefix == "." else f"{prefix}/{event.tag}"
                by_step.setdefault(event.step, {})[tag] = event.value
            for problem in reader.new_problems():  # corrupt or truncated: skipped, said
                self._event("warning", f"TensorBoard capture skipped {problem}",
                            {"file": str(problem.path), "offset": problem.offset,
                             "what": problem.what})  # fmt: skip
            for step in sorted(by_step):
                self.run_.log(by_step[step], step=step)

    # ------------------------------------------------------------------ control
    def _control(self, proc: subprocess.Popen[bytes]) -> None:
        run = self.run_
        if control.pending(run.paths):
            for msg in control.receive(run.paths):
                if msg.command == "stop":
                    run.request_stop(str(msg.args.get("reason") or "stopped by user"))
                elif msg.command == "pause" and not self.paused:
                    self._pause(proc, "paused by user")
                elif msg.command == "resume" and self.paused:
                    self._resume(proc)
                elif msg.command == "limits":
                    run.limits = run.limits.updated(msg.args)
                else:
                    run.event("ignored", f"{msg.command}: a command run cannot do it")
        if run._over_limit is not None and run.stop_reason is None:
            run.event("limit_exceeded", run._over_limit)
            run.request_stop(run._over_limit)
        if run._disk_low is not None and not self.paused:
            self._pause(proc, run._disk_low)
        elif run._disk_low is None and self.paused and self._disk_paused:
            self._resume(proc)

    _disk_paused = False

    def _signal(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        """``sig`` to the command and every process of its tree (torchrun's workers)."""
        proc.send_signal(sig)
        self.tree.refresh()
        self.tree.signal(sig)

    def _pause(self, proc: subprocess.Popen[bytes], reason: str) -> None:
        self._signal(proc, signal.SIGSTOP)
        self.paused = True
        self._disk_paused = reason.startswith("disk space low")
        self.run_._transition("paused", "paused", reason, step=self.run_.step,
                              exit_reason=reason)  # fmt: skip

    def _resume(self, proc: subprocess.Popen[bytes]) -> None:
        self._signal(proc, signal.SIGCONT)
        self.paused = self._disk_paused = False
        self.run_._transition("running", "resumed", step=self.run_.step)
