"""The trainer CLI as users run it: real child processes, real run folders.

Every expected failure prints one line (no traceback), exits non-zero, and leaves what was
already on disk as it was.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.fsutil import read_only
from tests.helpers import NOTORCH, TINY, cli
from trainer.journal import JournalReader


def one_line_error(proc: object) -> str:
    stderr = proc.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_help_and_ls_import_no_torch(runs_dir: Path) -> None:
    code = (
        "import sys; from trainer.cli.main import main\n"
        "for argv in (['ls'], ['ls', '--json'], ['recipes']):\n"
        "    main(argv)\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    import subprocess
    import sys

    from tests.helpers import trainer_env

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=trainer_env(), timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TORCH")


def test_run_a_script_then_ls_show_logs_export(runs_dir: Path, tmp_path: Path) -> None:
    proc = cli("run", str(TINY), "--name", "tiny", "--set", "max_steps=30", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "tiny_train done at step 30" in proc.stdout

    listing = json.loads(cli("ls", "--json").stdout)
    assert len(listing) == 1
    entry = listing[0]
    assert {"id", "name", "path", "status", "step", "attempt"} <= set(entry)
    assert (entry["name"], entry["status"], entry["step"], entry["attempt"]) == (
        "tiny", "finished", 30, 1,
    )  # fmt: skip

    for spec in ("tiny", entry["id"], entry["id"][:5], entry["path"]):
        shown = json.loads(cli("show", spec, "--json").stdout)
        assert shown["id"] == entry["id"]
    text = cli("show", "tiny").stdout
    assert "finished" in text and "train/loss" in text

    logs = cli("logs", "tiny")
    assert "tiny_train done at step 30" in logs.stdout

    csv_file = tmp_path / "out.csv"
    assert cli("export", "tiny", "--format", "csv", "-o", str(csv_file)).returncode == 0
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "key,step,value,wall_time,attempt"
    assert len(lines) == 1 + 2 * 30
    again = cli("export", "tiny", "--format", "csv", "-o", str(csv_file))
    assert again.returncode == 2 and "already exists" in one_line_error(again)
    doc = json.loads(cli("export", "tiny", "--format", "json").stdout)
    assert doc["metrics"]["train/loss"]["steps"] == list(range(1, 31))

    run = Path(entry["path"])
    assert (run / "config.toml").is_file() and (run / "logs" / "trainer.jsonl").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "ckpt-000000030.pt"


def test_a_failing_script_is_marked_failed_with_its_traceback(runs_dir: Path) -> None:
    proc = cli("run", str(NOTORCH), "--name", "boom", "--set", "fail_at=5", "--quiet")
    assert proc.returncode == 1
    assert "planned failure at step 5" in proc.stdout + proc.stderr
    with JournalReader(runs_dir / "boom") as reader:
        assert reader.run_info().status == "failed"
        errors = [e for e in reader.events() if e.kind == "error"]
    assert errors and "RuntimeError" in errors[0].data["traceback"]


def test_a_script_that_raises_on_import_fails_cleanly(runs_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "bad_import.py"
    script.write_text("import trainer\nimport no_such_module_here\n")
    proc = cli("run", str(script), "--name", "badimport", "--quiet")
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stdout + proc.stderr
    with JournalReader(runs_dir / "badimport") as reader:
        assert reader.run_info().status == "failed"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "nosuchrecipe"], 2, "unknown recipe 'nosuchrecipe'"),
        (["run", "missing_script.py"], 2, "script missing_script.py does not exist"),
        (["run", str(TINY), "--name", "a/b"], 2, "contains a path separator"),
        (["run", str(TINY), "--name", ".."], 2, "is not a folder name"),
        (["run", str(TINY), "--name", "x:y"], 2, "contains a character that a folder name"),
        (["run", "spirals", "--set", "nope=1"], 2, "unknown config key 'nope'"),
        (["run", "spirals", "--set", "lr=fast"], 2, "config key 'lr': 'fast' is a string"),
        (["run", "spirals", "--set", "lr=-1"], 2, "config key 'lr': -1.0 is out of range"),
        (["run", "spirals", "--max-steps", "0"], 2, "config key 'max_steps': 0 is out of range"),
        (["run", "spirals", "--device", "cuda"], 2, "is not available here (no CUDA device)"),
        (["run", "spirals", "--env", "nope"], 2, "unknown environment overlay 'nope'"),
        (["show", "nobody"], 3, "no run named 'nobody'"),
        (["show", "/definitely/not/here"], 3, "does not exist"),
        (["stop", "nobody"], 3, "no run named 'nobody'"),
        (["resume", "nobody"], 3, "no run named 'nobody'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    runs_dir: Path, args: list[str], code: int, message: str
) -> None:
    proc = cli(*args)
    assert proc.returncode == code, proc.stderr
    assert message in one_line_error(proc)
    assert not runs_dir.exists() or not any(runs_dir.iterdir()), "a bad command made a run"


def test_a_taken_name_is_refused_and_the_first_run_kept(finished_tiny: Path) -> None:
    before = tree_digest(finished_tiny)
    proc = cli("run", str(TINY), "--name", "tiny", "--quiet")
    assert proc.returncode == 2
    assert "already exists" in one_line_error(proc)
    after = tree_digest(finished_tiny)
    assert after.keys() == before.keys()
    assert after["journal.sqlite"] == before["journal.sqlite"]


def test_a_read_only_runs_dir_is_a_clear_error(runs_dir: Path) -> None:
    runs_dir.mkdir(parents=True)
    with read_only(runs_dir):
        proc = cli("run", str(TINY), "--name", "ro", "--quiet")
    assert proc.returncode == 2
    assert "read-only" in one_line_error(proc)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "newer"])
def test_damaged_journals_are_reported_never_rewritten(finished_tiny: Path, damage: str) -> None:
    journal = finished_tiny / "journal.sqlite"
    if damage == "garbage":
        journal.write_bytes(b"\x00garbage" * 500)
    elif damage == "truncated":
        journal.write_bytes(journal.read_bytes()[:1500])
    else:
        conn = sqlite3.connect(journal)
        conn.execute("UPDATE meta SET value = '42' WHERE key = 'schema_version'")
        conn.commit()
        conn.close()
    before = journal.read_bytes()
    show = cli("show", str(finished_tiny))
    assert show.returncode == 3
    message = one_line_error(show)
    assert {"garbage": "not an SQLite", "truncated": "damaged", "newer": "upgrade TrainDesk"}[
        damage
    ] in message
    resume = cli("resume", str(finished_tiny))
    assert resume.returncode == 3
    one_line_error(resume)
    listing = json.loads(cli("ls", "--json").stdout)
    assert listing[0]["status"] == "unreadable" or damage == "truncated"
    assert journal.read_bytes() == before


def test_a_read_only_journal_shows_but_cannot_resume(finished_tiny: Path) -> None:
    journal = finished_tiny / "journal.sqlite"
    with read_only(journal):
        assert cli("show", "tiny").returncode == 0
        proc = cli("resume", "tiny", "--max-steps", "20")
    assert proc.returncode == 3
    assert "read-only" in one_line_error(proc)


def test_disk_filling_up_stops_the_run_with_a_reason_and_a_valid_journal(runs_dir: Path) -> None:
    import resource
    import subprocess
    import sys

    from tests.helpers import needs_torch, trainer_env

    needs_torch("trainer run")

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(TINY), "--name", "full", "--quiet",
         "--set", "max_steps=1000000", "--set", "keys=60", "--set", "checkpoint_every=0"],
        capture_output=True, text=True, timeout=300, env=trainer_env(),
        preexec_fn=limit_file_size,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "free some disk space" in one_line_error(proc)
    conn = sqlite3.connect(runs_dir / "full" / "journal.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with JournalReader(runs_dir / "full") as reader:
        steps = reader.series("train/loss").steps
    assert len(steps) >= 10
    assert steps.tolist() == list(range(1, len(steps) + 1))  # nothing committed is missing


def test_logs_follow_prints_until_the_run_ends(runs_dir: Path) -> None:
    from tests.helpers import spawn, wait_until

    proc = spawn("run", str(TINY), "--name", "follow", "--quiet", "--set", "max_steps=150",
                 "--set", "step_sleep=0.01")  # fmt: skip
    wait_until(lambda: (runs_dir / "follow" / "logs" / "stdout.log").exists(), 120, "the log")
    followed = cli("logs", "follow", "-f", timeout=300)
    proc.communicate(timeout=120)
    assert followed.returncode == 0
    assert "tiny_train done at step 150" in followed.stdout
    assert followed.stdout.count("run follow (") == 1  # printed once, not repeated


def test_console_capture_closes_its_tees_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tee that the capture closed stays closed: collecting it later must not flush its
    closed log file (an error that -X dev shows and a plain run hides)."""
    import gc
    import sys

    from trainer.cli.console import ConsoleCapture

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with ConsoleCapture(tmp_path / "out.log", tmp_path / "err.log"):
        tees = [sys.stdout, sys.stderr]
        print("captured")
    assert all(tee.closed for tee in tees)
    del tees
    gc.collect()
    assert unraisable == []
    assert (tmp_path / "out.log").read_text(encoding="utf-8") == "captured\n"


