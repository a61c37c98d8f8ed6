"""The rehearsal's tiny weights: the same classes as the real ones, saved as the real ones are
distributed, listed file for file in config/rehearsal.yaml, and loaded through the real code
paths (the slow SLURM rehearsal itself runs config/rehearsal.yaml end to end)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tiktalk.config_check import workflow_config_problems
from tiktalk.rehearsal.weights import BUILDERS, build_rehearsal_weights

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rehearsal") / "weights"
    build_rehearsal_weights(root)
    return root


def _rehearsal() -> dict:
    return yaml.safe_load((ROOT / "config/rehearsal.yaml").read_text(encoding="utf-8"))


def test_rehearsal_config_is_valid_and_lists_exactly_the_built_files(weights):
    cfg = _rehearsal()
    assert workflow_config_problems(cfg, ROOT / "config/schema.yaml", exists=lambda p: True) == []
    artifacts = cfg["weights"]["artifacts"]
    assert set(artifacts) == set(BUILDERS)
    for name, art in artifacts.items():
        built = sorted(p.relative_to(weights / name).as_posix() for p in (weights / name).rglob("*")
                       if p.is_file())
        assert sorted(art["files"]) == built, name
    # the paper's path: the same artifact names and code paths as config/tiktalk.yaml
    paper = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text(encoding="utf-8"))
    assert set(artifacts) <= set(paper["weights"]["artifacts"])
    # every row of Table 3 (and only the paper's rows), each in the paper's family and env
    table3 = {b: r for b, r in paper["baselines"].items() if r.get("table3", True)}
    assert [r["label"] for r in cfg["baselines"].values()] == [r["label"] for r in table3.values()]
    for b, row in cfg["baselines"].items():
        assert (row["family"], row.get("env"), row.get("llm_from")) == \
            (table3[b]["family"], table3[b].get("env"), table3[b].get("llm_from")), b
    assert cfg["media"]["image_encoder"]["kind"] == paper["media"]["image_encoder"]["kind"] == "blip2_vision"
    assert cfg["media"]["extract"]["backbone"] == paper["media"]["extract"]["backbone"] == "resnet101"
    assert cfg["knowledge"]["retriever"]["kind"] == "sbert" and cfg["tokenizer"]["kind"] == "pretrained"
    assert "val.json" not in str(cfg["release"]) and cfg["media"]["source"]["kind"] == "local_dir"


def test_builds_are_deterministic(tmp_path, weights):
    again = tmp_path / "again"
    build_rehearsal_weights(again, names=["gpt2-chitchat", "vggish", "chatglm-6b", "blip2-opt-2.7b"])
    for name in ("gpt2-chitchat/pytorch_model.bin", "vggish/vggish_pca_params-rehearsal.pth",
                 "chatglm-6b/ice_text.model", "chatglm-6b/pytorch_model-00002-of-00002.bin",
                 "blip2-opt-2.7b/model-00001-of-00002.safetensors"):
        assert (again / name).read_bytes() == (weights / name).read_bytes(), name
    with pytest.raises(ValueError, match="unknown rehearsal artifact 'chatglm'"):
        build_rehearsal_weights(tmp_path / "x", names=["chatglm"])


def test_tiny_weights_load_through_the_real_code_paths(weights):
    from tiktalk.media.vggish import AudioEncoder
    from tiktalk.media.visual import VisualEncoder
    from tiktalk.models.gpt2_chitchat import ChitchatConfig, build_lm
    from tiktalk.models.maria import MariaConfig, build_backbone
    from tiktalk.models.tokenizer import load_tokenizer

    tok = load_tokenizer(weights / "bert-base-chinese")
    ids = tok("你好，世界")["input_ids"]
    assert tok.unk_token_id not in ids and len(ids) == 2 + 5          # one token per character
    mlm, filled = build_backbone(MariaConfig(vocab_size=len(tok)), str(weights / "bert-base-chinese"))
    assert type(mlm).__name__ == "BertForMaskedLM" and filled.hidden_size == 32

    res = weights / "resnet101-imagenet" / "resnet101-rehearsal.pth"
    enc = VisualEncoder("resnet101", weights=res, input_size=32)
    assert enc.encode(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 2048)
    assert enc.weights_source.endswith(hashlib.sha256(res.read_bytes()).hexdigest())

    audio = AudioEncoder(weights / "vggish" / "vggish-rehearsal.pth",
                         weights / "vggish" / "vggish_pca_params-rehearsal.pth", max_examples=2)
    out = audio.encode_examples(np.random.default_rng(0).normal(size=(2, 96, 64)).astype(np.float32))
    assert out.shape == (2, 128) and out.min() >= 0 and out.max() <= 255

    gpt_tok = load_tokenizer(weights / "gpt2-chitchat")
    lm = build_lm(ChitchatConfig(pretrained=str(weights / "gpt2-chitchat")), gpt_tok)
    assert type(lm).__name__ == "GPT2LMHeadModel" and lm.config.n_embd == 32

    from tiktalk.knowledge.retrieve import SentenceBertRetriever

    sbert = SentenceBertRetriever(str(weights / "sbert-chinese"), device="cpu")
    assert sbert.model.encode(["今天天气很好"]).shape == (1, 32)

    # BLIP-2: the media stage's vision tower and the rows' Q-Former, from the sharded checkpoint
    from tiktalk.media.image_encoder import ImageEncoder, ImageEncoderConfig
    from tiktalk.models.blip2 import PretrainedQFormer, load_pretrained_qformer

    blip2 = weights / "blip2-opt-2.7b"
    image = ImageEncoder(ImageEncoderConfig.from_dict({"kind": "blip2_vision", "name_or_path": str(blip2),
                                                       "pooled": False, "n_frames": 2, "device": "cpu"}))
    tokens = image.encode(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))
    assert tokens.shape == (2, image.tokens_per_frame, 12) and image.tokens_per_frame == 17
    qformer, queries = load_pretrained_qformer(PretrainedQFormer(name_or_path=str(blip2)), 12)
    assert queries.shape == (1, 8, 16) and type(qformer).__name__ == "Blip2QFormerModel"

    from transformers import ChineseCLIPModel, ChineseCLIPProcessor

    clip = ChineseCLIPModel.from_pretrained(weights / "chinese-clip")
    proc = ChineseCLIPProcessor.from_pretrained(weights / "chinese-clip")
    batch = proc(text=["一只猫"], images=[np.zeros((40, 40, 3), np.uint8)], return_tensors="pt")
    with torch.no_grad():
        assert clip(**batch).logits_per_image.shape == (1, 1)
