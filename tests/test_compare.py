"""Comparing runs without Qt: config differences, results, the filter, annotations, and the
elapsed time of a run that was paused."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from desktop_app.compare.columns import Column, CompareColumns, ComparePrefs
from desktop_app.compare.config_diff import differing_keys, flatten, value_text
from desktop_app.compare.filter import FilterError, parse
from desktop_app.compare.results import ResultsCache, RunResults, best_direction, read_results
from desktop_app.compare.scatter import Source, make_axis, parallel, result_axis, scatter
from desktop_app.runs_model import elapsed_seconds, eta_seconds
from desktop_app.settings.table_prefs import load_prefs, save_prefs
from trainer.annotations import (
    MAX_BYTES,
    AnnotationError,
    Annotations,
    parse_tags,
    read_annotations,
    write_annotations,
)
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths
from trainer.runs import RunSummary, pause_time, summarize


def _summary(name: str, config: dict[str, object], **kw: object) -> RunSummary:
    base = RunSummary(
        id=name, name=name, path=f"/runs/{name}", status="finished", step=10, max_steps=100,
        attempt=1, entry="spirals", created=1000.0, updated=1100.0, exit_reason=None,
        latest={"val/loss": 0.5}, config=config,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_flatten_and_differing_keys() -> None:
    a = flatten({"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 0, "name": "x"})
    assert a == {"optim.lr": 0.1, "optim.betas": "[0.9,0.99]", "seed": 0, "name": "x"}
    b = flatten({"optim": {"lr": 0.01, "betas": [0.9, 0.99]}, "seed": 0.0, "name": "x"})
    c = flatten({"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 0, "extra": True})
    assert differing_keys([a, b]) == ["optim.lr"]  # 0 == 0.0: the same seed
    assert differing_keys([a, b, c]) == ["extra", "name", "optim.lr"]  # missing differs
    assert differing_keys([a]) == []
    assert differing_keys([{"flag": True}, {"flag": 1}]) == ["flag"]  # true is not 1
    assert value_text(1e-4) == "0.0001" and value_text(True) == "true"


def test_best_direction_by_name() -> None:
    assert best_direction("val/loss") == "min"
    assert best_direction("train/top1_err") == "min"
    assert best_direction("val/acc") == "max"
    assert best_direction("eval/accuracy") == "max"
    assert best_direction("val/f1") == "max"
    assert best_direction("time/step_s") == "min"
    assert best_direction("whatever") == "min"


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("lr>1e-3", {"a"}),
        ("lr>=0.001", {"a", "b"}),
        ("lr=0.001", {"b"}),
        ("status:finished", {"a", "c"}),
        ("status:FINISHED name~BE", {"a"}),
        ("tag:baseline", {"b", "c"}),
        ("-tag:baseline", {"a"}),
        ("tags~base", {"b", "c"}),
        ("model.act:gelu", {"c"}),
        ("act!=gelu", {"a", "b"}),
        ("val/loss<0.5", {"b"}),
        ("val/loss.best<=0.3", {"a", "b"}),
        ("bert", {"a"}),
        ('note~"bad seed"', {"c"}),
        ("width>10", set()),  # text against a number: neither above nor below
        ("", {"a", "b", "c"}),
    ],
)
def test_filter_cases(text: str, wanted: set[str]) -> None:
    rows = {
        "a": {"name": "bert-a", "status": "finished", "lr": 0.01, "model.act": "relu",
              "tags": [], "val/loss": 0.5, "val/loss.best": 0.3, "width": "wide"},
        "b": {"name": "gpt-b", "status": "running", "lr": 1e-3, "model.act": "relu",
              "tags": ["baseline"], "val/loss": 0.2, "val/loss.best": 0.2},
        "c": {"name": "gpt-c", "status": "finished", "lr": 1e-4, "model.act": "gelu",
              "tags": ["baseline", "x"], "note": "a bad seed", "val/loss": 0.9},
    }  # fmt: skip
    found = {name for name, row in rows.items() if parse(text).matches(row)}
    assert found == wanted


@pytest.mark.parametrize(
    "text", ["lr>", "lr>>1", "lr<=>1", 'name~"open', ">1", "status::x", "a=>b"]
)
def test_bad_filter_text_is_one_readable_line(text: str) -> None:
    with pytest.raises(FilterError) as info:
        parse(text)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message


def test_unknown_and_ambiguous_fields_are_named() -> None:
    names = ["name", "optim.lr", "sched.lr", "seed"]
    assert parse("sed>1").unknown(names) == "no column or config key 'sed' (did you mean 'seed'?)"
    assert "several config keys" in parse("lr>1").unknown(names)
    assert parse("optim.lr>1 seed:1").unknown(names) == ""


def test_columns_show_differing_keys_results_and_user_choices() -> None:
    runs = [
        _summary("a", {"optim": {"lr": 0.1}, "seed": 0}),
        _summary("b", {"optim": {"lr": 0.01}, "seed": 0}, latest={"val/acc": 0.9}),
    ]
    model = CompareColumns()
    assert model.set_runs(runs)
    ids = [c.id for c in model.columns]
    assert ids == ["config:optim.lr", "last:val/loss", "best:val/loss", "last:val/acc",
                   "best:val/acc", "tags"]  # fmt: skip
    assert not model.set_runs(runs)  # nothing changed
    model.set_prefs(ComparePrefs(metrics=("val/acc",), shown=("config:seed", "note"),
                                 hidden=("tags",)))  # fmt: skip
    ids = [c.id for c in model.columns]
    assert ids == ["config:optim.lr", "config:seed", "last:val/acc", "best:val/acc", "note"]
    assert model.title(Column("best", "val/acc")) == "val/acc best (max)"
    assert model.text(runs[1], Column("last", "val/acc")) == "0.9"
    assert model.text(runs[0], Column("last", "val/acc")) == ""
    assert model.sort_key(runs[0], Column("last", "val/acc"))[0] == 2  # missing: last
    assert model.stale() == ["/runs/a", "/runs/b"]
    model.mark_read("/runs/a")
    assert model.stale() == ["/runs/b"]


def test_results_come_from_the_summaries_and_annotations_from_the_folder(
    tmp_path: Path,
) -> None:
    paths = RunPaths(tmp_path / "r").create()
    writer = JournalWriter.create(paths.journal, run_id="r", name="r", entry="x", kind="recipe",
                                  config={"lr": 0.1}, max_steps=None)  # fmt: skip
    for step, value in enumerate([3.0, 1.0, 2.0, float("nan")]):
        writer.log_scalars({"val/loss": value}, step)
    writer.close()
    write_annotations(paths.root, Annotations(("base",), "note"))
    found = read_results(paths.root, ("val/loss", "missing"))
    assert found.keys["val/loss"].low == 1.0 and found.keys["val/loss"].high == 3.0
    assert "missing" not in found.keys
    assert found.annotations == Annotations(("base",), "note")
    assert summarize(paths.root).config == {"lr": 0.1}


def test_ended_runs_results_are_kept_across_starts_until_their_files_change(
    tmp_path: Path,
) -> None:
    def make(name: str) -> Path:
        paths = RunPaths(tmp_path / name).create()
        writer = JournalWriter.create(paths.journal, run_id=name, name=name, entry="x",
                                      kind="recipe", config={}, max_steps=None)  # fmt: skip
        for step, value in enumerate([3.0, 1.0, 2.0]):
            writer.log_scalars({"val/loss": value}, step)
        writer.close()
        return paths.root

    a, b = make("a"), make("b")
    ended, live = replace(summarize(a), status="finished"), replace(summarize(b), status="running")
    keys = ("val/loss",)
    file = tmp_path / "cache" / "results.json"
    first = ResultsCache(file)
    assert first.results(a, keys, ended).keys["val/loss"].low == 1.0
    assert first.results(b, keys, live).keys["val/loss"].high == 3.0
    assert first.reads == 2 and first.dirty
    first.save()
    assert file.exists() and not first.dirty
    # The next start: the ended run's results come from the file, the live one is read.
    again = ResultsCache(file)
    assert again.results(a, keys, ended) == first.results(a, keys, ended)
    assert again.results(b, keys, live).keys["val/loss"].low == 1.0
    assert again.reads == 1 and not again.dirty
    # Read again when the annotations, the journal or the metrics asked for change.
    write_annotations(a, Annotations(("tagged",), ""))
    assert again.results(a, keys, ended).annotations.tags == ("tagged",)
    assert again.reads == 2
    writer = JournalWriter.open_next_attempt(a / "journal.sqlite", resume_step=3)
    writer.log_scalars({"val/loss": 0.5, "x": 1.0}, 3)
    writer.close()
    ended = replace(summarize(a), status="finished")
    assert again.results(a, keys, ended).keys["val/loss"].low == 0.5
    assert again.results(a, keys, ended).keys["val/loss"].low == 0.5
    assert again.results(a, ("val/loss", "x"), ended).keys["x"].low == 1.0
    assert again.reads == 4
    # A metric the run never logged opens no journal: only its annotations are looked at.
    assert again.results(b, ("train/acc",), live) == RunResults({}, Annotations())
    write_annotations(b, Annotations((), "hello"))
    assert again.results(b, ("train/acc",), live).annotations.note == "hello"
    assert again.reads == 4
    # A save keeps the ended runs looked up since the last one (not the live one).
    again.save()
    third = ResultsCache(file)
    assert third.results(a, ("val/loss", "x"), ended).annotations.tags == ("tagged",)
    assert third.reads == 0
    assert set(json.loads(file.read_text())["runs"]) == {str(a)}
    file.write_text("{not json")  # a bad file is no cache
    assert ResultsCache(file).results(a, keys, ended).keys["val/loss"].low == 0.5


def test_annotations_are_private_atomic_and_read_safely(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    assert read_annotations(folder) == Annotations()
    path = write_annotations(folder, Annotations(("a", "b"), "hello"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_annotations(folder) == Annotations(("a", "b"), "hello")
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert parse_tags("a, b  a,c") == ("a", "b", "c")
    with pytest.raises(AnnotationError):
        parse_tags("x" * 65)
    # Untrusted folders: too big, not JSON, odd types, a symlink out of the folder.
    path.write_text("x" * (MAX_BYTES + 1))
    assert read_annotations(folder) == Annotations()
    path.write_text("{not json")
    assert read_annotations(folder) == Annotations()
    path.write_text(json.dumps({"tags": ["ok", 3, "has space", "ok"], "note": ["x"]}))
    assert read_annotations(folder) == Annotations(("ok",), "")
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"tags": ["leak"]}))
    path.unlink()
    os.symlink(outside, path)
    assert read_annotations(folder) == Annotations()
    write_annotations(folder, Annotations())  # empty: the file (here the link) goes
    assert not os.path.lexists(path) and outside.exists()


def test_table_prefs_round_trip_and_a_bad_file_gives_the_defaults(tmp_path: Path) -> None:
    prefs = ComparePrefs(metrics=("val/acc",), directions={"val/acc": "min"},
                         shown=("config:seed",), hidden=("tags",))  # fmt: skip
    path = save_prefs(prefs, tmp_path / "cfg" / "table.json")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_prefs(path) == prefs
    path.write_text("[1, 2")
    assert load_prefs(path) == ComparePrefs()
    path.write_text(json.dumps({"metrics": [1, "x"], "directions": {"x": "up"}}))
    assert load_prefs(path) == ComparePrefs(metrics=("x",))


def test_paused_time_is_not_elapsed_time() -> None:
    events = [("started", 0.0), ("paused", 10.0), ("checkpoint", 12.0), ("resumed", 30.0),
              ("paused", 50.0), ("paused", 55.0)]  # fmt: skip
    assert pause_time(events) == (20.0, 50.0)
    assert pause_time([*events, ("stopped", 60.0)]) == (30.0, None)
    run = _summary("p", {}, status="paused", created=1000.0, step=50, max_steps=100,
                   paused_s=20.0, paused_since=1050.0)  # fmt: skip
    assert elapsed_seconds(run, now=1060.0) == 30.0
    assert elapsed_seconds(run, now=5000.0) == 30.0  # still paused: the clock stands
    assert eta_seconds(run, now=5000.0) is None
    ended = replace(run, status="stopped", paused_since=None, updated=1100.0, paused_s=40.0)
    assert elapsed_seconds(ended) == 60.0


def test_a_journaled_pause_stops_the_elapsed_clock(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "p").create()
    writer = JournalWriter.create(paths.journal, run_id="p", name="p", entry="x", kind="recipe",
                                  config={}, max_steps=10)  # fmt: skip
    writer.set_status("running")
    writer.event("paused", step=0)
    writer.set_status("paused", step=0)
    writer.flush()
    try:
        run = summarize(paths.root)
        assert run.status == "paused" and run.paused_since is not None
        now = run.paused_since + 1000.0
        assert elapsed_seconds(run, now=now) == elapsed_seconds(run, now=now + 500.0)
    finally:
        writer.close()


def test_axes_are_linear_log_or_categorical() -> None:
    assert make_axis("lr", [1e-2, 1e-3, 1e-4]).kind == "log"
    assert make_axis("lr", [1e-2, 5e-3, 1e-3]).kind == "linear"  # one decade
    assert make_axis("x", [-1.0, 100.0]).kind == "linear"
    opt = make_axis("opt", ["sgd", "adam", None, "adam"])
    assert opt.kind == "categorical" and opt.categories == ("adam", "sgd")
    assert opt.position("sgd") == 1.0 and opt.position(None) is None
    flags = make_axis("flag", [True, False])
    assert flags.kind == "categorical" and flags.categories == ("false", "true")
    mixed = make_axis("bs", [32, "auto", 8])
    assert mixed.categories == ("8", "32", "auto")  # numbers in order, then words
    log = make_axis("lr", [1e-4, 1e-2])
    assert log.position(1e-3) == pytest.approx(-3) and log.fraction(1e-3) == pytest.approx(0.5)
    assert log.label(-3) == "0.001"


def test_a_result_axis_is_log_from_one_decade_so_the_best_runs_stand_apart() -> None:
    """A sweep's best val/loss from 0.0057 to 0.23 (a real 12-run spirals sweep): on a linear
    axis the eight good runs lie within 2 % of its height; on the log axis they spread."""
    losses = [0.005679, 0.006098, 0.006261, 0.007752, 0.007971, 0.008641, 0.009718, 0.009836,
              0.1124, 0.1505, 0.2069, 0.2257]  # fmt: skip
    assert make_axis("val/loss", losses).kind == "linear"  # a config key's rule: two decades
    axis = result_axis("val/loss", losses)
    assert axis.kind == "log"
    linear = make_axis("val/loss", losses)
    spread = [
        max(f) - min(f)
        for f in ([a.fraction(v) or 0.0 for v in losses[:8]] for a in (linear, axis))
    ]
    assert spread[0] < 0.02 and spread[1] > 0.1, spread
    assert result_axis("val/acc", [0.5, 0.9]).kind == "linear"
    assert result_axis("x", []).kind in ("linear", "log")


def test_scatter_and_parallel_points_per_run() -> None:
    table = (("a", 1e-2, "sgd", 0.5), ("b", 1e-4, "adam", 0.25), ("c", 1e-3, "sgd", None),
             ("d", None, "adam", 0.1))  # fmt: skip
    runs = [_summary(n, {"lr": lr, "opt": opt}, latest={"val/loss": loss} if loss else {})
            for n, lr, opt, loss in table]  # fmt: skip
    source = Source(
        config=lambda run, key: run.config.get(key),
        result=lambda run: run.latest.get("val/loss"),
        colour=lambda run: "#" + run.name * 6,
    )
    points, x_axis, _y_axis = scatter(runs, "lr", "val/loss", source)
    assert [(p.name, p.x, p.y, p.colour) for p in points] == [
        ("a", pytest.approx(-2), 0.5, "#aaaaaa"), ("b", pytest.approx(-4), 0.25, "#bbbbbb")
    ]  # fmt: skip
    assert x_axis.kind == "log"
    lines, axes = parallel(runs, ["lr", "opt"], "val/loss", source)
    assert [a.name for a in axes] == ["lr", "opt", "val/loss"]
    assert len(lines) == 4
    assert lines[3].ys[0] is None and lines[3].ys[1] == 0.0  # d has no lr; adam is first


def test_the_compare_models_import_no_qt() -> None:
    import subprocess
    import sys

    modules = ["colours", "columns", "config_diff", "filter", "results", "scatter"]
    code = (
        "import sys\n"
        + "".join(f"import desktop_app.compare.{m}\n" for m in modules)
        + "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'torch'))]\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_config_key_by_its_last_part_wins_over_a_metric_of_that_name() -> None:
    runs = [_summary("a", {"optim": {"lr": 0.01}}, latest={"lr": 1e-6}),
            _summary("b", {"optim": {"lr": 1e-4}}, latest={"lr": 1e-6})]  # fmt: skip
    model = CompareColumns()
    model.set_runs(runs)
    assert [r.name for r in runs if parse("lr>1e-3").matches(model.fields(r))] == ["a"]
    assert all(parse("lr.last<1e-5").matches(model.fields(r)) for r in runs)
    assert parse("lr>1").unknown(model.field_names()) == ""


def test_a_thousand_runs_cost_milliseconds_not_seconds() -> None:
    import time

    runs = [
        _summary(f"r{n:04d}", {"optim": {"lr": 10 ** -(n % 5)}, "seed": n % 3, "model": {"d": 64}},
                 latest={"val/loss": 1.0 / (n + 1), "train/loss": 1.0})
        for n in range(1000)
    ]  # fmt: skip
    model = CompareColumns()
    start = time.perf_counter()
    model.set_runs(runs)
    assert [c.id for c in model.columns][:2] == ["config:optim.lr", "config:seed"]
    live = [*runs[:-1], replace(runs[-1], step=11)]  # one live row moved on
    model.set_runs(live)
    assert len(model.stale()) == 1000
    matched = [r for r in live if parse("lr>1e-3 seed:1").matches(model.fields(r))]
    elapsed = time.perf_counter() - start
    assert len(matched) == sum(1 for n in range(1000) if n % 5 < 3 and n % 3 == 1)
    assert elapsed < 2.0, f"{elapsed:.2f} s for 1,000 runs"


def test_annotations_just_written_outlast_a_read_that_started_before() -> None:
    """A results read in flight when tags are saved brings the old tags back: they are kept
    as written until a read sees the file as written."""
    model = CompareColumns()
    new = Annotations(("baseline",), "best so far")
    model.set_annotations("/runs/b", new)
    model.set_results("/runs/b", RunResults({}, Annotations()))  # read before the write
    assert model.annotations("/runs/b") == new
    model.set_results("/runs/b", RunResults({}, new))  # a read that saw the file
    edited = Annotations(("other",), "")
    model.set_results("/runs/b", RunResults({}, edited))  # edited outside the app since
    assert model.annotations("/runs/b") == edited


def test_rows_changed_in_place_give_what_a_new_listing_gives() -> None:
    """update_runs (a live run's new step, status or value: its own rows only) leaves the
    columns, metric keys and stale runs exactly as set_runs of the whole listing would."""
    import random

    rng = random.Random(7)
    keys = ["val/loss", "train/loss", "val/acc", "lr"]
    runs = [
        _summary(f"r{n}", {"lr": 10 ** -(n % 3), "seed": n % 2},
                 latest={k: 0.5 for k in rng.sample(keys, rng.randint(0, 3))})
        for n in range(12)
    ]  # fmt: skip
    fast, full = CompareColumns(), CompareColumns()
    fast.set_runs(runs)
    for step in range(200):
        picked = rng.sample(range(len(runs)), rng.randint(1, 3))
        for n in picked:
            change = rng.random()
            if change < 0.4:
                runs[n] = replace(runs[n], step=runs[n].step + 1)
            elif change < 0.7:
                latest = {k: rng.random() for k in rng.sample(keys, rng.randint(0, 4))}
                runs[n] = replace(runs[n], latest=latest)
            elif change < 0.8:
                runs[n] = replace(runs[n], config={"lr": rng.choice([1, 0.1]), "seed": 5})
            else:
                runs[n] = replace(runs[n], status=rng.choice(["running", "finished", "unreadable"]))
        fast_changed = fast.update_runs([runs[n] for n in picked])
        full_changed = full.set_runs(runs)
        assert fast.columns == full.columns, step
        assert fast_changed == full_changed or step == 0
        assert fast.metric_keys == full.metric_keys and fast.differing == full.differing
        assert fast.stale() == full.stale(), step
        for path in rng.sample(fast.stale(), min(2, len(fast.stale()))):
            fast.mark_read(path)
            full.mark_read(path)
    with pytest.raises(ValueError, match="listed runs only"):
        fast.update_runs([_summary("new", {})])