def test_a_run_made_by_python_script_resumes_from_any_folder(
    runs_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.helpers import trainer_env

    work = tmp_path / "work"
    work.mkdir()
    script = work / "mine.py"
    script.write_text(
        "import trainer\n"
        "with trainer.init(name='mine', config={'max_steps': 3}) as run:\n"
        "    for step in range(run.start_step + 1, run.max_steps + 1):\n"
        "        run.log({'x': float(step)}, step=step)\n"
    )
    done = subprocess.run([sys.executable, "mine.py"], cwd=work, env=trainer_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    resumed = cli("resume", "mine", "--max-steps", "5", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_the_structured_log_level_is_set_by_the_environment(runs_dir: Path) -> None:
    import json as _json

    from tests.helpers import TINY

    for name, env in (("loud", {}), ("quiet", {"TRAINDESK_LOG_LEVEL": "warning"})):
        done = cli("run", str(TINY), "--name", name, "--quiet", "--set", "max_steps=3", **env)
        assert done.returncode == 0, done.stderr
    levels = {
        name: {_json.loads(line)["level"]
               for line in (runs_dir / name / "logs" / "trainer.jsonl").read_text().splitlines()}
        for name in ("loud", "quiet")
    }  # fmt: skip
    assert "info" in levels["loud"] and "info" not in levels["quiet"]
