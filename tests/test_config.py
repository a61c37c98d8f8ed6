"""The config the jobs see, and its validation at DAG time.

* A config file given on the command line (or by the SLURM profile) replaces the demo default:
  the effective config equals the file, key for key; several files merge in order, and
  ``--config k=v`` applies on top.
* Every block of config/schema.yaml is closed (``additionalProperties: false``), and the
  blocks read by a settings dataclass list exactly that dataclass's fields, read from the code.
* A typo anywhere fails the dry-run with one line naming its path and the closest key.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiktalk.config_check import config_problems, key_path, load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def _yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8"))


def _dry_run(tmp_path: Path, *args: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess, dict | None]:
    """A dry-run that dumps the effective config (TIKTALK_DUMP_CONFIG); (result, dump)."""
    dump = tmp_path / "effective.json"
    dump.unlink(missing_ok=True)
    env = dict(os.environ, TIKTALK_DUMP_CONFIG=str(dump))
    env.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path),
                          "--snakefile", str(ROOT / "Snakefile"), *args],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return res, (json.loads(dump.read_text(encoding="utf-8")) if dump.exists() else None)


def _merge(base: dict, over: dict) -> dict:
    """Deep merge, ``over`` winning (what several --configfile files do among themselves)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---- the config the jobs see -----------------------------------------------------------------

