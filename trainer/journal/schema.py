"""The journal's tables, through peewee, with a schema version and migrations.

Points are stored compactly so that a journal is no larger than TensorBoard's event files:
``scalar`` is a WITHOUT ROWID table clustered on (key_id, attempt, step), so a key's series and
its tail are range scans, and wall time is kept as milliseconds since the run was created.
The ``scalars`` view gives plain sqlite3 clients names and absolute wall times.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee as pw

from trainer.journal import summaries

SCHEMA_VERSION = 2
#: meta "summaries": "complete" once every point is in the summary table; until then (a
#: journal migrated from v1 whose build has not finished) readers read the points.
SUMMARIES_COMPLETE = "complete"
SUMMARIES_BUILDING = "building"


class _Base(pw.Model):
    class Meta:
        legacy_table_names = False


class Meta(_Base):
    """Key/value facts about the journal: schema_version, run_id, created_by."""

    key = pw.TextField(primary_key=True)
    value = pw.TextField()


class Run(_Base):
    """The run's one row, kept current by the trainer."""

    id = pw.TextField(primary_key=True)
    name = pw.TextField()
    entry = pw.TextField()  # recipe name or script path
    kind = pw.TextField()  # "recipe" | "script" | "api"
    created = pw.FloatField()  # unix seconds
    config = pw.TextField()  # JSON of the resolved config
    status = pw.TextField()
    exit_reason = pw.TextField(null=True)
    pid = pw.IntegerField(null=True)
    pid_started = pw.FloatField(null=True)  # process create time, to tell a reused pid
    host = pw.TextField()
    attempt = pw.IntegerField(default=1)
    step = pw.IntegerField(default=0)  # newest step reached
    max_steps = pw.IntegerField(null=True)
    updated = pw.FloatField()


class Attempt(_Base):
    """One row per attempt; a resumed attempt supersedes older points from ``start_step`` on."""

    attempt = pw.IntegerField(primary_key=True)
    start_step = pw.IntegerField()
    started = pw.FloatField()
    pid = pw.IntegerField(null=True)
    host = pw.TextField()


class MetricKey(_Base):
    id = pw.AutoField()
    name = pw.TextField(unique=True)


class Scalar(_Base):
    key_id = pw.IntegerField()
    attempt = pw.IntegerField()
    step = pw.IntegerField()
    value = pw.FloatField()
    # ms since Run.created; NULL: the step's wall time in step_wall (stored once per step)
    wall_ms = pw.IntegerField(null=True)

    class Meta:
        primary_key = pw.CompositeKey("key_id", "attempt", "step")
        without_rowid = True


class StepWall(_Base):
    """When each step was first logged (ms since Run.created), shared by its points."""

    attempt = pw.IntegerField()
    step = pw.IntegerField()
    wall_ms = pw.IntegerField()

    class Meta:
        primary_key = pw.CompositeKey("attempt", "step")
        without_rowid = True


class Event(_Base):
    """started, checkpoint, paused, resumed, restarted, error (with traceback), finished, ..."""

    id = pw.AutoField()
    wall = pw.FloatField()
    attempt = pw.IntegerField()
    step = pw.IntegerField(null=True)
    kind = pw.TextField()
    message = pw.TextField(default="")
    data = pw.TextField(null=True)  # JSON


class Heartbeat(_Base):
    """The newest heartbeat of each attempt (upserted about once a second)."""

    attempt = pw.IntegerField(primary_key=True)
    wall = pw.FloatField()
    step = pw.IntegerField()
    pid = pw.IntegerField()


class SystemSample(_Base):
    id = pw.AutoField()
    wall = pw.FloatField()
    attempt = pw.IntegerField()
    cpu_percent = pw.FloatField(null=True)
    rss = pw.IntegerField(null=True)  # bytes
    gpus = pw.TextField(null=True)  # JSON list: index, mem_used, mem_total, util, torch_*


TABLES: list[type[_Base]] = [
    Meta, Run, Attempt, MetricKey, Scalar, StepWall, Event, Heartbeat, SystemSample,
]  # fmt: skip

SCALARS_VIEW = """
CREATE VIEW IF NOT EXISTS scalars AS
SELECT k.name AS key, s.step AS step, s.value AS value,
       r.created + COALESCE(s.wall_ms, w.wall_ms) / 1000.0 AS wall_time, s.attempt AS attempt
FROM scalar AS s JOIN metric_key AS k ON k.id = s.key_id
LEFT JOIN step_wall AS w ON w.attempt = s.attempt AND w.step = s.step, run AS r
"""


def _v1_to_v2(db: pw.Database) -> None:
    """v2 adds the multi-resolution summaries; the writer builds them (in chunks, after the
    migration commits) before it writes anything else."""
    db.execute_sql(summaries.CREATE_TABLE)
    Meta.replace(key="summaries", value=SUMMARIES_BUILDING).execute()


# MIGRATIONS[n] upgrades a journal from schema version n to n + 1. Only a journal's one writer
# migrates; readers refuse a newer version and read older ones as they are.
MIGRATIONS: dict[int, Callable[[pw.Database], None]] = {1: _v1_to_v2}


def create_schema(db: pw.Database) -> None:
    """Create every table and the view in a new journal."""
    with db.bind_ctx(TABLES), db.atomic():
        db.create_tables(TABLES)
        db.execute_sql(SCALARS_VIEW)
        db.execute_sql(summaries.CREATE_TABLE)
        Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).on_conflict_replace().execute()
        Meta.replace(key="summaries", value=SUMMARIES_COMPLETE).execute()


def migrate(db: pw.Database, from_version: int) -> None:
    """Bring a journal of an older schema up to SCHEMA_VERSION, one step at a time."""
    with db.bind_ctx(TABLES):
        for version in range(from_version, SCHEMA_VERSION):
            with db.atomic():
                MIGRATIONS[version](db)
                Meta.replace(key="schema_version", value=str(version + 1)).execute()
