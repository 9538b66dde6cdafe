"""Transient failures are tried again with backoff, logged with context, then given up on.

The SQLite tests hold real locks on real journal files from another connection (on its own
thread) and let go when the retry under test logs its first retry: no sleeps, no races.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from trainer import control
from trainer.errors import JournalError
from trainer.journal import db as jdb
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths
from trainer.resources.gpus import NVML_ATTEMPTS, NvmlBackend
from trainer.retry import sqlite_busy, transient

FAST = {"first_wait": 0.001, "max_wait": 0.01}
WAIT_S = 10.0


def retries(caplog: pytest.LogCaptureFixture, logger: str = "trainer.retry") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


# ---------------------------------------------------------------------- the helper
def test_a_lasting_failure_is_raised_after_every_attempt_each_retry_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def always_fails() -> None:
        calls.append(1)
        raise ConnectionResetError(f"reset #{len(calls)}")

    retrying = transient("talking to the thing", attempts=4, **FAST)
    with caplog.at_level(logging.WARNING), pytest.raises(ConnectionResetError, match=r"reset #4$"):
        retrying(always_fails)
    assert len(calls) == 4
    logged = retries(caplog)
    assert len(logged) == 3  # a retry each, none for the last failure: that one is raised
    assert logged[0].startswith(
        "talking to the thing: attempt 1 of 4 failed (ConnectionResetError: reset #1); "
        "trying again in"
    )
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "trainer.retry")


def test_waits_double_up_to_the_longest() -> None:
    waits: list[float] = []
    retrying = transient("x", attempts=5, first_wait=0.01, max_wait=0.03)
    retrying.sleep = waits.append  # record the waits instead of sleeping them

    def fails() -> None:
        raise OSError("busy")

    with pytest.raises(OSError):
        retrying(fails)
    assert waits == pytest.approx([0.01, 0.02, 0.03, 0.03])


def test_a_transient_failure_then_success_returns_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Any] = [BlockingIOError("held"), 42]

    def flaky() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return int(outcome)

    with caplog.at_level(logging.WARNING):
        assert transient("reading a file", **FAST)(flaky) == 42
    assert len(retries(caplog)) == 1


@pytest.mark.parametrize(
    ("error", "when"),
    [
        (ValueError("not transient"), None),  # not in retry_on
        (OSError("no space"), lambda exc: "busy" in str(exc)),  # rejected by when
    ],
)
def test_other_errors_are_raised_at_once(
    error: BaseException, when: Callable[[BaseException], bool] | None
) -> None:
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        transient("x", retry_on=OSError, when=when, **FAST)(fails)
    assert calls == [1]


def test_sqlite_busy_tells_locks_from_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            other.execute("SELECT * FROM t")
        with pytest.raises(sqlite3.OperationalError) as missing:
            holder.execute("SELECT * FROM nope")
    finally:
        other.close()
        holder.close()
    assert sqlite_busy(locked.value)
    assert not sqlite_busy(missing.value)
    assert sqlite_busy(Exception("database is locked"))  # peewee's copy, message only


# ---------------------------------------------------------------------- SQLite journals
class LockHolder:
    """Another connection, on its own thread, holding a lock on ``path`` until released."""

    def __init__(self, path: Path, *statements: str) -> None:
        self._path = path
        self._statements = statements
        self.held = threading.Event()
        self.release = threading.Event()
        self.released = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._hold, name="test-lock-holder")

    def __enter__(self) -> LockHolder:
        self._thread.start()
        assert self.held.wait(WAIT_S), f"the holder could not lock: {self.error}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive()

    def _hold(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
        try:
            for statement in self._statements:
                conn.execute(statement)
            self.held.set()
            self.release.wait(WAIT_S)
        except BaseException as exc:
            self.error = exc
        finally:
            conn.close()  # lets go of every lock, exclusive locking mode's included
            self.released.set()


class ReleaseOnRetry(logging.Handler):
    """Lets the holder go when the first retry is logged, and waits until it has."""

    def __init__(self, holder: LockHolder) -> None:
        super().__init__(logging.WARNING)
        self.holder = holder

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "trainer.retry":
            self.holder.release.set()
            assert self.holder.released.wait(WAIT_S)


@pytest.fixture
def release_on_retry() -> Iterator[Callable[[LockHolder], None]]:
    logger = logging.getLogger("trainer.retry")
    handlers: list[logging.Handler] = []

    def attach(holder: LockHolder) -> None:
        handlers.append(ReleaseOnRetry(holder))
        logger.addHandler(handlers[-1])

    yield attach
    for handler in handlers:
        logger.removeHandler(handler)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A closed journal with one point; readers and the writer wait 20 ms for a lock."""
    monkeypatch.setattr(jdb, "READER_BUSY_TIMEOUT_MS", 20)
    monkeypatch.setitem(jdb.WRITER_PRAGMAS, "busy_timeout", 20)
    paths = RunPaths(tmp_path / "run").create()
    writer = JournalWriter.create(
        paths.journal, run_id="id-run", name="run", entry="spirals", kind="recipe", config={}
    )
    writer.log_scalars({"train/loss": 1.0}, 0)
    writer.close()
    return paths.journal


