"""``trainer doctor``: its checks on real and simulated machines, and the diagnostics bundle."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.fsutil import read_only
from tests.helpers import cli, trainer_env
from trainer.diagnostics import Probes, Report, build_bundle, run_checks, safe_environment, scrub
from trainer.diagnostics.bundle import TAIL_BYTES, settings_file
from trainer.diagnostics.checks import check_pyside6, check_python
from trainer.diagnostics.probes import Mount, TorchInfo, WalResult, mount_of, probe_wal
from trainer.errors import UsageError
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths
from trainer.resources.gpus import GpuReading, SimulatedBackend

CPU_TORCH = TorchInfo(installed=True, version="2.13.0+cpu", cuda_available=False)

# Credentials planted in runs, logs, settings and the environment; none may reach a bundle.
SECRETS = {
    "wandb": "0123456789abcdef0123456789abcdef01234567",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "hf": "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "password": "hunter2-correct-horse",
    "api": "sk-live-opensesame-0042",
    "bearer": "eyZZbearer.tokenvalue.42",
    "pem": "MIIEowIBAAKCAQEAplantedprivatekeymaterial",
    "url": "urlpassw0rd",
    "env": "env-secret-value-77",
    "settings": "settings-secret-99",
}


def fast(**changes: object) -> Probes:
    """Real probes but a CPU torch (the child-Python probe takes seconds) and no NVML."""
    base = Probes(torch=lambda: CPU_TORCH, gpu_backend=lambda env: FakeNvml([]))
    return dataclasses.replace(base, **changes)


class FakeNvml:
    """An NVML backend with the given devices (no driver when there are none)."""

    label = "NVML"
    simulated = False

    def __init__(self, devices: list[GpuReading]) -> None:
        self._devices = devices
        self.unavailable_reason = None if devices else "No NVIDIA driver found"

    def init(self) -> None:
        pass

    def devices(self) -> list[GpuReading]:
        return self._devices

    def shutdown(self) -> None:
        pass


def line(report: Report, name: str) -> str:
    return next(x for x in report.table().splitlines() if x[6:].startswith(f"{name} "))


@pytest.fixture(autouse=True)
def lease_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "leases.sqlite"
    monkeypatch.setenv("TRAINDESK_LEASES", str(path))
    return path


# ---------------------------------------------------------------------------- the checks
def test_the_real_cli_reports_a_missing_display_and_prints_json(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "TRAINDESK_SIMULATED_GPUS"):
        monkeypatch.delenv(name, raising=False)
    done = cli("doctor", "--runs-dir", str(runs_dir))
    lines = done.stdout.splitlines()
    failed = [x for x in lines if x.startswith("FAIL")]
    assert done.returncode == (1 if failed else 0), done.stdout + done.stderr
    names = [x[6:].split()[0] for x in lines if x[:4] in ("PASS", "WARN", "FAIL")]
    assert names == ["python", "torch", "nvml", "pyside6", "display", "sqlite", "runs-dir",
                     "wal", "disk", "leases"]  # fmt: skip
    display = next(x for x in lines if x[6:].startswith("display"))
    assert display.startswith("WARN") and "fix: " in display and "QT_QPA_PLATFORM" in display
    assert f"PASS  python    {sys.version_info[0]}.{sys.version_info[1]}" in done.stdout
    torch_line = next(x for x in lines if x[6:].startswith("torch"))  # the real child probe
    assert torch_line[:4] in ("PASS", "WARN") and version("torch") in torch_line, torch_line
    assert not runs_dir.exists()  # the doctor makes nothing in a runs dir that is not there

    done = cli("doctor", "--json", "--runs-dir", str(runs_dir), QT_QPA_PLATFORM="offscreen")
    doc = json.loads(done.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["display"]["status"] == "pass" and "headless" in checks["display"]["detail"]
    assert doc["counts"]["fail"] == (1 if done.returncode else 0)


def test_trainer_diagnostics_imports_neither_torch_nor_qt() -> None:
    code = (
        "import sys, trainer.diagnostics, trainer.cli.main\n"
        "trainer.cli.main.build_parser()\n"
        "bad = [m for m in ('torch', 'PySide6', 'shiboken6') if m in sys.modules]\n"
        "print('BAD' if bad else 'CLEAN', bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=trainer_env(), timeout=60)  # fmt: skip
    assert done.stdout.startswith("CLEAN"), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("environ", "status", "words"),
    [
        ({}, "warn", "DISPLAY, WAYLAND_DISPLAY unset"),
        ({"QT_QPA_PLATFORM": "offscreen"}, "pass", "headless (QT_QPA_PLATFORM=offscreen)"),
        ({"DISPLAY": ":0"}, "pass", "X11 :0"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "pass", "Wayland wayland-0"),
    ],
)
def test_the_display_check(
    runs_dir: Path, environ: Mapping[str, str], status: str, words: str
) -> None:
    report = run_checks(runs_dir, fast(environ=environ, platform="linux"))
    display = line(report, "display")
    assert display.startswith(status.upper()) and words in display


def test_python_versions() -> None:
    assert check_python((3, 11, 7)).status == "pass"
    assert check_python((3, 13, 2)).status == "pass"
    for old_or_new in ((3, 10, 14), (3, 14, 0)):
        check = check_python(old_or_new)
        assert check.status == "fail" and "3.11 to 3.13" in check.detail and check.fix


def test_pyside6_6_12_0_fails_on_python_3_11_only(runs_dir: Path) -> None:
    report = run_checks(runs_dir, fast(pyside6=lambda: "6.12.0", python=(3, 11, 9)))
    assert report.exit_code == 1
    assert line(report, "pyside6").startswith("FAIL  pyside6   6.12.0 crashes Python 3.11")
    assert "fix: pip install 'PySide6-Essentials>=6.9,<6.12'" in line(report, "pyside6")
    assert check_pyside6("6.12.0", (3, 12, 1)).status == "warn"  # untested, not the bug
    assert check_pyside6("6.11.3", (3, 11, 9)).status == "pass"
    assert check_pyside6("6.8.0", (3, 11, 9)).status == "fail"
    assert check_pyside6("6.13.0rc1", (3, 11, 9)).status == "warn"
    missing = check_pyside6(None, (3, 11, 9))
    assert missing.status == "warn" and "the trainer works" in missing.detail


def test_torch_and_nvml_together(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = GpuReading(0, name="NVIDIA H100", mem_total=80 * 2**30)
    cpu_torch_on_gpus = run_checks(runs_dir, fast(gpu_backend=lambda env: FakeNvml([gpu])))
    torch_line = line(cpu_torch_on_gpus, "torch")
    assert torch_line.startswith("WARN") and "CPU-only build but NVML sees 1 GPUs" in torch_line
    assert "CUDA build of torch" in torch_line
    assert line(cpu_torch_on_gpus, "nvml").startswith("PASS  nvml      1 GPUs: NVIDIA H100")

    cuda = TorchInfo(True, "2.13.0+cu126", cuda_available=True, cuda_version="12.6", devices=1)
    good = run_checks(runs_dir, fast(torch=lambda: cuda, gpu_backend=lambda env: FakeNvml([gpu])))
    assert line(good, "torch").startswith("PASS  torch     2.13.0+cu126, CUDA 12.6, 1 GPUs")

    assert line(run_checks(runs_dir, fast()), "torch").endswith("2.13.0+cpu: CPU only")
    assert line(run_checks(runs_dir, fast()), "nvml").endswith("No NVIDIA driver found: CPU only")
    missing = run_checks(runs_dir, fast(torch=lambda: TorchInfo(installed=False)))
    assert line(missing, "torch").startswith("FAIL") and missing.exit_code == 1

    # TRAINDESK_SIMULATED_GPUS goes through the real backend_from_env.
    simulated = dataclasses.replace(fast(), gpu_backend=Probes().gpu_backend)
    env = {"TRAINDESK_SIMULATED_GPUS": "2x80GiB"}
    report = run_checks(runs_dir, dataclasses.replace(simulated, environ=env))
    assert "simulated: 2 GPUs (TRAINDESK_SIMULATED_GPUS=2x80GiB)" in line(report, "nvml")
    assert line(report, "torch").endswith("CPU only (GPUs simulated)")
    bad = run_checks(runs_dir, dataclasses.replace(simulated, environ={
        "TRAINDESK_SIMULATED_GPUS": "lots"}))  # fmt: skip
    assert line(bad, "nvml").startswith("FAIL") and "2x80GiB" in line(bad, "nvml")
    assert isinstance(Probes().gpu_backend(env), SimulatedBackend)


def test_a_read_only_runs_dir_fails_with_the_fix(runs_dir: Path) -> None:
    runs_dir.mkdir(parents=True)
    with read_only(runs_dir):
        report = run_checks(runs_dir, fast())
    assert report.exit_code == 1
    writable = line(report, "runs-dir")
    assert writable.startswith(f"FAIL  runs-dir  cannot write in {runs_dir}")
    assert "chmod u+w" in writable and "--runs-dir" in writable
    assert line(report, "wal").startswith("WARN  wal       not tried")
    assert list(runs_dir.iterdir()) == []


def test_wal_works_here_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = probe_wal(tmp_path)
    assert result.ok and result.mode == "wal", result
    assert list(tmp_path.iterdir()) == []


def test_a_non_wal_or_network_filesystem_is_reported(runs_dir: Path) -> None:
    runs_dir.mkdir(parents=True)
    no_wal = run_checks(runs_dir, fast(wal=lambda path: WalResult("delete", True)))
    assert line(no_wal, "wal").startswith("FAIL  wal       journal_mode=WAL gave 'delete'")
    assert "fix: keep the runs directory on a local disk" in line(no_wal, "wal")
    assert no_wal.exit_code == 1
    blocked = run_checks(runs_dir, fast(wal=lambda path: WalResult("wal", False, "locked")))
    assert line(blocked, "wal").startswith("FAIL") and "locked" in line(blocked, "wal")

    nfs = Mount("/mnt/share", "nfs4", "fileserver:/export")
    on_nfs = run_checks(runs_dir, fast(mount=lambda path: nfs))  # the real WAL trial passes
    assert line(on_nfs, "wal").startswith(f"WARN  wal       {runs_dir} is on nfs4, a network")
    assert on_nfs.exit_code == 0


def test_mounts_are_read_from_proc_mounts(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "fileserver:/export /mnt/my\\040share nfs4 rw 0 0\n"
        "user@host:/data /mnt/my\\040share/remote fuse.sshfs rw 0 0\n"
    )
    assert mount_of(Path("/mnt/my share/runs"), mounts) == Mount(
        "/mnt/my share", "nfs4", "fileserver:/export"
    )
    remote = mount_of(Path("/mnt/my share/remote/x"), mounts)
    assert remote is not None and remote.fstype == "fuse.sshfs" and remote.network
    local = mount_of(Path("/home/me"), mounts)
    assert local is not None and local.point == "/" and not local.network
    assert Mount("/m", "cifs").network and Mount("/m", "9p").network
    assert not Mount("/m", "fuse.portal").network and not Mount("/m", "tmpfs").network
    assert mount_of(tmp_path, tmp_path / "absent") is None


def test_free_disk_thresholds(runs_dir: Path) -> None:
    for free, status in ((3 * 2**30, "PASS"), (2**30, "WARN"), (100 * 2**20, "FAIL")):
        report = run_checks(runs_dir, fast(disk_free=lambda path, free=free: free))
        assert line(report, "disk").startswith(f"{status}  disk"), report.table()


def test_an_unopenable_lease_store_fails(runs_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-not-a-database"
    folder.mkdir()
    report = run_checks(runs_dir, fast(lease_store=lambda: folder))
    leases = line(report, "leases")
    assert leases.startswith(f"FAIL  leases    {folder} cannot be opened") and "fix: " in leases
    assert line(run_checks(runs_dir, fast()), "leases").endswith("(0 leases, 0 queued)")


# ---------------------------------------------------------------------------- scrubbing
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('api_key = "abc123xyz"', "abc123xyz"),
        ("wandb_api_key: 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef"),
        ('{"hf_token": "not-shaped-like-one", "lr": 0.1}', "not-shaped-like-one"),
        ('{\\"password\\": \\"hunter2\\", \\"x\\": 1}', "hunter2"),
        ("export GITHUB_TOKEN=abc", "=abc"),
        ("python train.py --api-key s3cr3t --lr 0.1", "s3cr3t"),
        ("python train.py --token=zzz999", "zzz999"),
        ("Authorization: Bearer abcdef123456", "abcdef123456"),
        ("curl -H 'X-Thing: Bearer abcdef123456'", "abcdef123456"),
        ("git clone https://user:pa55word@example.com/repo", "pa55word"),
        ("see AKIAABCDEFGHIJKLMNOP there", "AKIAABCDEFGHIJKLMNOP"),
        ("pushed with ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "ghp_A1b2"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghij"),
        ("{'secret': 'x1y2', 'clientSecret': 'x3y4'}", "x1y2"),
        ("{'secret': 'x1y2', 'clientSecret': 'x3y4'}", "x3y4"),
        ("AWS_SECRET_ACCESS_KEY = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        ("db_passwd: letmein", "letmein"),
        ("credentials=[abc]", "abc"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc==\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNza\n(cut off)", "b3BlbnNza"),
        ("b3BlbnNza\nQAAAA\n-----END OPENSSH PRIVATE KEY-----\nnext line", "QAAAA"),
    ],
)
def test_scrub_redacts_credentials(text: str, secret: str) -> None:
    out = scrub(text)
    assert secret not in out and "[redacted]" in out, out
    assert scrub(out) == out  # scrubbing twice changes nothing more


def test_scrub_keeps_what_is_not_a_secret() -> None:
    text = (
        'tokenizer = "gpt2"\nmax_tokens = 512\nperf/tokens_per_s=1234.5\nauthor = "me"\n'
        "train/loss=0.25 lr=0.001 https://example.com/a?b=c step 400: loss 1.5\n"
        '{"name": "demo", "status": "finished"}\n--lr 0.1 --name demo\n'
    )
    assert scrub(text) == text
    assert scrub('api_key = "x"\nlr = 0.1') == 'api_key = "[redacted]"\nlr = 0.1'  # TOML stays


def test_safe_environment_is_an_allow_list() -> None:
    env = {
        "TRAINDESK_HOME": "/data/runs", "TRAINDESK_API_TOKEN": "tok-1", "QT_QPA_PLATFORM": "xcb",
        "CUDA_VISIBLE_DEVICES": "0,1", "PATH": "/usr/bin", "HOME": "/root",
        "WANDB_API_KEY": "w-2", "AWS_SECRET_ACCESS_KEY": "a-3",
        "TRAINDESK_ENV": "prod password=p-4",
    }  # fmt: skip
    assert safe_environment(env) == {
        "CUDA_VISIBLE_DEVICES": "0,1", "QT_QPA_PLATFORM": "xcb",
        "TRAINDESK_API_TOKEN": "[redacted]", "TRAINDESK_ENV": "prod password=[redacted]",
        "TRAINDESK_HOME": "/data/runs",
    }  # fmt: skip


# ---------------------------------------------------------------------------- the bundle
def make_run(runs_dir: Path, name: str, age_s: float, config: dict[str, object]) -> Path:
    """A finished run folder with a journal, config, resources and logs."""
    run = RunPaths(runs_dir / name).create()
    writer = JournalWriter.create(run.journal, run_id=f"id{name}", name=name, entry="train.py",
                                  kind="script", config=config, max_steps=10)  # fmt: skip
    writer.log_scalars({"train/loss": 0.5}, step=10)
    writer.event("error", f"Traceback ...\nrequests: Authorization: Bearer {SECRETS['bearer']}")
    writer.set_status("failed", exit_reason="the script raised", step=10)
    writer.close()
    run.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
    (run.root / "resources.json").write_text('{"gpus": {"count": 0}}')
    run.stdout_log.write_text(f"{name}: step 10 loss 0.5\n")
    run.stderr_log.write_text(f"{name}: a warning\n")
    run.structured_log.write_text(json.dumps({"msg": f"{name} started"}) + "\n")
    for path in [*run.root.rglob("*"), run.root]:
        os.utime(path, (1e9 - age_s, 1e9 - age_s))
    return run.root


def secret_config() -> dict[str, object]:
    return {"lr": 0.1, "wandb_api_key": SECRETS["wandb"], "hub": {"token": "x"},
            "db_password": SECRETS["password"], "note": f"uses {SECRETS['hf']}"}  # fmt: skip


def test_the_bundle_holds_the_report_versions_and_recent_runs_and_no_secret(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRETS["env"])
    monkeypatch.setenv("TRAINDESK_HF_TOKEN", SECRETS["env"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    for age in range(6):  # run-0 is the newest, run-5 the oldest
        make_run(runs_dir, f"run-{age}", age * 1000.0, secret_config())
    newest = RunPaths(runs_dir / "run-0")
    head = "FIRST-LINE-OF-A-LONG-LOG\n"
    body = "".join(f"step {i} loss {1 / (i + 1):.6f}\n" for i in range(30_000))  # > 200 KiB
    tail = (
        f"wandb login {SECRETS['wandb']}\ngit push https://me:{SECRETS['url']}@github.com/x\n"
        f"token: {SECRETS['github']}\nAWS key {SECRETS['aws']}\n--api-key {SECRETS['api']}\n"
        f"-----BEGIN PRIVATE KEY-----\n{SECRETS['pem']}\n-----END PRIVATE KEY-----\n"
        "LAST-LINE\n"
    )
    newest.stdout_log.write_text(head + body + tail)
    settings = settings_file()
    settings.parent.mkdir(parents=True)
    settings.write_text(f'refresh_ms = 500\n# sync_token = "{SECRETS["settings"]}"\n')

    bundle = runs_dir.parent / "diag.zip"
    report = run_checks(runs_dir, fast())
    names = build_bundle(bundle, runs_dir, report=report)

    with zipfile.ZipFile(bundle) as zf:
        files = {n: zf.read(n).decode("utf-8") for n in zf.namelist()}
    assert sorted(files) == names
    for name in ("README.txt", "report.txt", "report.json", "versions.json", "platform.json",
                 "environment.json", "app/settings.toml"):  # fmt: skip
        assert name in files, name
    assert files["report.txt"].startswith("PASS  python")
    assert json.loads(files["report.json"])["runs_dir"] == str(runs_dir)
    versions = json.loads(files["versions.json"])
    assert versions["packages"]["torch"] and versions["sqlite"]
    env = json.loads(files["environment.json"])
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["TRAINDESK_HF_TOKEN"] == "[redacted]"
    assert "WANDB_API_KEY" not in env and "PATH" not in env and "HOME" not in env
    assert "refresh_ms = 500" in files["app/settings.toml"]

    runs = {n.split("/")[1] for n in files if n.startswith("runs/")}
    assert runs == {f"run-{age}" for age in range(5)}  # the five newest
    for run in runs:
        for part in ("config.toml", "resources.json", "summary.json", "logs/stdout.log",
                     "logs/stderr.log", "logs/trainer.jsonl"):  # fmt: skip
            assert f"runs/{run}/{part}" in files, (run, part)
        summary = json.loads(files[f"runs/{run}/summary.json"])
        assert summary["name"] == run and summary["status"] == "failed"
        assert summary["config"]["lr"] == 0.1 and summary["events"][0]["kind"] == "error"
        assert "lr = 0.1" in files[f"runs/{run}/config.toml"]
    log = files["runs/run-0/logs/stdout.log"]
    assert "LAST-LINE" in log and "FIRST-LINE-OF-A-LONG-LOG" not in log
    assert len(log.encode()) < TAIL_BYTES + 200 and "is left out" in log.splitlines()[0]

    everything = "\n".join(files.values())
    leaked = [k for k, v in SECRETS.items() if v in everything]
    assert not leaked, f"secrets in the bundle: {leaked}"
    assert "[redacted]" in files["runs/run-0/config.toml"]
    assert not any(n.endswith((".sqlite", ".pt")) for n in files)
    assert bundle.stat().st_mode & 0o077 == 0


def test_an_existing_bundle_is_refused_without_force(runs_dir: Path) -> None:
    bundle = runs_dir.parent / "diag.zip"
    bundle.write_text("keep me")
    done = cli("doctor", "--bundle", str(bundle), "--runs-dir", str(runs_dir))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {bundle} already exists: choose another FILE or add --force"
    ]
    assert done.stdout == "" and bundle.read_text() == "keep me"
    with pytest.raises(UsageError, match="add --force"):
        build_bundle(bundle, runs_dir, report=run_checks(runs_dir, fast()))
    assert bundle.read_text() == "keep me"
    build_bundle(bundle, runs_dir, report=run_checks(runs_dir, fast()), force=True)
    with zipfile.ZipFile(bundle) as zf:
        assert "report.txt" in zf.namelist()
    assert [p.name for p in bundle.parent.iterdir() if p.name.startswith(".")] == []


def test_the_bundle_finds_the_apps_settings_where_the_app_keeps_them() -> None:
    from desktop_app.settings.model import settings_path

    assert settings_file() == settings_path()
