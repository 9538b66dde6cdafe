"""GPU leases, the queue and run limits, on simulated 2- and 4-GPU machines, with real processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.helpers import NOTORCH, ROOT, TINY, cli, spawn, trainer_env, wait_until
from trainer.errors import UsageError
from trainer.journal import JournalReader
from trainer.resources.acquire import decide_request, parse_gpus, read_inventory
from trainer.resources.gpus import GiB, SimulatedBackend
from trainer.resources.limits import Limits, Resources
from trainer.resources.sizes import format_size, parse_size
from trainer.resources.store import GpuRequest, LeaseStore, choose
from trainer.resources.tmpdirs import base_dir, clean_stale


@pytest.fixture(autouse=True)
def lease_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "leases.sqlite"
    monkeypatch.setenv("TRAINDESK_LEASES", str(path))
    return path


def machine(spec: str) -> list:  # type: ignore[type-arg]
    return SimulatedBackend.from_spec(spec).devices()


# ---------------------------------------------------------------------------- parsing
def test_sizes_and_gpu_requests_parse_or_say_how() -> None:
    assert parse_size("20GiB") == 20 * GiB and parse_size("512 MiB") == 512 * 2**20
    assert parse_size("1.5G") == int(1.5 * GiB) and format_size(3 * GiB) == "3 GiB"
    with pytest.raises(UsageError, match="write it like 20GiB"):
        parse_size("lots", what="--gpu-mem")
    assert parse_gpus("auto") is None and parse_gpus("none") == GpuRequest()
    assert parse_gpus("any") == GpuRequest(count=1) and parse_gpus("2").count == 2
    assert parse_gpus("device=1,3").ids == (1, 3)
    with pytest.raises(UsageError, match="give auto, none, any, N or device=0,1"):
        parse_gpus("two")


def test_auto_asks_for_one_gpu_only_where_there_is_one_and_the_run_may_use_it() -> None:
    two = read_inventory(SimulatedBackend.from_spec("2x80GiB"))
    none = read_inventory(SimulatedBackend.from_spec("1x1GiB"))
    none = type(none)([], "NVML", False, "No NVIDIA driver found")
    assert decide_request(None, "auto", two).count == 1
    assert decide_request(None, "cuda:1", two).ids == (1,)
    assert not decide_request(None, "cpu", two).wants_gpu
    assert not decide_request(None, "auto", none).wants_gpu


# ---------------------------------------------------------------------------- choosing
def test_overlapping_requests_never_share_a_device() -> None:
    devices = machine("4x80GiB")
    held: list[tuple[int, str, int | None, int, int]] = []
    for n, want in enumerate([1, 2, 1]):
        picked, reason = choose(GpuRequest(count=want), devices, held, simulated=True)
        assert len(picked) == want, reason
        assert not set(picked) & {h[0] for h in held}
        held += [(gpu, f"run{n}", None, 0, n) for gpu in picked]
    picked, reason = choose(GpuRequest(count=1), devices, held, simulated=True)
    assert picked == [] and "GPU 0 held by run run0" in reason
    assert reason.startswith("waiting for 1 GPU;")


def test_sharing_needs_every_holder_to_allow_it() -> None:
    devices = machine("1x80GiB")
    exclusive = [(0, "a", None, 0, 1)]
    shared = [(0, "a", None, 1, 1)]
    assert choose(GpuRequest(count=1, share=True), devices, exclusive, simulated=True)[0] == []
    assert choose(GpuRequest(count=1, share=True), devices, shared, simulated=True)[0] == [0]
    assert choose(GpuRequest(count=1), devices, shared, simulated=True)[0] == []


def test_memory_budgets_and_policies() -> None:
    devices = machine("1x80GiB,1x24GiB")
    req = GpuRequest(count=1, mem_budget=40 * GiB)
    assert choose(req, devices, [], simulated=True)[0] == [0]
    held = [(0, "a", 50 * GiB, 1, 1)]
    picked, reason = choose(GpuRequest(count=1, mem_budget=40 * GiB, share=True), devices, held,
                            simulated=True)  # fmt: skip
    assert picked == [] and "GPU 0 has 30 GiB free" in reason and "GPU 1 has 24 GiB" in reason
    four = machine("4x80GiB")
    held = [(2, "a", 10 * GiB, 1, 1)]
    assert choose(GpuRequest(count=1, share=True, policy="pack"), four, held,
                  simulated=True)[0] == [2]  # fmt: skip
    assert choose(GpuRequest(count=1, share=True, policy="spread"), four, held,
                  simulated=True)[0] == [0]  # fmt: skip


def test_real_gpus_count_memory_of_processes_that_are_not_ours() -> None:
    backend = SimulatedBackend.from_spec("1x80GiB")
    backend.set_memory(0, 70 * GiB)  # someone else's job
    devices = backend.devices()
    req = GpuRequest(count=1, mem_budget=20 * GiB)
    picked, reason = choose(req, devices, [], simulated=False)
    assert picked == [] and "GPU 0 has 10 GiB free" in reason


# ---------------------------------------------------------------------------- the store
def test_queue_is_fifo_within_priority_and_can_be_reordered_and_cancelled(
    lease_store: Path,
) -> None:
    with LeaseStore(lease_store) as store:
        a = store.enqueue("/r/a", GpuRequest(count=1))
        b = store.enqueue("/r/b", GpuRequest(count=1))
        c = store.enqueue("/r/c", GpuRequest(count=1), priority=5)
        assert [e.id for e in store.queue()] == [c, a, b]
        assert store.move(b, 1)
        assert [e.id for e in store.queue()] == [c, b, a]
        devices = machine("1x80GiB")
        grant = store.try_acquire("/r/b", GpuRequest(count=1), devices, simulated=True,
                                  queue_id=b)  # fmt: skip
        assert not grant.ok and "waiting behind run c" in grant.reason
        assert store.try_acquire("/r/c", GpuRequest(count=1), devices, simulated=True,
                                 queue_id=c).ok  # fmt: skip
        grant = store.try_acquire("/r/b", GpuRequest(count=1), devices, simulated=True,
                                  queue_id=b)  # fmt: skip
        assert not grant.ok and "GPU 0 held by run c" in grant.reason
        assert [e.reason for e in store.queue() if e.id == b] == [grant.reason]
        assert store.cancel(b)
        grant = store.try_acquire("/r/b", GpuRequest(count=1), devices, simulated=True,
                                  queue_id=b)  # fmt: skip
        assert grant.reason.startswith("cancelled")


def test_a_stale_lease_of_a_killed_process_is_reclaimed(lease_store: Path) -> None:
    code = (
        "import sys, time\n"
        "from trainer.resources.gpus import SimulatedBackend\n"
        "from trainer.resources.store import GpuRequest, LeaseStore\n"
        "store = LeaseStore()\n"
        "devices = SimulatedBackend.from_spec('2x80GiB').devices()\n"
        "assert store.try_acquire('/r/victim', GpuRequest(count=2), devices, simulated=True).ok\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=trainer_env())  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    devices = machine("2x80GiB")
    with LeaseStore(lease_store) as store:
        assert not store.try_acquire("/r/next", GpuRequest(count=1), devices, simulated=True).ok
        holder.kill()
        holder.wait()
        holder.stdout.close()
        grant = store.try_acquire("/r/next", GpuRequest(count=2), devices, simulated=True)
        assert grant.ok and [x.gpu for x in grant.leases] == [0, 1]
        released = [r for r in store.grant_log() if r[1] == "/r/victim"]
        assert len(released) == 2 and all(r[4] is not None for r in released)


def test_two_processes_racing_for_the_last_gpu_never_both_get_it(lease_store: Path) -> None:
    racer = ROOT / "tests" / "scripts" / "lease_racer.py"
    procs = [
        subprocess.Popen(
            [sys.executable, str(racer), str(lease_store), "100", name],
            stdout=subprocess.PIPE,
            text=True,
            env=trainer_env(),
        )
        for name in ("left", "right")
    ]
    wins = [int(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    with LeaseStore(lease_store) as store:
        log = store.grant_log()
    assert len(log) == sum(wins) and sum(wins) > 0
    spans = sorted((granted, released) for _, _, _, granted, released in log)
    assert all(released is not None for _, released in spans)
    doubles = sum(1 for (_, end), (start, _) in itertools.pairwise(spans) if start < end)
    assert doubles == 0


# ---------------------------------------------------------------------------- the CLI
def test_trainer_gpus_lists_the_simulated_inventory_and_its_leases(runs_dir: Path) -> None:
    env = {"TRAINDESK_SIMULATED_GPUS": "2x80GiB"}
    done = cli("gpus", "--json", **env)
    report = json.loads(done.stdout)
    assert report["simulated"] and [g["index"] for g in report["gpus"]] == [0, 1]
    assert all(g["leases"] == [] for g in report["gpus"])
    text = cli("gpus", **env).stdout
    assert "(simulated)" in text and "GPU 1" in text
    assert "no GPUs" in cli("gpus").stdout  # a CPU-only machine works without either


def test_a_run_waits_queued_for_its_gpus_then_starts_in_order(runs_dir: Path) -> None:
    env = {"TRAINDESK_SIMULATED_GPUS": "2x80GiB"}
    first = spawn("run", str(TINY), "--name", "first", "--quiet", "--gpus", "2",
                  "--set", "max_steps=100000", "--set", "step_sleep=0.01", **env)  # fmt: skip
    wait_until(lambda: _status(runs_dir / "first") == "running", 120, "first running")
    # The queued runs only have to start in order and finish: no torch needed.
    second = spawn("run", str(NOTORCH), "--name", "second", "--quiet", "--gpus", "1",
                   "--set", "max_steps=5", **env)  # fmt: skip
    wait_until(lambda: _status(runs_dir / "second") == "queued", 120, "second queued")
    third = spawn("run", str(NOTORCH), "--name", "third", "--quiet", "--gpus", "any",
                  "--set", "max_steps=5", **env)  # fmt: skip
    wait_until(lambda: _status(runs_dir / "third") == "queued", 120, "third queued")
    queue = json.loads(cli("queue", "--json", **env).stdout)
    assert [e["run"] for e in queue] == ["second", "third"]
    assert "GPU 0 held by run first" in queue[0]["reason"]
    report = json.loads(cli("gpus", "--json", **env).stdout)
    assert [x["run"] for g in report["gpus"] for x in g["leases"]] == ["first", "first"]
    assert cli("stop", "first", **env).returncode == 0
    for proc in (first, second, third):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    starts = {}
    for name in ("second", "third"):
        with JournalReader(runs_dir / name) as reader:
            info = reader.run_info()
            starts[name] = next(e.wall for e in reader.events() if e.kind == "resources")
        assert info.status == "finished"
    assert starts["second"] <= starts["third"]
    with LeaseStore() as store:
        assert store.leases() == [] and store.queue() == []


ONE_GPU = {"TRAINDESK_SIMULATED_GPUS": "1x24GiB"}


def holder_and_waiter(
    runs_dir: Path, holder: str, waiter: str
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """A run holding the one simulated GPU, and a second one queued behind it."""
    held = spawn("run", str(TINY), "--name", holder, "--quiet", "--gpus", "1",
                 "--set", "max_steps=100000", "--set", "step_sleep=0.01", **ONE_GPU)  # fmt: skip
    wait_until(lambda: _status(runs_dir / holder) == "running", 120, f"{holder} running")
    queued = spawn("run", str(TINY), "--name", waiter, "--quiet", "--gpus", "1", **ONE_GPU)
    wait_until(lambda: _status(runs_dir / waiter) == "queued", 120, f"{waiter} queued")
    return held, queued


def test_a_queued_run_cancelled_from_the_queue_stops(runs_dir: Path) -> None:
    env = ONE_GPU
    holder, waiter = holder_and_waiter(runs_dir, "holder", "waiter")
    entry = json.loads(cli("queue", "--json", **env).stdout)[0]
    done = cli("queue", "cancel", str(entry["id"]), **env)
    assert done.returncode == 0 and "waiter leaves the queue" in done.stdout
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    with JournalReader(runs_dir / "waiter") as reader:
        info = reader.run_info()
    assert info.status == "stopped" and "queue" in (info.exit_reason or "")
    bad = cli("queue", "cancel", "999", **env)
    assert bad.returncode == 2 and "no queue entry 999" in bad.stderr
    cli("stop", "holder", **env)
    holder.communicate(timeout=120)


def test_impossible_requests_are_refused_before_anything_is_written(runs_dir: Path) -> None:
    env = {"TRAINDESK_SIMULATED_GPUS": "2x24GiB"}
    for args, message in [
        (["--gpus", "3"], "asks for 3 GPUs but this machine has 2"),
        (["--gpus", "device=5"], "there is no GPU 5"),
        (["--gpus", "1", "--gpu-mem", "40GiB"], "more than any GPU here has"),
    ]:
        done = cli("run", "spirals", *args, **env)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    done = cli("run", "spirals", "--gpus", "1")
    assert done.returncode == 2 and "this machine has none" in done.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


# ---------------------------------------------------------------------------- limits
def test_a_leaking_run_is_stopped_at_its_rss_limit_with_a_checkpoint(runs_dir: Path) -> None:
    done = cli("run", str(TINY), "--name", "leaky", "--quiet", "--max-rss", "600MiB",
               "--set", "leak_mb=25", "--set", "step_sleep=0.02", "--set", "max_steps=100000",
               "--set", "checkpoint_every=100000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with JournalReader(runs_dir / "leaky") as reader:
        info = reader.run_info()
        kinds = [e.kind for e in reader.events()]
    assert info.status == "stopped"
    assert "memory limit: RSS" in (info.exit_reason or "") and "--max-rss" in info.exit_reason
    assert "limit_exceeded" in kinds
    saved = sorted(p.name for p in (runs_dir / "leaky" / "checkpoints").glob("*.pt"))
    assert saved == [f"ckpt-{info.step:09d}.pt"]


def test_the_disk_floor_pauses_a_run_until_there_is_room(runs_dir: Path) -> None:
    folder = runs_dir / "floor"
    proc = spawn("run", str(TINY), "--name", "floor", "--quiet", "--disk-floor", "1000TiB",
                 "--set", "max_steps=60", "--set", "step_sleep=0.01")  # fmt: skip
    wait_until(lambda: _status(folder) == "paused", 120, "paused by the disk floor")
    with JournalReader(folder) as reader:
        info = reader.run_info()
    assert "disk space low" in (info.exit_reason or "") and "--disk-floor" in info.exit_reason
    done = cli("limits", "floor", "--disk-floor", "1MiB")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: Resources.load(folder).limits.disk_floor == 2**20, 60,
               "the new floor saved for a resume")  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with JournalReader(folder) as reader:
        info = reader.run_info()
        kinds = [e.kind for e in reader.events()]
    assert (info.status, info.step) == ("finished", 60)
    assert kinds.index("paused") < kinds.index("limits") < kinds.index("resumed")


def test_limits_round_trip_and_bad_limits_are_refused() -> None:
    resources = Resources(GpuRequest(count=2), share=True, priority=3,
                          limits=Limits(max_rss=GiB, cpu_threads=2))  # fmt: skip
    assert Resources.from_json(json.loads(json.dumps(resources.to_json()))) == resources
    with pytest.raises(UsageError, match="--cpu-threads 0 is too small"):
        Limits(cpu_threads=0)
    done = cli("run", "spirals", "--max-rss", "much")
    assert done.returncode == 2 and "--max-rss 'much' is not a size" in done.stderr


# ---------------------------------------------------------------------------- per-run files
def test_each_run_has_its_own_tmpdir_removed_at_the_end(runs_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "tmp_probe.py"
    script.write_text(
        "import tempfile, os, trainer\n"
        "with trainer.init(config={'max_steps': 1}) as run:\n"
        "    print('TMP', tempfile.gettempdir(), os.environ['TMPDIR'], flush=True)\n"
        "    run.log({'x': 1.0}, step=1)\n"
    )
    stale = base_dir() / "deadbeef-999999999"
    stale.mkdir(parents=True, exist_ok=True)
    done = cli("run", str(script), "--name", "tmp1", "--quiet")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("TMP"))
    _, used, env_tmp = line.split()
    assert used == env_tmp and Path(used).parent == base_dir()
    assert Path(used).name.endswith(tuple("0123456789")) and not Path(used).exists()
    assert not stale.exists()  # a dead process's TMPDIR was cleaned at start-up
    assert clean_stale() == []


def test_a_queued_trainer_killed_shows_crashed_and_its_entry_goes(runs_dir: Path) -> None:
    env = ONE_GPU
    holder, waiter = holder_and_waiter(runs_dir, "h", "w")
    os.killpg(waiter.pid, signal.SIGKILL)
    waiter.communicate(timeout=30)
    assert _status(runs_dir / "w") == "crashed"
    assert json.loads(cli("queue", "--json", **env).stdout) == []
    cli("stop", "h", **env)
    holder.communicate(timeout=120)
    assert not psutil.pid_exists(holder.pid) or psutil.Process(holder.pid).status() == "zombie"


def _status(folder: Path) -> str | None:
    from trainer.runs import summarize

    if not (folder / "journal.sqlite").exists():
        return None
    return summarize(folder, with_latest=False).status


def test_tempdir_base_is_outside_any_run() -> None:
    assert str(base_dir()).startswith(tempfile.gettempdir())


def test_console_logs_rotate_by_size(runs_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(
        "import trainer\n"
        "with trainer.init(config={'max_steps': 1}) as run:\n"
        "    for i in range(400):\n"
        "        print(f'line {i:04d} ' + 'x' * 90)\n"
        "    run.log({'x': 1.0}, step=1)\n"
    )
    done = cli("run", str(script), "--name", "chatty", "--quiet",
               TRAINDESK_LOG_MAX_BYTES="10000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    logs = runs_dir / "chatty" / "logs"
    names = sorted(p.name for p in logs.glob("stdout.log*"))
    assert names == ["stdout.log", "stdout.log.1", "stdout.log.2", "stdout.log.3"]
    assert all(p.stat().st_size <= 10000 for p in logs.glob("stdout.log*"))
    newest = (logs / "stdout.log").read_text()
    assert "line 0399" in newest or "finished" in newest
    older = (logs / "stdout.log.1").read_text()
    assert "line 03" in older and "line 0000" not in older  # the oldest were dropped