def test_a_reader_waits_out_an_exclusive_lock(
    journal: Path,
    caplog: pytest.LogCaptureFixture,
    release_on_retry: Callable[[LockHolder], None],
) -> None:
    # In WAL mode nothing blocks a reader that is already open; a journal that another tool
    # turned back to a rollback journal can be, by any writer.
    with sqlite3.connect(journal) as conn:
        conn.execute("PRAGMA journal_mode = delete")
    conn.close()
    with JournalReader(journal) as reader, caplog.at_level(logging.WARNING):
        with LockHolder(journal, "BEGIN EXCLUSIVE") as holder:
            release_on_retry(holder)
            info = reader.run_info()
        assert info.name == "run"
        assert reader.latest() == {"train/loss": (0, 1.0)}
    (first, *_) = retries(caplog)
    assert first.startswith(f"reading the journal {journal}: attempt 1 of 5 failed")
    assert "database is locked" in first


def test_opening_a_journal_waits_out_an_exclusive_lock(
    journal: Path,
    caplog: pytest.LogCaptureFixture,
    release_on_retry: Callable[[LockHolder], None],
) -> None:
    # A connection in exclusive locking mode keeps every other one from opening the journal.
    holding = ("PRAGMA locking_mode = EXCLUSIVE", "BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING), LockHolder(journal, *holding) as holder:
        release_on_retry(holder)
        with JournalReader(journal) as reader:
            assert reader.run_info().name == "run"
    assert retries(caplog)[0].startswith(f"opening the journal {journal}: attempt 1 of 5")


def test_a_lock_that_outlasts_every_retry_is_a_clear_error(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holding = ("PRAGMA locking_mode = EXCLUSIVE", "BEGIN EXCLUSIVE")
    with (
        caplog.at_level(logging.WARNING),
        LockHolder(journal, *holding),
        pytest.raises(JournalError, match="stayed locked by another program"),
    ):
        JournalReader(journal)
    assert len(retries(caplog)) == 4  # five attempts


def test_the_writer_waits_out_another_programs_write_lock(
    journal: Path,
    caplog: pytest.LogCaptureFixture,
    release_on_retry: Callable[[LockHolder], None],
) -> None:
    writer = JournalWriter.open_next_attempt(journal, resume_step=0)
    try:
        with caplog.at_level(logging.WARNING), LockHolder(journal, "BEGIN IMMEDIATE") as holder:
            release_on_retry(holder)
            writer.log_scalars({"train/loss": 0.5}, 1)
            writer.flush(timeout=WAIT_S)
        assert writer.error is None
    finally:
        writer.close()
    assert retries(caplog)[0].startswith(f"locking the journal {journal} to write: attempt 1")
    with JournalReader(journal) as reader:
        assert reader.latest() == {"train/loss": (1, 0.5)}


# ---------------------------------------------------------------------- control files
def test_a_message_file_held_open_for_a_moment_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = RunPaths(tmp_path / "run").create()
    failures = [PermissionError(13, "Access is denied (held by another process)")]
    write = control.write_private_text

    def held_once(path: Path, text: str) -> None:
        if failures:
            raise failures.pop()
        write(path, text)

    monkeypatch.setattr(control, "write_private_text", held_once)
    with caplog.at_level(logging.WARNING):
        control.send(run, "extend", steps=10)
    assert [(m.command, m.args) for m in control.receive(run)] == [("extend", {"steps": 10})]
    (logged,) = retries(caplog)
    assert logged.startswith("sending 'extend' to run: attempt 1 of 3 failed (PermissionError")


def test_a_message_file_that_stays_held_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunPaths(tmp_path / "run").create()
    calls: list[Path] = []

    def held(path: Path, text: str) -> None:
        calls.append(path)
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(control, "write_private_text", held)
    with pytest.raises(BlockingIOError):
        control.send(run, "stop")
    assert len(calls) == 3
    assert control.receive(run) == []


# ---------------------------------------------------------------------- NVML
def fake_nvml(**functions: Callable[..., Any]) -> SimpleNamespace:
    """One fake GPU whose figures all read fine, except as ``functions`` say."""
    nvml = SimpleNamespace(
        NVMLError=pynvml.NVMLError,
        NVML_ERROR_TIMEOUT=pynvml.NVML_ERROR_TIMEOUT,
        NVML_ERROR_UNKNOWN=pynvml.NVML_ERROR_UNKNOWN,
        NVML_ERROR_NOT_READY=pynvml.NVML_ERROR_NOT_READY,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"handle-{i}",
        nvmlDeviceGetName=lambda h: "NVIDIA Test",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=1, total=2),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=50, memory=10),
        nvmlDeviceGetTemperature=lambda h, sensor: 61,
        nvmlDeviceGetPowerUsage=lambda h: 100_000,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [],
    )
    for name, function in functions.items():
        setattr(nvml, name, function)
    return nvml


