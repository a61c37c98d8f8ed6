"""The LLM rows through their real loading code, on model directories written the way the real
models ship (tests/llm_fixtures.py): a tiny native LLM and a tiny BLIP-2 checkpoint (both envs),
and a ChatGLM-6B interface double loaded with trust_remote_code (its tokenizer, like the real one,
only loads under the LLM env's transformers 4.33; test_llm_env.py runs these there)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llm_fixtures import (LLM_ENV, blip2_image_tokens, write_blip2_checkpoint, write_chatglm_double,
                          write_image_shard, write_native_llm)
from test_baselines_text import TRAIN, check_predictions, make_dataset, read_lines

from tiktalk.io import fingerprint

torch.set_num_threads(1)
needs_llm_env = pytest.mark.skipif(not LLM_ENV, reason="ChatGLM-6B's remote code needs transformers <= 4.33: "
                                   "run by test_llm_env.py under .venv-llm")
LORA_NATIVE = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
LORA_GLM = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query_key_value"]}
DECODE = {"max_source_len": 96, "max_target_len": 16, "num_beams": 2, "max_new_tokens": 4}


def video_ids(inputs) -> list[str]:
    return [r["video_id"] for s in ("train", "val", "test") for r in read_lines(inputs.dialogues[s])]


def candidates(inputs, texts=("是红色的", "是绿色的")) -> dict:
    """The ranking evaluation's candidate sets: every test dialogue scores the same texts."""
    return {"n_candidates": len(texts),
            "dialogues": [{"dialogue_id": r["dialogue_id"], "candidates": list(texts), "references": [0]}
                          for r in read_lines(inputs.dialogues["test"])]}


