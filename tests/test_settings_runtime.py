"""Layer-0 helpers: strict settings dataclasses and the device / rank choice."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from tiktalk.runtime import is_main_process, resolve_device
from tiktalk.settings import SettingsError, from_mapping, to_mapping


@dataclass(frozen=True)
class _Lora:
    r: int = 8
    target_modules: tuple[str, ...] = ("query_key_value",)


@dataclass(frozen=True)
class _Model:
    hidden: int = 64
    lora: _Lora = field(default_factory=_Lora)
    extra: _Lora | None = None


def test_builds_nested_immutable_settings_and_round_trips():
    cfg = from_mapping(_Model, {"hidden": 32, "lora": {"r": 4, "target_modules": ["q", "v"]}})
    assert cfg == _Model(hidden=32, lora=_Lora(r=4, target_modules=("q", "v")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden = 1
    assert from_mapping(_Model, to_mapping(cfg)) == cfg
    assert from_mapping(_Model, None) == _Model()


@pytest.mark.parametrize("data, where, needle", [
    ({"hiden": 1}, "baselines.maria.params.model", "baselines.maria.params.model: unknown key 'hiden'; did you mean 'hidden'?"),
    ({"lora": {"rr": 2}}, "m", "m.lora: unknown key 'rr'; did you mean 'r'?"),
    ({"zzz": 1}, "m", "known: ['extra', 'hidden', 'lora']"),
])
def test_unknown_key_names_its_path_and_the_closest_key(data, where, needle):
    with pytest.raises(SettingsError) as err:
        from_mapping(_Model, data, where)
    assert needle in str(err.value)


def test_a_block_that_is_not_a_mapping_is_an_error():
    with pytest.raises(SettingsError, match="m.lora: expected a mapping, got list"):
        from_mapping(_Model, {"lora": [1, 2]}, "m")


def test_device_choice_and_rank(monkeypatch):
    import torch

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="'cuda:1' was asked for"):
            resolve_device("cuda:1")
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