class Scripted:
    """An NVML function that raises the error codes in ``codes``, one per call, then works."""

    def __init__(self, *codes: int, value: Any = 61) -> None:
        self.codes = list(codes)
        self.value = value
        self.calls = 0

    def __call__(self, *_args: Any) -> Any:
        self.calls += 1
        if self.codes:
            raise pynvml.NVMLError(self.codes.pop(0))
        return self.value


GPU_LOG = "trainer.resources.gpus"


def test_an_nvml_timeout_is_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    temperature = Scripted(pynvml.NVML_ERROR_TIMEOUT)
    backend = NvmlBackend(nvml=fake_nvml(nvmlDeviceGetTemperature=temperature))
    backend.init()
    with caplog.at_level(logging.WARNING, logger=GPU_LOG):
        (reading,) = backend.devices()
    assert reading.temperature == 61.0
    assert temperature.calls == 2
    (logged,) = retries(caplog, GPU_LOG)
    assert logged.startswith("NVML nvmlDeviceGetTemperature: attempt 1 of 3 failed")
    assert "Timeout" in logged
    backend.shutdown()


def test_a_lasting_nvml_timeout_gives_na_then_costs_one_try_per_reading() -> None:
    codes = [pynvml.NVML_ERROR_TIMEOUT] * (NVML_ATTEMPTS + 1)
    power = Scripted(*codes, value=90_000)
    backend = NvmlBackend(nvml=fake_nvml(nvmlDeviceGetPowerUsage=power))
    backend.init()
    (first,) = backend.devices()
    assert first.power_w is None and first.temperature == 61.0  # "n/a", the rest unharmed
    assert power.calls == NVML_ATTEMPTS
    (second,) = backend.devices()
    assert second.power_w is None and power.calls == NVML_ATTEMPTS + 1  # one try, no waits
    (third,) = backend.devices()
    assert third.power_w == 90.0  # it works again
    backend.shutdown()


@pytest.mark.parametrize("code", [pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_GPU_IS_LOST])
def test_lasting_nvml_errors_are_not_tried_again(code: int) -> None:
    power = Scripted(code)
    backend = NvmlBackend(nvml=fake_nvml(nvmlDeviceGetPowerUsage=power))
    backend.init()
    (reading,) = backend.devices()
    assert reading.power_w is None and power.calls == 1
    backend.shutdown()


def test_nvml_init_timing_out_once_still_starts() -> None:
    init = Scripted(pynvml.NVML_ERROR_TIMEOUT, value=None)
    backend = NvmlBackend(nvml=fake_nvml(nvmlInit=init))
    backend.init()
    assert backend.unavailable_reason is None and init.calls == 2
    assert len(backend.devices()) == 1
    backend.shutdown()
