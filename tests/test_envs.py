"""The per-rule conda envs pin the same versions as pyproject.toml, and every rule uses one."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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


def test_env_pins_equal_pyproject():
    pins = pyproject_pins()
    for path in env_files():
        env = yaml.safe_load(path.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        env_pins = _pins(pip)
        assert env_pins, f"{path.name}: no pinned pip packages"
        assert len(env_pins) == len(pip), f"{path.name}: every pip entry must be pinned (==)"
        for name, version in env_pins.items():
            assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert version == pins[name], (
                f"{path.name}: {name}=={version} but pyproject.toml pins {pins[name]}")


def test_every_rule_has_conda_log_and_a_known_env():
    envs = {p.name for p in env_files()}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M)
        blocks = re.split(r"^(?:rule|checkpoint) \w+:", text, flags=re.M)[1:]
        for name, block in zip(rules, blocks):
            m = re.search(r'conda:\s*\n\s*"\.\./envs/([\w.-]+)"', block)
            assert m, f"{smk.name}: rule {name} has no conda: directive"
            assert m.group(1) in envs, f"{smk.name}: rule {name} uses unknown env {m.group(1)}"
            assert re.search(r"^\s+log:", block, flags=re.M), f"{smk.name}: rule {name} has no log:"