def test_demo_is_the_default_config(tmp_path):
    res, dump = _dry_run(tmp_path, "--cores", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert dump["config"] == _yaml("config.yaml")


def test_paper_config_replaces_the_demo_key_for_key(tmp_path):
    res, dump = _dry_run(tmp_path, "--cores", "1", "--configfile", str(ROOT / "config/tiktalk.yaml"))
    assert dump is not None, res.stderr[-3000:]
    paper = _yaml("tiktalk.yaml")
    assert dump["config"] == paper
    # what the issue found inherited from the demo is gone
    assert "demo" not in dump["config"]
    assert dump["config"]["media"]["image_encoder"].get("pooled") is False   # demo: pooled: true
    assert "torch_threads" not in dump["config"]["media"]["extract"]
    # and no job reaches the hub
    assert dump["env"] == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_profile_runs_the_paper_config_with_conda_envs(tmp_path):
    profile = yaml.safe_load((ROOT / "slurm/config.yaml").read_text(encoding="utf-8"))
    assert profile["software-deployment-method"] == "conda"
    # the profile resolves as `snakemake --profile slurm` does from the repo root; the config
    # is dumped when the Snakefile is read, before the DAG (no SLURM, no conda needed for it)
    res, dump = _dry_run(tmp_path, "--profile", "slurm")
    assert dump is not None, res.stderr[-3000:]
    assert dump["config"] == _yaml("tiktalk.yaml")
    # --configfile on the command line still replaces the profile's file
    res, dump = _dry_run(tmp_path, "--profile", "slurm", "--configfile", str(ROOT / "config/config.yaml"))
    assert dump is not None, res.stderr[-3000:]
    assert dump["config"] == _yaml("config.yaml")


def test_several_files_merge_in_order_and_config_args_apply_on_top(tmp_path):
    overlay = {"seed": 99, "baselines": {"chatglm": {"params": {"train": {"epochs": 1}}}},
               "media": {"extract": {"batch_size": 8}}}
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    res, dump = _dry_run(tmp_path, "--cores", "1", "--configfile", str(ROOT / "config/tiktalk.yaml"),
                         str(tmp_path / "overlay.yaml"), "--config", "seed=7")
    assert dump is not None, res.stderr[-3000:]
    expected = _merge(_yaml("tiktalk.yaml"), overlay)
    expected["seed"] = 7
    assert dump["config"] == expected
    assert dump["config"]["baselines"]["chatglm"]["params"]["train"]["lr"] == 2.0e-4  # kept


# ---- the schema ------------------------------------------------------------------------------

def _init_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _described_class(node):
    """The settings dataclass a schema block names first in its description
    (``tiktalk.models.maria.MariaConfig (...)``), or None."""
    import importlib

    words = str(node.get("description", "")).split()
    if not words or not words[0].startswith("tiktalk."):
        return None
    module, _, name = words[0].rpartition(".")
    cls = getattr(importlib.import_module(module), name, None)
    return cls if dataclasses.is_dataclass(cls) else None


def _settings_class(ref: str):
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def test_schema_blocks_list_exactly_the_settings_fields():
    """The one place where the hand-written schema meets the code: every block whose
    description names a settings dataclass lists exactly its init fields, and every baseline
    family's params schema lists exactly its settings dataclass's (read from the code, so a
    field added to or renamed in a dataclass fails here until the schema follows)."""
    from tiktalk.config_check import params_schema
    from tiktalk.data.release import ReleaseFields, ValCarving
    from tiktalk.families.registry import families

    schema = load_schema(SCHEMA)
    defs = schema["$defs"]
    described = {name: _described_class(node) for name, node in defs.items()}
    checked = {name: cls for name, cls in described.items() if cls is not None}
    for name, cls in checked.items():
        assert set(defs[name]["properties"]) == _init_fields(cls), (name, cls.__name__)
    # the settings of every stage and family model are among them
    assert {c.__name__ for c in checked.values()} >= {
        "TrainConfig", "MariaConfig", "MariaDecode", "MariaParams", "ChitchatConfig",
        "DialoGPTParams", "CausalLMConfig", "LoraSettings", "CausalLMParams", "LivebotConfig",
        "LivebotParams", "QFormerSettings", "PretrainedQFormer", "Blip2Config", "Blip2Params",
        "MediaConfig", "DownloadConfig", "ImageEncoderConfig"}
    release = schema["properties"]["release"]["properties"]
    assert set(release["fields"]["properties"]) == _init_fields(ReleaseFields)
    assert set(release["val_from_train"]["properties"]) == _init_fields(ValCarving)
    # nested settings blocks are their own definitions
    assert defs["causal_lm_model"]["properties"]["lora"] == {"$ref": "#/$defs/lora"}
    assert defs["blip2_model"]["properties"]["qformer"] == {"$ref": "#/$defs/qformer"}
    assert defs["blip2_model"]["properties"]["pretrained"] == {"$ref": "#/$defs/pretrained_qformer"}
    # every family's params schema is the one applied to its rows, and lists its settings' fields
    rows = schema["properties"]["baselines"]["additionalProperties"]
    applied = {c["if"]["properties"]["family"]["const"]: c["then"] for c in rows["allOf"]}
    assert set(applied) == set(families()) == set(rows["properties"]["family"]["enum"])
    for name, fam in families().items():
        if not fam.trains:
            assert applied[name] == fam.row
            continue
        assert applied[name]["properties"]["params"] == params_schema(fam)
        block = params_schema(fam)
        if "$ref" in block:
            block = defs[block["$ref"].removeprefix("#/$defs/")]
            assert block["properties"]["train"] == {"$ref": "#/$defs/train_cfg"}
        cls = _settings_class(fam.settings) if isinstance(fam.settings, str) else fam.settings
        assert set(block["properties"]) == _init_fields(cls), name
    from tiktalk.knowledge import retrieve

    retriever = schema["properties"]["knowledge"]["properties"]["retriever"]
    assert set(retriever["properties"]) == set(retrieve._COMMON_KEYS).union(*retrieve._KIND_KEYS.values())


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 4


@dataclasses.dataclass(frozen=True)
class ToyParams:
    train: dict
    lr: float = 0.1
    name: str | None = None
    layers: tuple[int, ...] = (1,)
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_a_family_without_a_schema_gets_one_from_its_settings():
    from tiktalk.config_check import params_schema
    from tiktalk.families.family import Family

    schema = params_schema(Family(name="toy", settings=ToyParams))
    assert schema["required"] == ["train"] and schema["additionalProperties"] is False
    assert schema["properties"]["lr"] == {"type": "number"}
    assert schema["properties"]["name"] == {"type": ["string", "null"]}
    assert schema["properties"]["layers"] == {"type": "array", "items": {"type": "integer"}}
    assert schema["properties"]["inner"]["properties"] == {"width": {"type": "integer"}}
    import jsonschema

    ok = {"train": {}, "lr": 0.5, "layers": [2, 3], "inner": {"width": 2}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(ok)) == []
    bad = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(
        {"lr": "fast", "inner": {"widht": 2}})]
    assert len(bad) == 3, bad      # train missing, lr not a number, the typo in inner
    with pytest.raises(TypeError, match="settings is not a dataclass"):
        params_schema(Family(name="toy", settings="tiktalk.x:Y"))


