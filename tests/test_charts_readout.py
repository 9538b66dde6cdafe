"""The crosshair readout's rows (desktop_app/charts/readout.py): highest first, and when there
are more than fit, those nearest the mouse's value with counts of the rest. No Qt."""

from __future__ import annotations

import math

from desktop_app.charts.readout import Value, fit_rows, ordered


def _values(*numbers: float) -> list[Value]:
    return [Value(n, "#000000", f"run{i}") for i, n in enumerate(numbers)]


def test_values_are_listed_highest_first_nan_last() -> None:
    rows = ordered(_values(0.2, math.nan, 0.9, 0.5))
    assert [r.html for r in rows] == ["run2", "run3", "run0", "run1"]


def test_all_fit_or_a_window_nearest_the_mouse() -> None:
    values = _values(*[n / 10 for n in range(12)])  # 0.0 .. 1.1
    assert len(fit_rows(values, None).shown) == 12
    assert len(fit_rows(values, 12).shown) == 12
    rows = fit_rows(values, 7, near=0.52)
    assert len(rows.shown) + (rows.above > 0) + (rows.below > 0) <= 7
    assert rows.above + len(rows.shown) + rows.below == 12
    assert "run5" in [r.html for r in rows.shown]  # 0.5 is nearest the mouse
    top = fit_rows(values, 7, near=5.0)  # above every curve: the highest values
    assert top.above == 0 and top.shown[0].html == "run11"
    bottom = fit_rows(values, 7, near=None)
    assert bottom.above == 0 and bottom.below == 12 - len(bottom.shown)
