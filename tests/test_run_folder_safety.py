"""A run folder is safe to open and resume: one writer, a jail, no code from elsewhere,
no secrets in bundles, disk-full as exit 4, private permissions, inert text (issue 14)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import TINY, cli, trainer_env
from trainer.journal.reader import JournalReader

PY = sys.executable


def _tiny(name: str, *sets: str) -> None:
    done = cli("run", str(TINY), "--name", name, "--quiet", *(f"--set={s}" for s in sets))
    assert done.returncode == 0, done.stderr


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
        for p in [root, *root.rglob("*")]
        if not p.is_symlink()
    }


# ------------------------------------------------------------------------------ one writer
HOLDER = """
import sys, time
from pathlib import Path
from trainer.runlock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]))
lock.set_attempt(7)
print("held", flush=True)
time.sleep(600)
"""


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    from trainer.runlock import RunBusyError, RunLock

    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([PY, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                              text=True, env=trainer_env())  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError) as busy:
            RunLock.acquire(folder)
        text = str(busy.value)
        assert f"pid {holder.pid}" in text and "attempt 7" in text and "trainer stop" in text
        assert busy.value.exit_code == 5
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    lock = RunLock.acquire(folder, wait=10)  # a killed holder's lock is taken over
    try:
        assert lock.held and stat.S_IMODE((folder / "run.lock").stat().st_mode) == 0o600
    finally:
        lock.release()


# Each round is two resumes racing for the run; 4 rounds see them overlap (the assertion on
# `busy` says so), the 20-round soak of the same race runs with `-m slow`.
@pytest.mark.parametrize("rounds", [4, pytest.param(20, marks=pytest.mark.slow)])
def test_two_resumes_started_together_never_both_run(runs_dir: Path, rounds: int) -> None:
    _tiny("pair", "max_steps=5", "step_sleep=0.1", "checkpoint_every=5")
    busy = 0
    for k in range(1, rounds + 1):
        budget = f"--max-steps={5 + 10 * k}"
        procs = [subprocess.Popen([PY, "-m", "trainer", "resume", "pair", budget, "--quiet"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=trainer_env()) for _ in range(2)]  # fmt: skip
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        codes = sorted(r[0] for r in results)
        assert codes[0] == 0 and codes[1] in (2, 5), results
        # 5: it found the other holding the run; 2: it started after the other had finished
        # (the budget was spent), and refused before touching anything.
        for code, _out, err in results:
            if code == 5:
                busy += 1
                assert "pair is in use by" in err and "pid " in err, err
    assert busy > 0, "the two resumes never overlapped: the test proved nothing"
    with JournalReader(runs_dir / "pair") as reader:
        info = reader.run_info()
        events = reader.events()
    assert info.attempt == rounds + 1 and info.status == "finished"
    # Attempts never overlap: each one's end comes before the next one's start.
    ends = {e.attempt: e.wall for e in events if e.kind == "finished"}
    starts = {e.attempt: e.wall for e in events if e.kind in ("started", "restarted")}
    assert sorted(starts) == list(range(1, rounds + 2)) == sorted(ends)
    for attempt in range(2, rounds + 2):
        assert ends[attempt - 1] <= starts[attempt]
    conn = sqlite3.connect(runs_dir / "pair" / "journal.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_supervised_resume_of_a_run_in_use_writes_nothing(finished_tiny: Path) -> None:
    folder = finished_tiny
    with JournalReader(folder) as reader:
        before = (reader.run_info().status, len(reader.events()))
    holder = subprocess.Popen([PY, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                              text=True, env=trainer_env())  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = cli("resume", "tiny", "--max-steps=6", "--max-restarts=3", "--backoff=0.1")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert done.returncode == 5, done.stderr
    assert "in use by attempt 7" in done.stderr and "restarting" not in done.stderr
    with JournalReader(folder) as reader:
        assert (reader.run_info().status, len(reader.events())) == before


def test_supervisor_notes_wait_for_no_holder(tmp_path: Path) -> None:
    """A supervisor writes its notes under the lock: never while an attempt holds it."""
    from trainer.journal.writer import JournalWriter, annotate

    folder = tmp_path / "noted"
    folder.mkdir()
    journal = folder / "journal.sqlite"
    writer = JournalWriter.create(journal, run_id="r", name="noted", entry="e", kind="api",
                                  config={})  # fmt: skip
    writer.set_status("running")
    writer.close()
    holder = subprocess.Popen([PY, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                              text=True, env=trainer_env())  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not annotate(journal, [("crashed", "gone", None)], status="crashed")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert annotate(journal, [("crashed", "gone", None)], status="crashed")
    with JournalReader(folder) as reader:
        assert reader.run_info().status == "crashed"
        assert [e.kind for e in reader.events()].count("crashed") == 1


# ------------------------------------------------------------------------------ the jail
def test_resume_and_stop_refuse_symlinks_out_of_the_folder(
    finished_tiny: Path, tmp_path: Path
) -> None:
    folder = finished_tiny
    decoys = tmp_path / "decoys"
    (decoys / "ctl").mkdir(parents=True)
    (decoys / "ctl" / "keep.json").write_text('{"command": "stop"}')
    (decoys / "out.log").write_text("precious\n")
    for path in (decoys, decoys / "ctl", decoys / "ctl" / "keep.json", decoys / "out.log"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    before = _modes(decoys)

    shutil.rmtree(folder / "control")
    (folder / "control").symlink_to(decoys / "ctl")
    done = cli("resume", "tiny", "--max-steps=8", "--quiet")
    assert done.returncode == 2 and "refusing control" in done.stderr, done.stderr
    assert "symlink" in done.stderr and str(decoys / "ctl") in done.stderr
    from trainer import control
    from trainer.jail import OutsideRunFolderError
    from trainer.paths import RunPaths

    with pytest.raises(OutsideRunFolderError, match="refusing control"):
        control.send(RunPaths(folder), "stop")  # what `trainer stop` and the app's Stop do
    assert control.receive(RunPaths(folder)) == []

    (folder / "control").unlink()
    (folder / "control").mkdir(mode=0o700)
    (folder / "logs" / "stdout.log").unlink()
    (folder / "logs" / "stdout.log").symlink_to(decoys / "out.log")
    done = cli("resume", "tiny", "--max-steps=8", "--quiet")
    assert done.returncode == 2 and "refusing logs/stdout.log" in done.stderr, done.stderr

    assert (decoys / "ctl" / "keep.json").read_text() == '{"command": "stop"}'
    assert (decoys / "out.log").read_text() == "precious\n"
    assert _modes(decoys) == before and sorted(os.listdir(decoys / "ctl")) == ["keep.json"]
    with JournalReader(folder) as reader:
        assert reader.run_info().attempt == 1  # nothing was started


def test_export_refuses_a_journal_linked_in_from_elsewhere(
    finished_tiny: Path, tmp_path: Path
) -> None:
    journal = finished_tiny / "journal.sqlite"
    outside = tmp_path / "someone-elses.sqlite"
    journal.rename(outside)
    journal.symlink_to(outside)
    out = tmp_path / "out.csv"
    done = cli("export", "tiny", "--format", "csv", "-o", str(out))
    assert done.returncode == 2 and "refusing journal.sqlite" in done.stderr, done.stderr
    assert not out.exists()


def test_checkpoint_files_linked_out_of_the_folder_are_ignored(tmp_path: Path) -> None:
    import torch

    from trainer import checkpoint

    folder = tmp_path / "run" / "checkpoints"
    checkpoint.save(folder, 10, {"w": torch.zeros(2)}, keep=3)
    outside = tmp_path / "outside.pt"
    checkpoint.save(tmp_path / "elsewhere", 99, {"w": torch.ones(2)}, keep=1).rename(outside)
    (folder / "ckpt-000000099.pt").symlink_to(outside)
    payload = checkpoint.load_latest(folder)
    assert payload is not None and payload["step"] == 10
    checkpoint.save(folder, 11, {"w": torch.zeros(2)}, keep=1)
    assert outside.is_file()  # pruning never reaches through a link


# ------------------------------------------------------------------------------ secrets
def test_the_doctor_bundle_keeps_secrets_home(finished_tiny: Path, tmp_path: Path) -> None:
    folder = finished_tiny
    netrc = "machine api.wandb.ai\n  login someone\n  password s3cr3t-netrc-pw\n"
    (folder / ".netrc").write_text(netrc)  # planted: not a file the bundle takes
    with (folder / "logs" / "stdout.log").open("a") as fh:
        fh.write(f"copied my netrc by mistake:\n{netrc}done\n")
    config = folder / "config.toml"
    config.write_text(config.read_text() + 'wandb_key = "wk-0123456789-secret"\n')
    decoy = tmp_path / "id_rsa_decoy"
    decoy.write_text("DECOY-OUTSIDE-CONTENT\n")
    (folder / "logs" / "stderr.log").unlink()
    (folder / "logs" / "stderr.log").symlink_to(decoy)
    out = tmp_path / "bundle.zip"
    done = cli("doctor", "--bundle", str(out), TRAINDESK_WANDB_KEY="env-wandb-key-value")
    assert done.returncode in (0, 1), done.stderr
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        text = "\n".join(zf.read(n).decode() for n in names)
        readme = zf.read("README.txt").decode()
    for secret in ("s3cr3t-netrc-pw", "someone", "wk-0123456789-secret", "env-wandb-key-value",
                   "DECOY-OUTSIDE-CONTENT"):  # fmt: skip
        assert secret not in text, secret
    assert not any(n.endswith(".netrc") or n.endswith("stderr.log") for n in names), names
    assert "runs/tiny/logs/stderr.log: not included (a symlink" in readme
    assert "wandb_key" in readme and "netrc password" in readme
    assert "TRAINDESK_WANDB_KEY" in readme


# ------------------------------------------------------------------------------ trust
MARKER_CMD = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran'); sys.exit(3)"


def test_a_copied_command_run_asks_for_trust(runs_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    done = cli("run", "--name", "cmd", "--quiet", "--", PY, "-c", MARKER_CMD, str(marker))
    assert done.returncode == 1 and marker.read_text() == "ran", done.stderr
    marker.unlink()
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copytree(runs_dir / "cmd", other / "cmd")  # as if from another machine
    shutil.rmtree(runs_dir / "cmd")
    done = cli("resume", "cmd", "--quiet", "--runs-dir", str(other))
    assert done.returncode == 2 and "--trust" in done.stderr, done.stderr
    assert "runs the command `" in done.stderr and "pathlib.Path(sys.argv[1])" in done.stderr
    assert not marker.exists()
    done = cli("resume", "cmd", "--quiet", "--trust", "--runs-dir", str(other))
    assert marker.read_text() == "ran", done.stderr
    assert "trusted with --trust" in done.stdout
    marker.unlink()
    done = cli("resume", "cmd", "--quiet", "--runs-dir", str(other))  # asked once only
    assert marker.read_text() == "ran", done.stderr


def test_a_command_run_made_here_resumes_without_asking(runs_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cli("run", "--name", "home", "--quiet", "--", PY, "-c", MARKER_CMD, str(marker))
    marker.unlink()
    done = cli("resume", "home", "--quiet")
    assert marker.read_text() == "ran" and "--trust" not in done.stderr, done.stderr


# ------------------------------------------------------------------------------ disk full
def _fsize_limit(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_during_a_checkpoint_exits_4(runs_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "big.py"
    script.write_text(
        "import torch, trainer\n"
        "with trainer.init(config={'max_steps': 3}) as run:\n"
        "    run.log({'x': 1.0}, step=1)\n"
        "    run.checkpoint({'w': torch.zeros(2_000_000)}, step=1)\n"
    )
    # The write call fails as on a full disk (EFBIG past RLIMIT_FSIZE; SIGXFSZ is ignored).
    done = subprocess.run(
        [PY, "-m", "trainer", "run", str(script), "--name", "big", "--quiet"],
        capture_output=True, text=True, timeout=300, env=trainer_env(),
        preexec_fn=lambda: _fsize_limit(2_000_000),
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "the checkpoint at step 1 could not be written" in done.stderr
    assert "the disk is full; free some disk space" in done.stderr
    assert not list((runs_dir / "big" / "checkpoints").glob(".*.tmp"))


def test_a_full_disk_under_the_console_log_exits_4(runs_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(
        "import errno, sys, trainer\n"
        "class Full:\n"
        "    closed = False\n"
        "    def write(self, text):\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    def flush(self): pass\n"
        "    def close(self): pass\n"
        "with trainer.init(config={'max_steps': 3}) as run:\n"
        "    run.log({'x': 1.0}, step=1)\n"
        "    sys.stdout._file = Full()  # the log file's write call fails as on a full disk\n"
        "    print('hello')\n"
    )
    done = cli("run", str(script), "--name", "noisy", "--quiet")
    assert done.returncode == 4, done.stderr
    assert "could not be written (No space left on device): the disk is full" in done.stderr


# ------------------------------------------------------------------------------ checkpoints
def test_partial_files_go_and_damaged_files_never_push_good_ones_out(tmp_path: Path) -> None:
    import torch

    from trainer import checkpoint

    folder = tmp_path / "run" / "checkpoints"
    for step in (10, 20):
        checkpoint.save(folder, step, {"w": torch.full((2,), float(step))}, keep=2)
    (folder / "ckpt-000009999.pt").write_bytes(b"not a checkpoint")  # damaged, high step
    (folder / ".ckpt-000000030.pt.4242.tmp").write_bytes(b"\0" * 1000)  # a killed save
    assert checkpoint.remove_partial(folder) == [".ckpt-000000030.pt.4242.tmp"]
    checkpoint.save(folder, 30, {"w": torch.full((2,), 30.0)}, keep=2)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ckpt-000000020.pt", "ckpt-000000030.pt", "ckpt-000009999.pt"]
    payload = checkpoint.load_latest(folder)
    assert payload is not None and payload["step"] == 30


def test_resume_removes_partial_checkpoints_left_by_a_killed_attempt(finished_tiny: Path) -> None:
    leftover = finished_tiny / "checkpoints" / ".ckpt-000000006.pt.999999.tmp"
    leftover.write_bytes(b"\0" * 4096)
    done = cli("resume", "tiny", "--max-steps=6", "--quiet")
    assert done.returncode == 0, done.stderr
    assert not leftover.exists()
    with JournalReader(finished_tiny) as reader:
        assert any(e.kind == "cleaned" for e in reader.events())


# ------------------------------------------------------------------------------ private
def test_everything_is_private_under_umask_000(tmp_path: Path) -> None:
    runs = tmp_path / "fresh"
    leases = tmp_path / "state" / "leases.sqlite"
    done = subprocess.run(
        [PY, "-m", "trainer", "run", str(TINY), "--name", "open", "--quiet",
         "--set=max_steps=3", "--set=checkpoint_every=2", "--runs-dir", str(runs)],
        capture_output=True, text=True, timeout=300,
        env=trainer_env(TRAINDESK_LEASES=str(leases)), preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from trainer.resources.store import LeaseStore

    old = os.umask(0)
    try:
        LeaseStore(leases).close()
    finally:
        os.umask(old)
    for root in (runs, leases.parent):
        for name, mode in _modes(root).items():
            path = root / name
            want = 0o700 if path.is_dir() else 0o600
            assert mode == want, f"{path}: {mode:04o}"


def test_an_open_runs_directory_is_tightened_with_a_message(tmp_path: Path) -> None:
    runs = tmp_path / "shared-runs"
    runs.mkdir()
    os.chmod(runs, 0o777)
    done = cli("run", str(TINY), "--name", "t", "--quiet", "--set=max_steps=2",
               "--runs-dir", str(runs))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(runs.stat().st_mode) == 0o700
    assert f"runs directory {runs} was open to other users (0777)" in done.stderr


# ------------------------------------------------------------------------------ inert text
def test_ls_and_show_print_journal_text_inert(finished_tiny: Path) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J"
    conn = sqlite3.connect(finished_tiny / "journal.sqlite")
    try:
        conn.execute("UPDATE run SET entry = ?, exit_reason = ?", (f"x{evil}.py", evil))
        conn.execute("INSERT INTO metric_key (name) VALUES (?)", (f"k{evil}",))
        conn.execute("INSERT INTO event (wall, attempt, step, kind, message) "
                     "VALUES (1, 1, 1, 'note', ?)", (f"hi{evil}",))  # fmt: skip
        conn.commit()
    finally:
        conn.close()
    for args in (("ls",), ("show", "tiny")):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b]0;pwned\\x07" in cli("show", "tiny").stdout
