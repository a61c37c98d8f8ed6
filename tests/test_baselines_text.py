"""Text baselines: DialoGPT (GPT2-chitchat) and the LoRA causal LM (ChatGLM-6B row).

Also holds the tiny-dataset helpers the Livebot and BLIP-2 family tests import.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.formats import FEATURES_VERSION
from tiktalk.models.batching import pad_batch
from tiktalk.models.causal_lm import (
    CausalLMConfig, apply_lora, build_base_model, encode_example, encode_prompt,
)
from tiktalk.models.gpt2_chitchat import ChitchatConfig, ChitchatModel, build_lm, encode_dialogue
from tiktalk.models.prompts import build_prompt, context_to_chat
from tiktalk.settings import SettingsError, from_mapping

torch.set_num_threads(1)

COLOURS = ["红色", "蓝色", "绿色"]
TEXTS = ["你好啊", "这个视频真好看", "是什么颜色的", "我也想要一个", "哈哈哈太好笑了", "今天天气不错"]


# -- helpers shared with test_livebot.py / test_blip2.py --------------------------------------
def tokenizer_dir(root: Path) -> Path:
    """A WordPiece tokenizer trained (with the shared trainer) on the tiny corpus."""
    from tiktalk.models.tokenizer import train_wordpiece

    out = root / "tokenizer"
    if not out.exists():
        corpus = TEXTS + [f"是{c}的" for c in COLOURS] + ["[Round 0]\n问：\n答："] * 3
        train_wordpiece(corpus, out, vocab_size=300)
    return out


def make_dataset(root: Path, n_train: int = 12, n_test: int = 5, with_features: bool = False,
                 feature_dim: int = 6, tokenizer: Path | None = None) -> BaselineInputs:
    """Dialogue tables whose response names the video's colour (frame feature 0 encodes it);
    ``tokenizer``: a tokenizer directory to use instead of training the WordPiece one."""
    root = Path(root)
    rng = np.random.default_rng(0)
    tables, vids = {}, []
    for split, n in (("train", n_train), ("val", 3), ("test", n_test)):
        rows = []
        for i in range(n):
            c = int(rng.integers(len(COLOURS)))
            vid = f"{split}{i:03d}_{c}"
            vids.append((vid, c))
            ctx = [TEXTS[int(rng.integers(len(TEXTS)))] for _ in range(int(rng.integers(1, 4)))] + ["是什么颜色的"]
            resp = [f"是{COLOURS[c]}的"] * (1 if split == "train" else 5)
            rows.append({"dialogue_id": f"{split}-{i}", "video_id": vid, "split": split,
                         "context": ctx, "responses": resp})
        path = root / "data" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tables[split] = path
    features = []
    if with_features:
        ids, fo, frames = [], [0], []
        for j, (vid, c) in enumerate(vids):
            n = 0 if j == 1 else 2 + j % 3                      # one video without frames
            f = rng.normal(0, 0.1, (n, feature_dim)).astype(np.float32)
            f[:, 0] = c - 1.0
            ids.append(vid)
            frames.append(f)
            fo.append(fo[-1] + n)
        path = root / "media" / "s00000.features.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, version=np.int64(FEATURES_VERSION), video_ids=np.array(ids),
                 frame_offsets=np.array(fo, dtype=np.int64), frames=np.concatenate(frames).astype(np.float16),
                 audio_offsets=np.zeros(len(ids) + 1, dtype=np.int64), audio=np.zeros((0, 4), np.float16))
        features.append(path)
    tok = tokenizer if tokenizer is not None else tokenizer_dir(root)
    return BaselineInputs(dialogues=tables, features=features, tokenizer=str(tok), seed=7)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def check_predictions(pred: Path, inputs: BaselineInputs, split: str = "test") -> list[str]:
    rows = read_lines(pred)
    table = read_lines(inputs.dialogues[split])
    assert [r["dialogue_id"] for r in rows] == [t["dialogue_id"] for t in table]
    assert all(isinstance(r["response"], str) for r in rows)
    return [r["response"] for r in rows]


TRAIN = {"epochs": 2, "batch_size": 4, "lr": 3e-3, "device": "cpu", "log_every": 1000}
LLAMA = {"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 256}
CAUSAL = {"model_config": LLAMA, "lora": {"r": 4, "alpha": 8, "dropout": 0.0,
                                         "target_modules": ["q_proj", "v_proj"]},
          "max_source_len": 96, "max_target_len": 16, "num_beams": 2, "max_new_tokens": 6}


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from tiktalk.models.tokenizer import load_tokenizer

    return load_tokenizer(tokenizer_dir(tmp_path_factory.mktemp("tok")))


# -- DialoGPT (GPT2-chitchat) ----------------------------------------------------------------
def test_chitchat_layout_history_and_labels(tok):
    cfg = ChitchatConfig(max_history=2, max_input_len=64)
    ids, labels = encode_dialogue(tok, ["你好啊", "今天天气不错", "是什么颜色的"], "是红色的", cfg)
    cls, sep = tok.cls_token_id, tok.sep_token_id
    ctx = tok.encode("今天天气不错", add_special_tokens=False) + [sep] + \
        tok.encode("是什么颜色的", add_special_tokens=False) + [sep]
    resp = tok.encode("是红色的", add_special_tokens=False) + [sep]
    assert ids == [cls] + ctx + resp                           # only the last 2 turns
    assert labels == [-100] * (1 + len(ctx)) + resp
    prompt, _ = encode_dialogue(tok, ["你好啊", "今天天气不错", "是什么颜色的"], None, cfg)
    assert prompt == [cls] + ctx
    short = ChitchatConfig(max_history=3, max_input_len=12)
    ids2, labels2 = encode_dialogue(tok, ["你好啊", "今天天气不错", "是什么颜色的"], "是红色的", short)
    assert len(ids2) == 12 and ids2[0] == cls and ids2[-len(resp):] == resp
    assert labels2[-len(resp):] == resp and all(x == -100 for x in labels2[:-len(resp)])


def test_chitchat_forward_generate_and_unk_never_sampled(tok):
    torch.manual_seed(0)
    cfg = ChitchatConfig(n_layer=1, n_embd=16, n_head=2, n_positions=64, max_input_len=64, max_new_tokens=6)
    model = ChitchatModel(build_lm(cfg, tok), cfg, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id)
    ex = [dict(zip(("input_ids", "labels"), encode_dialogue(tok, c, r, cfg)))
          for c, r in ((["你好啊"], "是红色的"), (["这个视频真好看", "是什么颜色的"], "是蓝色的"))]
    batch = pad_batch(ex, {"input_ids": tok.pad_token_id, "labels": -100}, mask_from="input_ids")
    loss = model(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # a right-padded row gives the same loss as alone
    alone = pad_batch(ex[:1], {"input_ids": tok.pad_token_id, "labels": -100}, mask_from="input_ids")
    model.eval()
    with torch.no_grad():
        both_logits = model.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        one_logits = model.lm(input_ids=alone["input_ids"]).logits
    n = alone["input_ids"].shape[1]
    assert torch.allclose(both_logits[0, :n], one_logits[0], atol=1e-5)
    # make [UNK] the most likely token everywhere: top-k sampling must still never produce it
    with torch.no_grad():
        model.lm.transformer.ln_f.weight.zero_()
        model.lm.transformer.ln_f.bias.fill_(1.0)               # every hidden state = ones
        model.lm.lm_head.weight[tok.unk_token_id] = 100.0       # tied: logit(UNK) = 100 * dim
        assert model.lm(**prompts_probe(tok, cfg)).logits[0, -1].argmax().item() == tok.unk_token_id
    prompts = pad_batch([{"input_ids": encode_dialogue(tok, ["你好啊"], None, cfg)[0]}] * 3,
                        {"input_ids": tok.pad_token_id}, mask_from="input_ids", side="left")
    out = model.generate(prompts["input_ids"], prompts["attention_mask"], generator_seed=1)
    assert len(out) == 3 and all(tok.unk_token_id not in r and len(r) <= 6 for r in out)
    assert out == model.generate(prompts["input_ids"], prompts["attention_mask"], generator_seed=1)


def prompts_probe(tok, cfg):
    return {"input_ids": torch.tensor([encode_dialogue(tok, ["你好啊"], None, cfg)[0]])}


# -- causal LM (ChatGLM-6B row) --------------------------------------------------------------
def test_chatglm_prompt_format():
    assert context_to_chat(["a"]) == ("a", [])
    assert context_to_chat(["a", "b"]) == ("b", [["", "a"]])
    assert context_to_chat(["a", "b", "c"]) == ("c", [["a", "b"]])
    assert context_to_chat(["a", "b", "c", "d"]) == ("d", [["", "a"], ["b", "c"]])
    assert build_prompt(["a", "b", "c"], 3) == "[Round 0]\n问：a\n答：b\n[Round 1]\n问：c\n答："
    assert build_prompt(["a", "b", "c", "d"], 1) == "[Round 0]\n问：b\n答：c\n[Round 1]\n问：d\n答："
    assert build_prompt(["x"], 0) == "[Round 0]\n问：x\n答："


def test_causal_lm_example_truncation_and_labels(tok):
    prompt = build_prompt(["你好啊", "今天天气不错", "是什么颜色的"], 3)
    ids, labels = encode_example(tok, prompt, "是红色的", max_source_len=8, max_target_len=2)
    resp = tok.encode("是红色的", add_special_tokens=False)[:2]
    a = tok.encode(prompt, add_special_tokens=False)[-8:]
    assert ids == [tok.cls_token_id] + a + [tok.sep_token_id] + resp + [tok.sep_token_id]
    assert labels == [-100] * 10 + resp + [tok.sep_token_id]
    assert encode_prompt(tok, prompt, 8) == ids[:10]


def test_causal_lm_lora_trains_only_adapters(tok):
    cfg = from_mapping(CausalLMConfig, CAUSAL)
    torch.manual_seed(0)
    base = build_base_model(cfg, tok)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    lm = apply_lora(base, cfg.lora)
    trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("q_proj" in n for n in trainable) and not any("k_proj" in n for n in trainable)
    with pytest.raises(ValueError, match=r"m\.lora: unknown key 'rank'; known: \['alpha'"):
        from_mapping(CausalLMConfig, {**CAUSAL, "lora": {"rank": 2}}, "m")
    with pytest.raises(ValueError, match="exactly one of `base_model`"):
        from_mapping(CausalLMConfig, {"lora": {}})
    with pytest.raises(ValueError, match="torch_dtype must be one of"):
        from_mapping(CausalLMConfig, {**CAUSAL, "torch_dtype": "half"})
    from tiktalk.models.causal_lm import CausalLMModel

    model = CausalLMModel(lm, cfg, tok.pad_token_id, tok.sep_token_id)
    ex = [dict(zip(("input_ids", "labels"), encode_example(tok, build_prompt(["你好啊"], 3), "是红色的", 96, 16)))]
    batch = pad_batch(ex * 2, {"input_ids": tok.pad_token_id, "labels": -100}, mask_from="input_ids")
    opt = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=1e-2)
    first = model(batch).item()
    for _ in range(10):
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
    assert loss.item() < first
    after = lm.get_base_model().state_dict()
    for k, v in frozen.items():
        key = k if k in after else k.replace(".weight", ".base_layer.weight")
        assert torch.equal(after[key], v), k


# -- families end to end ---------------------------------------------------------------------
def test_dialogpt_family_train_predict_roundtrip(tmp_path):
    from tiktalk.baselines import dialogpt

    inputs = make_dataset(tmp_path)
    params = {"train": dict(TRAIN, epochs=6), "predict_batch_size": 3,
              "model": {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64,
                        "max_input_len": 64, "max_new_tokens": 8}}
    out = tmp_path / "model"
    dialogpt.train(params, inputs, out)
    assert (out / "model.pt").exists()
    dialogpt.predict(params, out, inputs, "test", tmp_path / "a.jsonl")
    check_predictions(tmp_path / "a.jsonl", inputs)
    dialogpt.predict(params, out, inputs, "test", tmp_path / "b.jsonl")   # seeded sampling
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    # the saved weights are the trained ones: they fit the training data better than a fresh init
    model, tok = dialogpt.load_model(out)
    from tiktalk.io import read_jsonl

    ex = dialogpt._examples(tok, read_jsonl(inputs.dialogues["train"]), model.cfg)
    batch = dialogpt.collate(ex, tok.pad_token_id)
    torch.manual_seed(0)
    fresh = ChitchatModel(build_lm(model.cfg, tok), model.cfg, 0, 0, None).eval()
    with torch.no_grad():
        assert model(batch).item() < fresh(batch).item() - 0.5


def test_dialogpt_params_and_config_fail_naming_the_closest_key(tmp_path):
    from tiktalk.baselines import dialogpt

    inputs = make_dataset(tmp_path)
    with pytest.raises(SettingsError, match="dialogpt params.model: unknown key 'n_layers'; "
                                            "did you mean 'n_layer'"):
        dialogpt.train({"train": TRAIN, "model": {"n_layers": 1}}, inputs, tmp_path / "m")
    with pytest.raises(SettingsError, match="dialogpt params: unknown key 'predict_batchsize'"):
        dialogpt.predict({"train": TRAIN, "predict_batchsize": 3}, tmp_path / "m", inputs, "test",
                         tmp_path / "p.jsonl")


def test_causal_lm_family_train_predict_and_reload(tmp_path):
    from tiktalk.baselines import causal_lm

    inputs = make_dataset(tmp_path)
    params = {"train": TRAIN, "model": CAUSAL, "predict_batch_size": 2}
    out = tmp_path / "llm"
    causal_lm.train(params, inputs, out)
    for name in ("model.pt", "adapter/adapter_config.json", "base/config.json", "tokenizer"):
        assert (out / name).exists(), name
    causal_lm.predict(params, out, inputs, "test", tmp_path / "p.jsonl")
    responses = check_predictions(tmp_path / "p.jsonl", inputs)
    # reloading gives the same model: identical logits, with and without merging LoRA
    lm, tok, cfg = causal_lm.load_finetuned(out)
    lora_b = [v for k, v in lm.state_dict().items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)     # trained (B starts at zero)
    merged, _, _ = causal_lm.load_finetuned(out, merge=True)
    ids = torch.tensor([encode_prompt(tok, build_prompt(["你好啊"], 3), 96)])
    with torch.no_grad():
        a, b = lm(input_ids=ids).logits, merged(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-5)
    # batched beam decoding equals decoding each dialogue alone
    causal_lm.predict(dict(params, predict_batch_size=1), out, inputs, "test", tmp_path / "q.jsonl")
    assert check_predictions(tmp_path / "q.jsonl", inputs) == responses


def test_model_blob_round_trip_and_family_check(tmp_path):
    import torch

    from tiktalk.baselines.common import cpu_state, load_model_blob, save_model_blob

    sd = cpu_state(torch.nn.Linear(3, 2).state_dict())
    save_model_blob(tmp_path / "model.pt", "livebot", 1, {"hidden": 3}, state_dict=sd)
    blob = load_model_blob(tmp_path, "livebot", 1)
    assert blob["config"] == {"hidden": 3} and torch.equal(blob["state_dict"]["weight"], sd["weight"])
    for family, version in (("dialogpt", 1), ("livebot", 2)):
        with pytest.raises(ValueError, match=rf"model\.pt is not a {family} v{version} model"):
            load_model_blob(tmp_path, family, version)
