"""Config layers and validation: every error names the key, the bad value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.config import (
    ConfigSpec,
    Constraint,
    flatten,
    load_spec,
    parse_set,
    read_toml,
    resolve,
    to_toml,
)
from trainer.errors import ConfigError

SPEC = ConfigSpec(
    defaults={"lr": 0.1, "max_steps": 100, "device": "auto", "model.width": 64, "amp": False},
    constraints={
        "lr": Constraint(min=0.0, exclusive_min=True, max=10.0),
        "max_steps": Constraint(min=1),
        "device": Constraint(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$"),
    },
    envs={"quick": {"max_steps": 5}},
)


def test_layers_defaults_file_env_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[config]\nlr = 0.5\n[config.model]\nwidth = 32\n[env.big]\nmax_steps = 900\n")
    assert resolve(SPEC)["lr"] == 0.1
    got = resolve(SPEC, file=file)
    assert got["lr"] == 0.5 and got["model.width"] == 32
    assert resolve(SPEC, file=file, env="big")["max_steps"] == 900
    assert resolve(SPEC, env="quick")["max_steps"] == 5
    monkeypatch.setenv("TRAINDESK_ENV", "quick")
    assert resolve(SPEC)["max_steps"] == 5
    got = resolve(SPEC, file=file, env="big", overrides=["max_steps=7", "lr=1", "amp=true"])
    assert got["max_steps"] == 7 and got["lr"] == 1.0 and isinstance(got["lr"], float)
    assert got["amp"] is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lrr=0.1", "unknown config key 'lrr' in --set: did you mean 'lr'?"),
        ("max_steps=abc", "config key 'max_steps': 'abc' is a string, expected an integer"),
        ("max_steps=1.5", "config key 'max_steps': 1.5 is a number, expected an integer"),
        ("max_steps=0", "config key 'max_steps': 0 is out of range: must be >= 1"),
        ("lr=0", "config key 'lr': 0.0 is out of range: must be > 0.0"),
        ("lr=11", "config key 'lr': 11.0 is out of range: must be <= 10.0"),
        ("lr=nan", "config key 'lr': nan is not a finite number"),
        ("device=gpu", "config key 'device': 'gpu' is not allowed"),
        ("amp=1", "config key 'amp': 1 is an integer, expected true/false"),
        ("novalue", "is not key=value"),
    ],
)
def test_bad_values_name_the_key_the_value_and_the_rule(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(SPEC, overrides=[override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files_and_overlays(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(SPEC, file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(SPEC, file=broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[config]\nwidth = 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'width' in config file"):
        resolve(SPEC, file=unknown)
    with pytest.raises(ConfigError, match="unknown environment overlay 'prod': use one of: quick"):
        resolve(SPEC, env="prod")


def test_configs_are_data_never_evaluated(tmp_path: Path) -> None:
    key, value = parse_set("device=__import__('os').system('false')")
    assert key == "device" and isinstance(value, str)
    with pytest.raises(ConfigError, match="not allowed"):
        resolve(SPEC, overrides=["device=__import__('os').system('false')"])


def test_open_spec_accepts_script_keys_and_round_trips_through_toml(tmp_path: Path) -> None:
    got = resolve(ConfigSpec.open(), overrides=["hidden=128", 'name="a b"', "opt.beta=0.9"])
    assert got == {"hidden": 128, "name": "a b", "opt.beta": 0.9}
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(got, header="test"))
    assert flatten(read_toml(path)["config"]) == got


def test_load_spec_reads_constraints_and_envs(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[config]\nlr = 0.1\ndevice = "auto"\n'
        "[constraints]\nlr = { min = 0.0, exclusive_min = true }\n"
        'device = { choices = ["auto", "cpu"] }\n[env.quick]\nlr = 0.5\n'
    )
    spec = load_spec(path)
    assert spec.constraints["lr"].exclusive_min is True
    assert spec.constraints["device"].choices == ("auto", "cpu")
    assert resolve(spec, env="quick")["lr"] == 0.5
    with pytest.raises(ConfigError, match="use one of 'auto', 'cpu'"):
        resolve(spec, overrides=["device=tpu"])
