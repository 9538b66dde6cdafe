"""The run journal: schema, the one writer, readers and derived status. Qt-free, torch-free."""

from trainer.journal.reader import EventRow, JournalReader, RunInfo, SampleRow, Series, TailBatch
from trainer.journal.status import derive_status
from trainer.journal.writer import JournalWriter

__all__ = [
    "EventRow",
    "JournalReader",
    "JournalWriter",
    "RunInfo",
    "SampleRow",
    "Series",
    "TailBatch",
    "derive_status",
]
