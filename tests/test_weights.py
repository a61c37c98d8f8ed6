"""Pretrained weights as a stage: the config block, fetching (URL and hub, both local fakes),
checksums, trust on first use, user-provided files, and the localrules end to end."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tiktalk.weights.fetch import WeightsError, fetch_file, verify_artifact, write_manifest
from tiktalk.config_check import weight_keys
from tiktalk.weights.spec import Artifact, WeightsSpec, hash_prefix, offline_problems

ROOT = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spec(artifacts: dict, **kw) -> WeightsSpec:
    return WeightsSpec.from_config({"weights": {"artifacts": artifacts, **kw}})


# ---- the config block ------------------------------------------------------------------------

def test_references_map_config_values_to_artifact_files_and_records():
    spec = _spec({"bert": {"hub": "org/bert", "revision": "v1", "files": {"vocab.txt": None, "config.json": None}},
                  "vgg": {"base_url": "https://x/", "files": {"v-1234abcd.pth": None}}})
    block = {"init": "weights/bert", "nested": [{"p": "weights/vgg/v-1234abcd.pth"}], "other": "data/x"}
    assert spec.referenced(block) == ["bert", "vgg"]
    assert spec.inputs_for(block) == [
        "weights/bert/config.json", "weights/bert/vocab.txt", "weights/.verified/bert.json",
        "weights/vgg/v-1234abcd.pth", "weights/.verified/vgg.json"]
    assert spec.inputs_for({"init": "scratch"}) == []
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Similarity:           # a block already turned into its settings dataclass
        kind: str = "sbert"
        model: str = "weights/bert"

    assert spec.referenced({"similarity": Similarity()}) == ["bert"]
    assert spec.reference("./weights/bert/") == ("bert", None)
    assert hash_prefix("resnet101-63fe2227.pth") == "63fe2227" and hash_prefix("model.bin") is None


def test_weights_block_problems_are_one_line_each():
    spec = _spec({"a": {"hub": "org/a", "files": {"x": None}},                       # no revision
                  "b": {"base_url": "https://x/", "manual": "by hand", "files": {"y": None}},
                  "c": {"base_url": "https://x/", "files": {"c-deadbeef.pth": "0" * 64}}})
    config = {"media": {"extract": {"backbone_weights": "weights/nope/r.pth",
                                    "vggish_weights": "weights/c/other.pth"}}}
    assert spec.problems(config) == [
        "weights.artifacts.a.revision: required with hub (pin a commit sha or tag)",
        "weights.artifacts.b: give exactly one source of ['hub', 'base_url', 'manual'], got ['base_url', 'manual']",
        "weights.artifacts.c.files.c-deadbeef.pth: sha256 000000000000... contradicts the prefix "
        "deadbeef in the file name",
        "media.extract.backbone_weights: 'weights/nope/r.pth' is under weights/ but weights.artifacts "
        "has no 'nope' (known: a, b, c)",
        "media.extract.vggish_weights: 'weights/c/other.pth': weights.artifacts.c.files has no 'other.pth'",
    ]
    strict = _spec({"a": {"hub": "org/a", "revision": "main", "files": {"x": None}}}, strict=True)
    assert strict.problems({}) == [
        "weights.artifacts.a.revision: 'main' is not a commit sha and weights.strict is true",
        "weights.artifacts.a.files.x: sha256 is null and weights.strict is true",
    ]


def test_pretrained_models_must_be_local_because_jobs_run_offline(tmp_path):
    spec = _spec({"bert": {"hub": "org/bert", "revision": "v1", "files": {"vocab.txt": None}}})
    local = tmp_path / "my-sbert"
    local.mkdir()
    config = {"tokenizer": {"kind": "pretrained", "name": "weights/bert"},
              "knowledge": {"retriever": {"kind": "sbert", "model": str(local)}},
              "baselines": {"m": {"family": "causal_lm",
                                  "params": {"init": "scratch", "model": {"base_model": "THUDM/chatglm-6b"}}}}}
    assert offline_problems(config, spec) == []       # the stages' keys are fine
    # a baseline's keys are its family's weight_keys (tiktalk.families)
    assert offline_problems(config, spec, keys=weight_keys(config)) == [
        "baselines.m.params.model.base_model: 'THUDM/chatglm-6b' is not a local path; compute jobs "
        "run offline (HF_HUB_OFFLINE=1): list it under weights.artifacts and give its path here "
        "(weights/<name>)"]


def test_the_paper_config_names_every_pretrained_artifact():
    paper = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text(encoding="utf-8"))
    spec = WeightsSpec.from_config(paper)
    assert spec.problems(paper) == []
    assert offline_problems(paper, spec, exists=lambda p: False, keys=weight_keys(paper)) == []
    assert set(spec.artifacts) == {"bert-base-chinese", "resnet101-imagenet", "vggish", "gpt2-chitchat",
                                   "chatglm-6b", "blip2-opt-2.7b", "sbert-chinese", "chinese-clip"}
    # every artifact is named by the config block of some rule (Chinese-CLIP: Table 6's)
    readers = {k: v for k, v in paper.items() if k != "weights"}
    assert set(spec.referenced(readers)) == set(spec.artifacts)
    assert spec.referenced(paper["paper_tables"]["interest"]) == ["chinese-clip"]


# ---- fetching ---------------------------------------------------------------------------------

class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _local_download_cfg():
    from tiktalk.media.download import DownloadConfig

    names = {f for f in DownloadConfig.__dataclass_fields__}
    return {"allow_private_hosts": True} if "allow_private_hosts" in names else {}


def test_fetch_from_a_url_checks_the_hash_its_name_carries(tmp_path, server):
    srv, base = server
    good = b"weights" * 100
    name = f"tiny-{_sha(good)[:8]}.pth"
    bad_name = "other-00000000.pth"
    _Files.files = {f"/models/{name}": good, f"/models/{bad_name}": b"not what the name says"}
    art = Artifact.from_config("tiny", {"base_url": f"{base}/models/", "files": {name: None, bad_name: None}})
    record = fetch_file(art, name, tmp_path, _local_download_cfg())
    assert (tmp_path / "tiny" / name).read_bytes() == good
    assert record["sha256"] == _sha(good) and record["url"] == f"{base}/models/{name}"
    with pytest.raises(WeightsError, match="does not start with 00000000"):
        fetch_file(art, bad_name, tmp_path, _local_download_cfg())
    assert not (tmp_path / "tiny" / bad_name).exists()          # moved aside, never used
    assert (tmp_path / "tiny" / f"{bad_name}.sha256-mismatch").exists()
    # the verification record says where the good file came from
    rec = verify_artifact(Artifact.from_config("tiny", {"base_url": base, "files": {name: None}}), tmp_path)
    assert rec["files"][name]["fetched"]["url"] == f"{base}/models/{name}"


def test_fetch_from_the_hub_uses_the_pinned_revision_and_the_hubs_sha256(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.file_download import HfFileMetadata

    data = b'{"hidden_size": 4}'
    calls = []

    def fake_download(repo_id, filename, revision=None, local_dir=None, **kw):
        calls.append((repo_id, filename, revision))
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return str(out)

    etag = {"value": _sha(data)}
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, **kw: HfFileMetadata(
        commit_hash="c" * 40, etag=f'"{etag["value"]}"', location=url, size=len(data), xet_file_data=None))
    art = Artifact.from_config("bert", {"hub": "org/bert", "revision": "v1", "files": {"config.json": None}})
    record = fetch_file(art, "config.json", tmp_path)
    assert calls == [("org/bert", "config.json", "v1")]
    assert record["resolved_revision"] == "c" * 40 and record["sha256"] == _sha(data)
    etag["value"] = "1" * 64                   # the hub says another file: refused
    with pytest.raises(WeightsError, match="pins"):
        fetch_file(art, "config.json", tmp_path)


def test_a_manual_artifact_that_is_missing_says_how_to_get_it(tmp_path):
    art = Artifact.from_config("gpt2", {"manual": "from the authors' drive", "files": {"config.json": None}})
    with pytest.raises(WeightsError) as err:
        fetch_file(art, "config.json", tmp_path)
    assert str(tmp_path / "gpt2" / "config.json") in str(err.value)
    assert "from the authors' drive" in str(err.value)


# ---- verification ----------------------------------------------------------------------------

def test_verify_trusts_on_first_use_checks_pins_and_reuses_unchanged_hashes(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"x")
    (tmp_path / "a" / "y.bin").write_bytes(b"y")
    art = Artifact.from_config("a", {"manual": "m", "files": {"x.bin": None, "y.bin": _sha(b"y")}})
    rec = verify_artifact(art, tmp_path)
    assert rec["files"]["x.bin"] == {"sha256": _sha(b"x"), "bytes": 1, "pinned": False, "fetched": None,
                                     "mtime_ns": (tmp_path / "a" / "x.bin").stat().st_mtime_ns}
    assert rec["files"]["y.bin"]["pinned"] is True
    # unchanged files are not read again
    import tiktalk.weights.fetch as F

    read = []
    monkeypatch.setattr(F, "sha256_file", lambda p: read.append(p) or _sha(Path(p).read_bytes()))
    assert verify_artifact(art, tmp_path, previous=rec) == rec and read == []
    # a replaced pinned file is an error naming it; strict refuses the unpinned one
    (tmp_path / "a" / "y.bin").write_bytes(b"changed")
    with pytest.raises(WeightsError, match=r"weights.artifacts.a.files.y.bin: sha256 .* but the config pins"):
        verify_artifact(art, tmp_path, previous=rec)
    with pytest.raises(WeightsError, match="x.bin: no sha256 in the config and weights.strict"):
        verify_artifact(art, tmp_path, strict=True)
    manifest = write_manifest([rec], tmp_path / "manifest.json")
    assert json.loads((tmp_path / "manifest.json").read_text())["artifacts"]["a"]["files"]["x.bin"]["sha256"] \
        == manifest["artifacts"]["a"]["files"]["x.bin"]["sha256"] == _sha(b"x")


# ---- the localrules ----------------------------------------------------------------------------

def _run(workdir: Path, cfg: dict, *targets: str) -> subprocess.CompletedProcess:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "1", "--directory",
                           str(workdir), "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(path)],
                          capture_output=True, text=True, timeout=300)


def test_fetch_weights_verifies_files_a_user_put_there_and_downloads_nothing(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    files = {"model.bin": b"\x00\x01" * 50, "sub/vocab.txt": "词\n".encode()}
    for name, data in files.items():
        (tmp_path / "weights" / "mine" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "weights" / "mine" / name).write_bytes(data)
    cfg["weights"] = {"artifacts": {
        "mine": {"base_url": "http://127.0.0.1:9/never-contacted/",
                 "files": {"model.bin": None, "sub/vocab.txt": _sha(files["sub/vocab.txt"])}},
        "later": {"manual": "ask the authors", "files": {"w.pt": None}}}}
    res = _run(tmp_path, cfg, "weights/.verified/mine.json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "localrule fetch_weight:" not in res.stdout + res.stderr   # nothing downloaded
    assert "localrule verify_weight:" in res.stdout + res.stderr
    record = json.loads((tmp_path / "weights/.verified/mine.json").read_text())
    assert {f: e["sha256"] for f, e in record["files"].items()} == {f: _sha(d) for f, d in files.items()}
    assert all(e["fetched"] is None for e in record["files"].values())
    # the manual artifact is missing: the whole stage fails, naming the file and how to get it
    res = _run(tmp_path, cfg, "fetch_weights")
    assert res.returncode != 0
    assert "weights/later/w.pt" in res.stdout + res.stderr and "ask the authors" in res.stdout + res.stderr
    # a pinned file replaced by another: its verification fails, naming the file
    (tmp_path / "weights/mine/sub/vocab.txt").write_bytes(b"other")
    res = _run(tmp_path, cfg, "weights/.verified/mine.json")
    assert res.returncode != 0
    assert "weights.artifacts.mine.files.sub/vocab.txt: sha256" in res.stdout + res.stderr