def _objects(node, path=()):
    if isinstance(node, dict):
        if "properties" in node and not {"if", "then"} & set(path):  # conditions refine, not define
            yield path, node
        for k, v in node.items():
            yield from _objects(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(v, path + (i,))


def test_every_block_of_the_schema_is_closed():
    closed = [(p, n.get("additionalProperties")) for p, n in _objects(load_schema(SCHEMA))]
    assert len(closed) > 30
    assert [p for p, extra in closed if extra is not False] == []


# ---- one line per problem ---------------------------------------------------------------------

@pytest.mark.parametrize("where, key, value, line", [
    (("media", "extract"), "max_frame", 3, "media.extract: unknown key 'max_frame'; did you mean 'max_frames'?"),
    (("baselines", "livebot", "params", "model"), "hiden", 3,
     "baselines.livebot.params.model: unknown key 'hiden'; did you mean 'hidden'?"),
    (("baselines", "chatglm", "params", "model", "lora"), "alpah", 3,
     "baselines.chatglm.params.model.lora: unknown key 'alpah'; did you mean 'alpha'?"),
    (("baselines", "blip2_img", "params", "model", "pretrained"), "revison", "x",
     "baselines.blip2_img.params.model.pretrained: unknown key 'revison'; did you mean 'revision'?"),
    (("knowledge", "retriever"), "topk", 3, "knowledge.retriever: unknown key 'topk'; did you mean 'top_k'?"),
    (("weights", "artifacts", "vggish"), "sha256", "x",      # nothing close: the known keys
     "weights.artifacts.vggish: unknown key 'sha256'; known: "
     "['base_url', 'description', 'files', 'hub', 'manual', 'revision']"),
    ((), "baseline", {}, "config: unknown key 'baseline'; did you mean 'baselines'?"),
])
def test_a_typo_is_one_line_naming_its_path_and_the_closest_key(where, key, value, line):
    cfg = _yaml("tiktalk.yaml")
    node = cfg
    for part in where:
        node = node[part]
    node[key] = value
    assert config_problems(cfg, load_schema(SCHEMA)) == [line]


def test_wrong_values_name_their_path():
    cfg = _yaml("tiktalk.yaml")
    cfg["data"]["shard_size"] = 0
    cfg["baselines"]["dialogpt"]["params"]["train"]["lr_schedule"] = "cosine"
    cfg["media"]["extract"]["init"] = "randon"
    lines = config_problems(cfg, load_schema(SCHEMA))
    assert lines == [
        "baselines.dialogpt.params.train.lr_schedule: 'cosine' is not one of ['linear', 'constant']",
        "data.shard_size: 0 is less than the minimum of 1",
        "media.extract.init: 'randon' is not one of ['pretrained', 'random']",
    ]
    assert key_path(["evaluation", "splits", 1]) == "evaluation.splits[1]"


def test_a_nested_typo_fails_the_dry_run_in_one_line(tmp_path):
    cfg = _yaml("config.yaml")
    cfg["media"]["extract"]["max_frame"] = 3
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res, dump = _dry_run(tmp_path, "--cores", "1", "--configfile", str(path))
    assert res.returncode != 0 and dump is None
    out = (res.stdout + res.stderr).strip().splitlines()
    errors = [ln for ln in out if "config error" in ln]
    assert errors == ["config error: media.extract: unknown key 'max_frame'; did you mean 'max_frames'?"]
    assert len(out) <= 3, out          # no schema, no config dump around it


def test_a_top_level_typo_is_short_too(tmp_path):
    cfg = _yaml("config.yaml")
    cfg["baseline"] = cfg.pop("baselines")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res, _ = _dry_run(tmp_path, "--cores", "1", "--configfile", str(path))
    out = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode != 0
    assert [ln for ln in out if "config error" in ln] == [
        "config error: baselines: required key is missing",
        "config error: config: unknown key 'baseline'; did you mean 'baselines'?",
    ]
    assert len(out) <= 4, out


# ---- keys and files a real run needs, found at DAG build --------------------------------------

def test_a_real_release_without_c3kg_is_one_line():
    """Before: the schema passed and the DAG stopped later with InputFunctionException ...
    KeyError: 'c3kg'. The gpickle (converted once) stands in for the table; the demo needs
    neither."""
    cfg = _yaml("tiktalk.yaml")
    del cfg["knowledge"]["c3kg"]
    assert config_problems(cfg, load_schema(SCHEMA)) == ["knowledge.c3kg: required key is missing"]
    cfg["knowledge"].update(gpickle="data/c3kg/c3kg.gpickle", allow_pickle=True)
    assert config_problems(cfg, load_schema(SCHEMA)) == []
    demo = _yaml("config.yaml")
    assert "c3kg" not in demo["knowledge"] and config_problems(demo, load_schema(SCHEMA)) == []


@pytest.mark.parametrize("source, line", [
    ({"kind": "csv"}, "media.source.csv: required key is missing"),
    ({"kind": "local_dir"}, "media.source.root: required key is missing"),
    ({"kind": "yt_dlp", "url_template": "https://example.com/v"},
     "media.source.url_template: 'https://example.com/v' does not match '\\\\{id\\\\}'"),
])
def test_a_source_without_what_its_kind_needs_is_one_line(source, line):
    cfg = _yaml("tiktalk.yaml")
    cfg["media"]["source"] = source
    assert config_problems(cfg, load_schema(SCHEMA)) == [line]


def test_the_paper_config_fetches_with_yt_dlp():
    from tiktalk.media.resolvers import source_kind

    assert source_kind(_yaml("tiktalk.yaml")["media"]["source"]) == "yt_dlp"


def test_a_bad_url_table_and_a_missing_c3kg_fail_the_dry_run(tmp_path):
    """Each problem one line, at DAG build: an id listed twice and an empty url in the
    ``id,url`` table (before: only inside fetch_shard), and the missing C3KG key."""
    from dag_helpers import release_config, write_config

    urls = tmp_path / "urls.csv"
    urls.write_text("id,url\n101,https://cdn.example/101.mp4\n102,\n101,https://cdn.example/b.mp4\n",
                    encoding="utf-8")
    cfg = release_config(tmp_path, {"101": "train", "102": "test"}, {"kind": "csv", "csv": str(urls)},
                         shard_size=2)
    write_config(tmp_path, cfg)
    res, _ = _dry_run(tmp_path, "--cores", "1", "--configfile", str(tmp_path / "config.yaml"))
    errors = [ln for ln in (res.stdout + res.stderr).splitlines() if "config error" in ln]
    assert res.returncode != 0
    assert errors == [f"config error: media.source.csv: {urls}:3: empty url for id '102'",
                      f"config error: media.source.csv: {urls}:4: id '101' listed twice (first on line 2)"]
    del cfg["knowledge"]["c3kg"]
    write_config(tmp_path, cfg)
    res, _ = _dry_run(tmp_path, "--cores", "1", "--configfile", str(tmp_path / "config.yaml"))
    out = res.stdout + res.stderr
    assert [ln for ln in out.splitlines() if "config error" in ln] == [
        "config error: knowledge.c3kg: required key is missing"]
    assert "InputFunctionException" not in out and "KeyError" not in out