def saved_tensors(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every tensor a trained LLM row wrote: the trainer's checkpoint and model.pt."""
    last = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    blob = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    tensors = {"last.pt": last["model"]}
    for key in ("lora_state_dict", "state_dict"):
        if key in blob:
            tensors[f"model.pt:{key}"] = blob[key]
    return tensors


def assert_only_adapters_saved(out: Path, base: torch.nn.Module) -> None:
    """No saved tensor is a frozen base weight: names are LoRA's, and the numbers of values are
    the adapters' (a fraction of the base)."""
    from peft import PeftModel

    lm = PeftModel.from_pretrained(base, str(out / "adapter"))
    adapters = {n: p.numel() for n, p in lm.named_parameters() if "lora_" in n}
    base_names = {n.replace(".base_layer", "") for n, _ in lm.get_base_model().named_parameters() if "lora_" not in n}
    for where, tensors in saved_tensors(out).items():
        assert tensors and all("lora_" in k for k in tensors), (where, list(tensors)[:3])
        assert sum(v.numel() for v in tensors.values()) == sum(adapters.values()), where
        assert not any(k.split("lm.base_model.model.", 1)[-1] in base_names for k in tensors), where
    assert not (out / "base").exists()                       # a pretrained base is referenced, not copied
    blob = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    base = blob["base"]                                       # what identifies the frozen base
    assert base["name_or_path"] == blob["config"]["base_model"]
    assert base["fingerprint"] == fingerprint(blob["config"]["base_model"])


# -- a native LLM + a BLIP-2 checkpoint ------------------------------------------------------
@pytest.mark.llm_env
def test_frozen_base_loads_in_the_asked_dtype_and_adapters_stay_float32(tmp_path):
    """transformers 4.33 silently ignores ``dtype=`` (it wants ``torch_dtype=``), >= 4.56 the reverse."""
    from tiktalk.models import llm_loading
    from tiktalk.models.causal_lm import LoraSettings, apply_lora

    src = write_native_llm(tmp_path)
    base = llm_loading.load_pretrained_lm(str(src), dtype=torch.float16)
    assert {p.dtype for p in base.parameters()} == {torch.float16}
    lm = apply_lora(base, LoraSettings(r=2, target_modules=("q_proj",)))
    assert {p.dtype for p in lm.parameters() if p.requires_grad} == {torch.float32}
    assert {p.dtype for p in lm.parameters() if not p.requires_grad} == {torch.float16}
    assert llm_loading.lm_auto_class_name(base.config) == "AutoModelForCausalLM"


@pytest.mark.llm_env
def test_blip2_over_a_saved_native_llm_and_a_released_style_blip2_checkpoint(tmp_path):
    """The whole path: an LLM saved with save_pretrained fine-tuned by the causal_lm family, then
    BLIP-2 with the checkpoint's Q-Former and queries over the image tokens of its own vision model."""
    from transformers import AutoModelForCausalLM

    from tiktalk.baselines import blip2, causal_lm
    from tiktalk.models.blip2 import PretrainedQFormer, load_pretrained_qformer

    src, ckpt = write_native_llm(tmp_path), write_blip2_checkpoint(tmp_path)
    inputs = make_dataset(tmp_path, tokenizer=src)
    inputs.extra_features = [write_image_shard(tmp_path / "s00000.image.npz",
                                               blip2_image_tokens(ckpt, video_ids(inputs)))]
    llm_dir = tmp_path / "llm"
    causal_lm.train({"train": dict(TRAIN, epochs=1), "model": {"base_model": str(src), "lora": LORA_NATIVE, **DECODE}},
                    inputs, llm_dir)
    assert_only_adapters_saved(llm_dir, AutoModelForCausalLM.from_pretrained(str(src)))

    params = {"train": dict(TRAIN, epochs=1), "llm_dir": str(llm_dir), "predict_batch_size": 2,
              "model": {"pretrained": {"name_or_path": str(ckpt)}, "mode": "img", "n_frames": 2,
                        "num_beams": 2, "max_new_tokens": 4}}
    out = tmp_path / "blip2"
    blip2.train(params, inputs, out)
    model, _, _ = blip2.load_model(out, params)
    assert model.llm_input == "inputs_embeds" and model.num_queries == 3
    for where, tensors in saved_tensors(out).items():
        assert {k.split(".")[0] for k in tensors} == {"query_tokens", "qformer", "llm_proj"}, where
        assert sum(v.numel() for v in tensors.values()) == sum(
            p.numel() for p in model.parameters() if p.requires_grad), where
    blob = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert blob["qformer_source"]["fingerprint"] == fingerprint(ckpt)
    assert blob["llm_base"]["name_or_path"] == str(src)
    _, queries = load_pretrained_qformer(PretrainedQFormer(str(ckpt)), 12)
    assert not torch.equal(model.query_tokens.detach(), queries.detach())     # trained from the checkpoint's
    blip2.predict(params, out, inputs, "test", tmp_path / "p.jsonl")
    responses = check_predictions(tmp_path / "p.jsonl", inputs)
    blip2.predict(dict(params, predict_batch_size=1), out, inputs, "test", tmp_path / "q.jsonl")
    assert check_predictions(tmp_path / "q.jsonl", inputs) == responses


@pytest.mark.llm_env
def test_pretrained_qformer_is_the_checkpoints_and_must_fit_the_features(tmp_path):
    from safetensors.torch import load_file

    from tiktalk.models.blip2 import PretrainedQFormer, load_pretrained_qformer

    ckpt = write_blip2_checkpoint(tmp_path)
    saved = {}
    for f in sorted(ckpt.glob("*.safetensors")):
        saved.update(load_file(str(f)))
    qformer, queries = load_pretrained_qformer(PretrainedQFormer(str(ckpt)), 12)
    assert torch.equal(queries.detach(), saved["query_tokens"])
    for k, v in qformer.state_dict().items():
        assert torch.equal(v, saved[f"qformer.{k}"]), k
    with pytest.raises(ValueError, match="reads 12-d image tokens, the image features are 16-d"):
        load_pretrained_qformer(PretrainedQFormer(str(ckpt)), 16)


# -- the ChatGLM-6B double -------------------------------------------------------------------
@pytest.mark.skipif(LLM_ENV, reason="checks the failure under transformers >= 4.34")
def test_chatglm_tokenizer_fails_outside_the_llm_env_with_a_message_naming_it(tmp_path):
    from tiktalk.baselines.causal_lm import load_llm_tokenizer
    from tiktalk.models.causal_lm import CausalLMConfig

    double = write_chatglm_double(tmp_path, weights=False)
    cfg = CausalLMConfig(base_model=str(double), trust_remote_code=True)
    with pytest.raises(RuntimeError, match=r"envs/llm\.yaml: transformers 4\.33"):
        load_llm_tokenizer(cfg, None)


@pytest.fixture(scope="module")
def chatglm(tmp_path_factory):
    return write_chatglm_double(tmp_path_factory.mktemp("glm"))


def glm_params(double: Path, **model) -> dict:
    return {"train": dict(TRAIN, epochs=3, lr=1e-2), "predict_batch_size": 2,
            "model": {"base_model": str(double), "trust_remote_code": True, "pass_attention_mask": False,
                      "gradient_checkpointing": True, "lora": LORA_GLM, **DECODE, **model}}


@pytest.mark.llm_env
@needs_llm_env
def test_chatglm_loads_through_its_auto_map_class_and_refuses_what_the_real_one_does(chatglm):
    from transformers import AutoConfig, AutoModelForCausalLM

    from tiktalk.models import llm_loading

    conf = AutoConfig.from_pretrained(str(chatglm), trust_remote_code=True)
    assert llm_loading.lm_auto_class_name(conf) == "AutoModel"
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        AutoModelForCausalLM.from_pretrained(str(chatglm), trust_remote_code=True)
    model = llm_loading.load_pretrained_lm(str(chatglm), trust_remote_code=True)
    assert type(model).__name__ == "ChatGLMForConditionalGeneration" and not llm_loading.is_native(model)
    tok = llm_loading.load_pretrained_tokenizer(str(chatglm), trust_remote_code=True)
    ids = torch.tensor([tok.build_inputs_with_special_tokens(tok.encode("你好啊", add_special_tokens=False))])
    with pytest.raises(ValueError, match="inputs_embeds alone"):
        model(inputs_embeds=model.get_input_embeddings()(ids))
    with pytest.raises(ValueError, match=r"boolean \(batch, 1, seq, seq\) attention mask"):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert model(input_ids=ids).logits.shape[:2] == ids.shape


@pytest.mark.llm_env
@needs_llm_env
def test_chatglm_row_trains_lora_through_checkpointing_decodes_batched_and_saves_only_adapters(chatglm, tmp_path):
    from transformers import AutoModel

    from tiktalk.baselines import causal_lm

    inputs = make_dataset(tmp_path, tokenizer=chatglm)
    out = tmp_path / "chatglm"
    params = glm_params(chatglm)
    causal_lm.train(params, inputs, out)
    lm, tok, _ = causal_lm.load_finetuned(out)
    lora_b = [v for k, v in lm.state_dict().items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)   # gradients reached every adapter
    assert_only_adapters_saved(out, AutoModel.from_pretrained(str(chatglm), trust_remote_code=True))
    causal_lm.predict(params, out, inputs, "test", tmp_path / "p.jsonl")
    responses = check_predictions(tmp_path / "p.jsonl", inputs)
    causal_lm.predict(dict(params, predict_batch_size=1), out, inputs, "test", tmp_path / "q.jsonl")
    assert check_predictions(tmp_path / "q.jsonl", inputs) == responses
    ll, nt = causal_lm.score_candidates(params, out, inputs, "test", candidates(inputs), batch_size=3)
    assert ll.shape == (len(responses), 2) and (ll < 0).all() and (nt >= 1).all()
    with pytest.raises(ValueError, match="attention mask"):        # a 2-D mask is refused
        causal_lm.train(glm_params(chatglm, pass_attention_mask=True), inputs, tmp_path / "masked")


@pytest.mark.llm_env
@needs_llm_env
def test_blip2_over_chatglm_puts_the_image_into_input_ids(chatglm, tmp_path):
    from tiktalk.baselines import blip2, causal_lm

    ckpt = write_blip2_checkpoint(tmp_path)
    inputs = make_dataset(tmp_path, tokenizer=chatglm)
    inputs.extra_features = [write_image_shard(tmp_path / "s00000.image.npz",
                                               blip2_image_tokens(ckpt, video_ids(inputs)))]
    llm_dir = tmp_path / "chatglm"
    causal_lm.train(dict(glm_params(chatglm), train=dict(TRAIN, epochs=1)), inputs, llm_dir)
    params = {"train": dict(TRAIN, epochs=1), "llm_dir": str(llm_dir), "predict_batch_size": 2,
              "model": {"pretrained": {"name_or_path": str(ckpt)}, "mode": "video", "n_frames": 2,
                        "num_beams": 2, "max_new_tokens": 4}}
    out = tmp_path / "blip2"
    blip2.train(params, inputs, out)
    model, tok, llm_cfg = blip2.load_model(out, params)
    assert model.llm_input == "placeholders" and model.injector.token_id == tok.unk_token_id
    assert not any(k.startswith("llm.") for k in saved_tensors(out)["last.pt"])
    blip2.predict(params, out, inputs, "test", tmp_path / "p.jsonl")
    responses = check_predictions(tmp_path / "p.jsonl", inputs)
    blip2.predict(dict(params, predict_batch_size=1), out, inputs, "test", tmp_path / "q.jsonl")
    assert check_predictions(tmp_path / "q.jsonl", inputs) == responses
    # ranking scores through the placeholders equal the training loss of the same pair
    ll, nt = blip2.score_candidates(params, out, inputs, "test", candidates(inputs), batch_size=3)
    row = read_lines(inputs.dialogues["test"])[0]
    index = blip2.ImageTokenIndex(inputs.extra_features)
    ex = blip2.make_examples([dict(row, responses=["是绿色的"])], tok, llm_cfg, index, with_target=True)[0]
    with torch.no_grad():
        loss = model(blip2.collate([ex], tok.pad_token_id, blip2.VideoTokens(index, "video", 2, inputs.seed)))
    assert -ll[0, 1] / nt[0, 1] == pytest.approx(loss.item(), rel=1e-4)
    forced = {**params, "model": {**params["model"], "llm_input": "inputs_embeds"}}
    with pytest.raises(ValueError, match="inputs_embeds alone"):
        blip2.train(forced, inputs, tmp_path / "embeds")


# -- the configs -----------------------------------------------------------------------------
def _deep_merge(a: dict, b: dict) -> dict:
    for k, v in b.items():
        a[k] = _deep_merge(dict(a[k]), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a


def test_paper_llm_rows_and_the_qwen2_overlay_build_their_settings():
    """config/llm-qwen2.yaml, given after the paper config, adds rows and changes none."""
    import yaml

    from tiktalk.models.blip2 import Blip2Config
    from tiktalk.models.causal_lm import CausalLMConfig
    from tiktalk.settings import from_mapping
    from tiktalk.training.trainer import TrainConfig

    root = Path(__file__).resolve().parents[1]
    paper = yaml.safe_load((root / "config" / "tiktalk.yaml").read_text())
    overlay = yaml.safe_load((root / "config" / "llm-qwen2.yaml").read_text())
    rows = _deep_merge(yaml.safe_load((root / "config" / "tiktalk.yaml").read_text()), overlay)["baselines"]
    assert {k: rows[k] for k in paper["baselines"]} == paper["baselines"]
    added = set(rows) - set(paper["baselines"])
    assert added == {"qwen2", "blip2_img_qwen2", "blip2_video_qwen2"}
    paper_labels = {r["label"] for r in paper["baselines"].values()}
    assert all("(ours)" in rows[k]["label"] and rows[k]["label"] not in paper_labels for k in added)
    for name, row in rows.items():
        if row["family"] not in ("causal_lm", "blip2"):
            continue
        TrainConfig.from_dict(row["params"]["train"])
        if row["family"] == "causal_lm":
            cfg = from_mapping(CausalLMConfig, row["params"]["model"], name)
            assert cfg.torch_dtype == "float16" and cfg.gradient_checkpointing, name     # V100: no bf16
        else:
            cfg = from_mapping(Blip2Config, row["params"]["model"], name)
            # the Q-Former of the checkpoint whose vision tower made the image tokens
            assert cfg.pretrained.name_or_path == paper["media"]["image_encoder"]["name_or_path"], name
    artifacts = _deep_merge(dict(paper["weights"]), overlay["weights"])["artifacts"]
    assert artifacts["blip2-opt-2.7b"]["revision"] == "51572668da0eb669e01a189dc22abe6088589a24"
    assert artifacts["chatglm-6b"]["revision"] == "v1.1.0"
    assert artifacts["qwen2-7b-instruct"]["hub"] == "Qwen/Qwen2-7B-Instruct"
    glm = from_mapping(CausalLMConfig, rows["chatglm"]["params"]["model"])
    assert glm.base_model == "weights/chatglm-6b" and glm.trust_remote_code and not glm.pass_attention_mask
    qwen = from_mapping(CausalLMConfig, rows["qwen2"]["params"]["model"])
    assert qwen.base_model == "weights/qwen2-7b-instruct" and not qwen.trust_remote_code
