"""One colour per run (desktop_app/compare/colours.py): stable, distinct, readable. No Qt."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.compare.colours import PALETTE, RunColours, assign, fallback_colour


@dataclass(frozen=True)
class Run:
    path: str
    created: float | None


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def test_palette_has_20_distinct_colours_readable_on_light_and_dark() -> None:
    assert len(PALETTE) >= 20 and len(set(PALETTE)) == len(PALETTE)
    for colour in PALETTE:
        assert _contrast(colour, "#ffffff") >= 2.0, colour
        assert _contrast(colour, "#1e1e1e") >= 2.5, colour


def _lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    fx, fy, fz = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_a_sweep_of_a_dozen_runs_gets_twelve_colours_far_apart() -> None:
    """No two of the first 12 colours could be taken for each other (CIE76 delta E)."""
    first = [_lab(c) for c in PALETTE[:12]]
    for i, a in enumerate(first):
        for j, b in enumerate(first[i + 1 :], i + 1):
            distance = sum((p - q) ** 2 for p, q in zip(a, b, strict=True)) ** 0.5
            assert distance >= 25, (PALETTE[i], PALETTE[j], round(distance, 1))


def test_colours_follow_creation_order_and_a_new_run_changes_no_other() -> None:
    runs = [Run(f"/r/{n}", 100.0 + n) for n in range(12)]
    first = assign(reversed(runs))  # the listing's order does not matter
    assert [first[r.path] for r in runs] == list(PALETTE[:12])
    colours = RunColours()
    assert colours.update(runs)
    assert not colours.update(list(reversed(runs)))
    colours.update([*runs, Run("/r/new", 500.0)])
    assert all(colours.colour(r.path) == first[r.path] for r in runs)
    assert colours.colour("/r/new") == PALETTE[12]
    # An undated (unreadable) run comes last; an unknown one gets a stable hash colour.
    assert assign([Run("/r/x", None), Run("/r/y", 1.0)]) == {"/r/y": PALETTE[0], "/r/x": PALETTE[1]}
    assert colours.colour("/elsewhere") == fallback_colour("/elsewhere") in PALETTE


def test_the_palette_cycles_past_its_end() -> None:
    runs = [Run(f"/r/{n:03d}", float(n)) for n in range(len(PALETTE) + 3)]
    colours = assign(runs)
    assert colours[runs[len(PALETTE)].path] == PALETTE[0]
