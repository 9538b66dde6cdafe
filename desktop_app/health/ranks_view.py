"""The Health dock's Ranks box: the ranks of each followed run on several processes
(torchrun) and their devices, with each run's elastic restart count. A thin widget over the
:class:`~desktop_app.health.model.RunHealth` rows; hidden while no followed run has ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.health.model import RunHealth
from desktop_app.health.ranks import RankBeat, Ranks
from desktop_app.tables import read_only_table

RANK_COLUMNS = ("Run", "Rank", "Node", "Host", "Device", "PID", "Step", "Beat")
RANK_TIPS = (
    "",
    "The rank in the process group (and its local rank on its node)",
    "The node (torchrun's node rank)",
    "The machine the rank runs on",
    "The device it trains on",
    "The rank's process id on its host",
    "The newest step the rank reached",
    "Seconds since the rank's last heartbeat (it beats every second)",
)


class RanksView(QGroupBox):
    """One row per rank of every followed run that has ranks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Ranks", parent)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = read_only_table(RANK_COLUMNS, RANK_TIPS, stretch=3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        self.hide()

    def show_rows(self, rows: Sequence[RunHealth]) -> None:
        """Show the ranks of those of ``rows`` that have any (hide when none has)."""
        runs = [(row, row.ranks) for row in rows if row.ranks is not None]
        self.setVisible(bool(runs))
        self.summary.setText("\n".join(_summary(row.name, ranks) for row, ranks in runs))
        cells = [
            (row, beat, row.rank_ages[i] if i < len(row.rank_ages) else None)
            for row, ranks in runs
            for i, beat in enumerate(ranks.ranks)
        ]
        self.table.setRowCount(len(cells))
        for r, (row, beat, age) in enumerate(cells):
            texts = (row.name, *_beat_cells(beat), _age_text(age, row.live))
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(_tip(row, beat))
                if c in (1, 2, 5, 6, 7):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)


def _summary(name: str, ranks: Ranks) -> str:
    if ranks.error:
        return f"{name}: {ranks.error}"
    if not ranks.ranks:
        return f"{name}: no rank has beaten yet"
    world = ranks.world
    count = f"{len(ranks.ranks)} of {world} ranks" if world else f"{len(ranks.ranks)} ranks"
    nodes = "1 node" if ranks.nodes == 1 else f"{ranks.nodes} nodes"
    return f"{name}: {count} on {nodes}; elastic restarts: {ranks.restart}"


def _beat_cells(beat: RankBeat) -> tuple[str, ...]:
    rank = str(beat.rank)
    if beat.local_rank is not None and beat.local_rank != beat.rank:
        rank += f" (local {beat.local_rank})"
    return (
        rank,
        "—" if beat.node is None else str(beat.node),
        beat.host or "—",
        beat.device or "—",
        "—" if beat.pid is None else str(beat.pid),
        str(beat.step),
    )


def _age_text(age: float | None, live: bool) -> str:
    if not live:
        return "ended"
    return "—" if age is None else f"{age:.1f} s"


def _tip(row: RunHealth, beat: RankBeat) -> str:
    return (
        f"{row.name}: rank {beat.rank}, elastic restart {beat.restart}, "
        f"pid {beat.pid} on {beat.host or '?'}\n{row.folder}"
    )
