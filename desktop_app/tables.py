"""The small read-only tables of the docks (health, ranks, queue): one look, made once."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget


def read_only_table(
    columns: Sequence[str],
    tips: Sequence[str] = (),
    *,
    stretch: int = -1,
    rows_selectable: bool = False,
) -> QTableWidget:
    """A compact table that cannot be edited: ``tips`` are the headers' tooltips,
    ``stretch`` the column that takes the spare width (-1: the last)."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    for column, tip in enumerate(tips):
        item = table.horizontalHeaderItem(column)
        if item is not None and tip:
            item.setToolTip(tip)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    if rows_selectable:
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    else:
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(22)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(
        stretch if stretch >= 0 else len(columns) - 1, QHeaderView.ResizeMode.Stretch
    )
    return table
