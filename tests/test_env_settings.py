"""trainer.settings: typed environment variables, and `trainer doctor` showing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli
from trainer import settings
from trainer.diagnostics.command import settings_table


def test_a_setting_is_typed_with_its_default_when_unset_empty_or_bad() -> None:
    deadline = settings.STOP_DEADLINE
    assert deadline.get({}) == 25.0 and deadline.raw({}) is None
    assert deadline.get({"TRAINDESK_STOP_DEADLINE": ""}) == 25.0
    assert deadline.get({"TRAINDESK_STOP_DEADLINE": "3.5"}) == 3.5
    bad = {"TRAINDESK_STOP_DEADLINE": "soon"}
    assert deadline.get(bad) == 25.0 and deadline.raw(bad) == "soon"
    assert "TRAINDESK_STOP_DEADLINE='soon' is not usable" in (deadline.problem(bad) or "")
    assert settings.LOCAL_RANK.get({"LOCAL_RANK": "3"}) == 3
    assert settings.GROUP_RANK.get({}) is None


def test_every_setting_has_a_name_a_meaning_and_a_known_setter() -> None:
    for name, setting in settings.SETTINGS.items():
        assert name == setting.name and setting.meaning
        assert setting.set_by in (settings.BY_YOU, settings.BY_TRAINDESK, settings.BY_OTHERS)
        assert setting.problem({}) is None  # unset is always fine


def test_doctor_shows_the_current_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINDESK_STOP_DEADLINE", "soon")
    monkeypatch.setenv("TRAINDESK_LOG_BUFFER", "5000")
    monkeypatch.delenv("TRAINDESK_LOG_MAX_BYTES", raising=False)
    monkeypatch.delenv("TRAINDESK_RUN_DIR", raising=False)
    table = settings_table()
    assert "  TRAINDESK_LOG_BUFFER=5000\n" in table
    assert "  TRAINDESK_LOG_MAX_BYTES unset (default 52428800)" in table
    assert "TRAINDESK_STOP_DEADLINE=soon  warning: " in table
    assert "TRAINDESK_RUN_DIR" not in table  # set by TrainDesk for its children; unset here


def test_doctor_json_lists_every_setting(runs_dir: Path) -> None:
    done = cli("doctor", "--json", "--runs-dir", str(runs_dir), TRAINDESK_LOG_BUFFER="5000")
    shown = {s["name"]: s for s in json.loads(done.stdout)["settings"]}
    assert set(shown) == set(settings.SETTINGS)
    assert shown["TRAINDESK_LOG_BUFFER"]["value"] == "5000"
    assert shown["TRAINDESK_HOME"]["value"] == str(runs_dir)  # the test's own (conftest)
