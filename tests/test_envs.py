"""The per-rule conda envs pin the same versions as pyproject.toml, and every rule uses one.

One exception: envs/llm.yaml, the LLM rows' env, pins its own transformers line (4.33, the last
that ChatGLM-6B's remote code runs on) and the tokenizers / huggingface_hub / peft / accelerate
releases that go with it; everything else it shares with pyproject.
"""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LLM_ENV = "llm.yaml"
LLM_OWN = {"transformers", "tokenizers", "huggingface_hub", "peft", "accelerate", "safetensors"}
CONFIGS = ("config/config.yaml", "config/tiktalk.yaml")
OVERLAYS = ("config/llm-qwen2.yaml",)


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)\s*", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def pyproject_pins():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    pins = _pins(deps)
    unpinned = [d for d in deps if "==" not in d]
    assert not unpinned, f"unpinned dependencies in pyproject.toml: {unpinned}"
    return pins


def env_files():
    files = sorted((ROOT / "envs").glob("*.yaml"))
    assert files, "no envs/*.yaml"
    return files


def env_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = _pins(pip)
    assert pins, f"{path.name}: no pinned pip packages"
    assert len(pins) == len(pip), f"{path.name}: every pip entry must be pinned (==)"
    return pins


def test_env_pins_equal_pyproject():
    pins = pyproject_pins()
    for path in env_files():
        for name, version in env_pins(path).items():
            if path.name == LLM_ENV and name in LLM_OWN:
                continue
            assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert version == pins[name], (
                f"{path.name}: {name}=={version} but pyproject.toml pins {pins[name]}")


def test_llm_env_pins_the_transformers_line_chatglm_runs_on():
    llm = env_pins(ROOT / "envs" / LLM_ENV)
    assert llm["transformers"].startswith("4.33."), llm["transformers"]
    major_minor = tuple(int(x) for x in llm["tokenizers"].split(".")[:2])
    assert major_minor < (0, 14), "transformers 4.33 needs tokenizers < 0.14"
    assert int(llm["huggingface_hub"].split(".")[0]) == 0, "transformers 4.33 needs huggingface_hub < 1.0"
    assert "sentencepiece" in llm and "accelerate" in llm      # ChatGLM's tokenizer; device_map loading
    assert set(llm) - set(pyproject_pins()) <= LLM_OWN


def _baselines(*files) -> dict:
    merged: dict = {}
    for f in files:
        merged.update(yaml.safe_load((ROOT / f).read_text()).get("baselines", {}))
    return merged


def test_every_baseline_runs_in_a_known_env_and_only_chatglm_rows_need_the_llm_env():
    envs = {p.stem for p in env_files()}
    for cfg in CONFIGS + OVERLAYS:
        for name, block in _baselines(cfg).items():
            assert block.get("env", "train") in envs, f"{cfg}: baseline {name} uses unknown env {block.get('env')}"
    paper = _baselines("config/tiktalk.yaml", *OVERLAYS)
    for name, block in paper.items():
        llm = block if block["family"] == "causal_lm" else paper.get(block.get("llm_from", ""), {})
        remote = llm.get("params", {}).get("model", {}).get("trust_remote_code", False)
        assert (block.get("env") == "llm") == bool(remote), (
            f"baseline {name}: env {block.get('env', 'train')!r}, but its LLM "
            f"{'needs' if remote else 'does not need'} the LLM env")


def test_every_rule_that_loads_a_baseline_runs_in_its_env():
    """train, predict and rank load the family's model (the ones wired to an LLM dir): a ChatGLM
    row's jobs need the LLM env, so each picks its baseline's env, never a fixed one."""
    loading = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M)
        blocks = re.split(r"^(?:rule|checkpoint) \w+:", text, flags=re.M)[1:]
        for name, block in zip(rules, blocks):
            if re.search(r"^\s+llm_dir=", block, flags=re.M):
                loading.append(name)
                assert re.search(r"conda:\s*\n\s*baseline_env\b", block), (
                    f"{smk.name}: rule {name} loads a baseline's model but its conda env is not baseline_env")
    assert {"train_baseline", "predict", "rank"} <= set(loading), loading


def test_every_rule_has_conda_log_and_a_known_env():
    envs = {p.name for p in env_files()}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M)
        blocks = re.split(r"^(?:rule|checkpoint) \w+:", text, flags=re.M)[1:]
        for name, block in zip(rules, blocks):
            m = re.search(r'conda:\s*\n\s*(?:"\.\./envs/([\w.-]+)"|(baseline_env)\b)', block)
            assert m, f"{smk.name}: rule {name} has no conda: directive"
            assert m.group(2) or m.group(1) in envs, f"{smk.name}: rule {name} uses unknown env {m.group(1)}"
            assert re.search(r"^\s+log:", block, flags=re.M), f"{smk.name}: rule {name} has no log:"


def test_the_media_env_has_the_yt_dlp_source():
    """fetch_shard runs in envs/media.yaml; the paper config's source is yt_dlp."""
    rules = (ROOT / "rules" / "media.smk").read_text()
    fetch = rules.split("rule fetch_shard:", 1)[1].split("\nrule ", 1)[0]
    assert '"../envs/media.yaml"' in fetch
    assert env_pins(ROOT / "envs" / "media.yaml")["yt-dlp"] == pyproject_pins()["yt-dlp"]
