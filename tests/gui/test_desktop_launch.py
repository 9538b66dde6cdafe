"""``make run``'s launcher: the app with a display, the headless recipe without one."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest

import desktop_app.main
from desktop_app import launch


def test_without_display_runs_the_recipe_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(launch.sys, "platform", "linux")
    calls: list[list[str]] = []

    def fake_call(cmd: list[str]) -> int:
        calls.append(cmd)
        return 7

    monkeypatch.setattr(launch.subprocess, "call", fake_call)
    assert launch.main() == 7
    assert calls == [[sys.executable, "-m", "trainer", "run", "spirals", "--max-steps", "300"]]
    out = capsys.readouterr().out
    assert out == launch.NO_DISPLAY_MESSAGE + "\n"
    assert out.startswith("No display found (DISPLAY is not set)")


@pytest.mark.parametrize(
    ("platform", "env"),
    [("linux", {"DISPLAY": ":0"}), ("linux", {"WAYLAND_DISPLAY": "wayland-0"}), ("darwin", {})],
)
def test_with_display_starts_the_app(
    monkeypatch: pytest.MonkeyPatch, platform: str, env: dict[str, str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch.sys, "platform", platform)
    started: list[Sequence[str] | None] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        started.append(argv)
        return 0

    monkeypatch.setattr(desktop_app.main, "main", fake_main)
    assert launch.main() == 0
    assert started == [[]]
