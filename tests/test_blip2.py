"""BLIP-2: frame selection, the Q-Former (transformers' classes), how the queries reach the LLM
(inputs_embeds / VisualGLM placeholders), the image encoder, memory-mapped image tokens, and the
family end to end. Tests marked ``llm_env`` also run under the LLM env's pins (test_llm_env.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tiktalk.models.blip2 import Blip2Config, Blip2Dialogue, frame_indices, select_frames
from tiktalk.models.embedding_injection import EmbeddingInjector
from tiktalk.settings import from_mapping

torch.set_num_threads(1)

QF = dict(num_queries=4, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
          dropout=0.0, attention_dropout=0.0)
WIDTH = 12


def tiny_llm(vocab=40, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    conf = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                       pad_token_id=0, bos_token_id=2, eos_token_id=3)
    return LlamaForCausalLM(conf)


def blip2(llm, seed=0, **model):
    cfg = from_mapping(Blip2Config, {"qformer": QF, **model})
    torch.manual_seed(seed)
    return Blip2Dialogue(cfg, llm, WIDTH, image_token_id=1)


# -- frame selection ------------------------------------------------------------------------
def test_select_frames_img_is_seeded_per_video_and_video_averages():
    frames = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    a = select_frames(frames, "img", 4, seed=1, video_id="v1")
    assert a.shape == (2, 3) and any(np.array_equal(a, f) for f in frames)
    assert np.array_equal(a, select_frames(frames, "img", 4, seed=1, video_id="v1"))
    picks = {int(select_frames(frames, "img", 4, seed=s, video_id="v1")[0, 0]) for s in range(30)}
    assert len(picks) > 1                                        # it is random over seeds
    v = select_frames(frames, "video", 3, seed=1, video_id="v1")
    assert np.allclose(v, frames[[0, 2, 5]].mean(axis=0))
    assert np.allclose(select_frames(frames, "video", 10, 0, "x"), frames.mean(axis=0))
    assert select_frames(frames[:0], "img", 4, 0, "x") is None
    assert frame_indices(6, "video", 3, 0, "x") == [0, 2, 5] and frame_indices(0, "img", 3, 0, "x") == []


def test_config_needs_exactly_one_q_former_source_and_known_keys():
    with pytest.raises(ValueError, match="exactly one of `pretrained`"):
        from_mapping(Blip2Config, {})
    with pytest.raises(ValueError, match="exactly one of `pretrained`"):
        from_mapping(Blip2Config, {"qformer": QF, "pretrained": {"name_or_path": "x"}})
    with pytest.raises(ValueError, match=r"m\.qformer: unknown key 'num_query'; did you mean 'num_queries'\?"):
        from_mapping(Blip2Config, {"qformer": {"num_query": 3}}, "m")
    with pytest.raises(ValueError, match="llm_input must be one of"):
        from_mapping(Blip2Config, {"qformer": QF, "llm_input": "embeds"})


# -- the model -------------------------------------------------------------------------------
def _batch(n_img=5):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 40, (3, 7), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[2, 5:] = 0
    labels[2, 5:] = -100
    return {"image_embeds": torch.randn(3, n_img, WIDTH, generator=g),
            "image_mask": torch.ones(3, n_img, dtype=torch.bool),
            "input_ids": ids, "attention_mask": mask, "labels": labels}


def _train_steps(model, batch, steps: int, lr: float = 1e-2) -> tuple[float, float]:
    """(loss before, loss after) ``steps`` AdamW steps on ``batch`` over the trainable weights."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    first = model(batch).item()
    for _ in range(steps):
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
    return first, loss.item()


@pytest.mark.llm_env
@pytest.mark.parametrize("llm_input", ["inputs_embeds", "placeholders"])
def test_only_queries_qformer_and_projection_train_and_state_holds_nothing_of_the_llm(llm_input):
    llm = tiny_llm()
    model = blip2(llm, llm_input=llm_input)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"qformer", "query_tokens", "llm_proj"}
    before = {k: v.clone() for k, v in llm.state_dict().items()}
    queries_before = model.query_tokens.detach().clone()
    batch = _batch()
    model.train()
    assert not llm.training
    first, last = _train_steps(model, batch, 25)
    assert last < first
    assert not torch.equal(model.query_tokens, queries_before)
    for k, v in llm.state_dict().items():
        assert torch.equal(v, before[k]), k
    state = model.state_dict()                       # what the trainer checkpoints
    assert set(state) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(k.startswith("llm.") for k in state)
    fresh = blip2(tiny_llm(), seed=5, llm_input=llm_input)
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(batch), model.eval()(batch))
    with pytest.raises(KeyError, match="missing"):
        fresh.load_state_dict({k: v for k, v in state.items() if k != "query_tokens"})


def test_instruction_aware_config_needs_a_random_q_former():
    assert from_mapping(Blip2Config, {"qformer": QF, "instruction_aware": True}).instruction_aware
    with pytest.raises(ValueError, match="instruction_aware needs a random Q-Former"):
        from_mapping(Blip2Config, {"pretrained": {"name_or_path": "x"}, "instruction_aware": True})


@pytest.mark.parametrize("llm_input", ["inputs_embeds", "placeholders"])
def test_instruction_aware_queries_read_the_prompt_never_the_response(llm_input):
    # not llm_env: transformers 4.33's Q-Former has no text branch (build_qformer says so)
    """InstructBLIP's queries: the prompt's tokens (not its padding, never the response being
    learned) change them; they train, save and load with text_proj; generation batches like rows."""
    model = blip2(tiny_llm(), llm_input=llm_input, instruction_aware=True)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"qformer", "query_tokens", "llm_proj", "text_proj"}
    img = torch.randn(1, 5, WIDTH)
    ids = torch.tensor([[2, 7, 8, 9, 3, 0]])
    mask = torch.tensor([[True, True, True, True, True, False]])
    with torch.no_grad():
        q = model.eval().query_embeds(img, None, ids, mask)
        other_pad = model.query_embeds(img, None, torch.tensor([[2, 7, 8, 9, 3, 33]]), mask)
        other_prompt = model.query_embeds(img, None, torch.tensor([[2, 7, 11, 9, 3, 0]]), mask)
    assert torch.allclose(q, other_pad, atol=1e-6)
    assert not torch.allclose(q, other_prompt, atol=1e-4)
    with pytest.raises(ValueError, match="needs prompt_ids"):
        model.query_embeds(img)

    seen = []
    read = model.query_embeds
    model.query_embeds = lambda *a: seen.append(read(*a)) or seen[-1]
    batch = _batch()
    other = dict(batch, input_ids=batch["input_ids"].clone())
    other["input_ids"][:, 4:] = 5                       # another response after the same prompt
    with torch.no_grad():
        model(batch), model(other)
    assert torch.equal(seen[0], seen[1])
    del model.query_embeds

    model.train()
    first, last = _train_steps(model, batch, 15)
    assert last < first
    fresh = blip2(tiny_llm(), seed=5, llm_input=llm_input, instruction_aware=True)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh.eval()(batch), model.eval()(batch))

    prompts = [[2, 7, 8, 9, 3], [2, 11, 3]]
    imgs = torch.randn(2, 5, WIDTH) * 3
    both = model.generate(imgs, None, prompts, pad_id=0, eos_id=3)
    for i in range(2):
        assert model.generate(imgs[i:i + 1], None, prompts[i:i + 1], 0, 3) == [both[i]]


@pytest.mark.llm_env
def test_placeholders_feed_the_llm_exactly_what_inputs_embeds_do():
    """VisualGLM's path (ids + replaced embeddings) equals the native one on a llama."""
    emb, ph = blip2(tiny_llm(), llm_input="inputs_embeds").eval(), blip2(tiny_llm(), llm_input="placeholders").eval()
    ph.load_state_dict(emb.state_dict())
    batch = _batch()
    with torch.no_grad():
        assert torch.allclose(emb(batch), ph(batch), atol=1e-5)
    prompts = [[2, 7, 8, 9, 3], [2, 11, 3]]
    img = torch.randn(2, 5, WIDTH) * 3
    out = ph.generate(img, None, prompts, pad_id=0, eos_id=3)
    assert out == emb.generate(img, None, prompts, pad_id=0, eos_id=3)
    assert ph.injector.replaced_calls == 1     # the prompt pass; cached steps leave embeddings alone


def test_injector_replaces_only_the_prompt_call_and_refuses_misaligned_ids():
    emb = torch.nn.Embedding(10, 4)
    inj = EmbeddingInjector(emb, token_id=1)
    values = torch.full((2, 2, 4), 7.0)
    ids = torch.tensor([[1, 1, 5, 6], [0, 1, 1, 6]])
    with inj.inject(values, torch.tensor([[0, 1], [1, 2]])):
        out = emb(ids)
        assert torch.equal(out[0, :2], values[0]) and torch.equal(out[1, 1:3], values[1])
        assert torch.equal(out[0, 2:], emb.weight[[5, 6]]) and torch.equal(out[1, 0], emb.weight[0])
        step = torch.tensor([[4], [5]])
        assert torch.equal(emb(step), emb.weight[step])                               # a cached step
        beams = emb(ids.repeat_interleave(3, 0))                                      # 3 beams a row
        assert torch.equal(beams[4, 1:3], values[1])
        with pytest.raises(ValueError, match="no longer line up"):
            emb(torch.tensor([[1, 2, 5, 6], [0, 1, 1, 6]]))
        assert inj.replaced_calls == 2
    assert torch.equal(emb(ids), emb.weight[ids])                                     # disarmed


@pytest.mark.llm_env
@pytest.mark.parametrize("llm_input", ["inputs_embeds", "placeholders"])
def test_generation_batches_like_single_rows_and_uses_the_image(llm_input):
    model = blip2(tiny_llm(seed=3), llm_input=llm_input, num_beams=3, max_new_tokens=5).eval()
    prompts = [[2, 7, 8, 9, 3], [2, 11, 3]]
    img = torch.randn(2, 5, WIDTH) * 3
    both = model.generate(img, None, prompts, pad_id=0, eos_id=3)
    assert len(both) == 2
    for i in range(2):
        assert model.generate(img[i:i + 1], None, prompts[i:i + 1], 0, 3) == [both[i]]
    # the soft prompt reaches the LLM: other image features change the first-step scores
    llm = model.llm
    with torch.no_grad():
        q1, q2 = model.query_embeds(img[:1]), model.query_embeds(-img[:1])
        emb = llm.get_input_embeddings()(torch.tensor([prompts[0]]))
        l1 = llm(inputs_embeds=torch.cat([q1, emb], 1)).logits[0, -1]
        l2 = llm(inputs_embeds=torch.cat([q2, emb], 1)).logits[0, -1]
    assert not torch.allclose(l1, l2)


@pytest.mark.llm_env
def test_checkpointed_llm_trains_in_train_mode_without_dropout_and_matches_eval():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=2, attention_dropout=0.5))
    cfg = from_mapping(Blip2Config, {"qformer": QF})
    model = Blip2Dialogue(cfg, llm, WIDTH, image_token_id=1, checkpointing=True)
    batch = _batch()
    with torch.no_grad():
        evaluated = model.eval()(batch)
    model.train()
    assert llm.training                                    # transformers checkpoints in training mode
    loss = model(batch)
    assert torch.allclose(loss, evaluated, atol=1e-6)      # ... with every dropout at 0
    loss.backward()
    assert model.query_tokens.grad is not None and model.query_tokens.grad.abs().sum() > 0


# -- image encoder ---------------------------------------------------------------------------
VIT = dict(image_size=32, patch_size=8, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
           intermediate_size=24)


def test_demo_vit_features_are_seeded_and_pooling_works():
    from tiktalk.media.image_encoder import ImageEncoderConfig, extract_image_features

    cfg = {"kind": "vit", "name_or_path": None, "vit_config": VIT, "mean": [0.5] * 3, "std": [0.5] * 3}
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 50, 3), dtype=np.uint8)
    a = extract_image_features(frames, cfg)
    assert a.shape == (3, 17, 12) and a.dtype == np.float32
    assert np.array_equal(a, extract_image_features(frames, cfg))
    p = extract_image_features(frames, dict(cfg, pooled=True))
    assert p.shape == (3, 1, 12) and np.allclose(p[:, 0], a[:, 0], atol=1e-5)
    assert not np.allclose(a[0], a[1])
    with pytest.raises(ValueError, match="unknown key 'n_frame'"):
        ImageEncoderConfig.from_dict({"kind": "vit", "vit_config": VIT, "n_frame": 3})


def test_blip2_vision_loader_reads_only_the_vision_tower(tmp_path):
    from transformers import Blip2Config as HFBlip2Config, Blip2ForConditionalGeneration, OPTConfig

    from tiktalk.media.image_encoder import ImageEncoder, ImageEncoderConfig

    text = OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2, vocab_size=50,
                     word_embed_proj_dim=16, max_position_embeddings=32)
    conf = HFBlip2Config(vision_config=dict(VIT, hidden_size=16, intermediate_size=32),
                         qformer_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32, encoder_hidden_size=16),
                         text_config=text.to_dict(), num_query_tokens=2)
    torch.manual_seed(0)
    full = Blip2ForConditionalGeneration(conf).eval()
    with torch.no_grad():
        for p in full.vision_model.parameters():
            p.add_(torch.randn_like(p) * 0.5)          # far from any default init
    full.save_pretrained(tmp_path / "blip2")
    enc = ImageEncoder(ImageEncoderConfig.from_dict({"kind": "blip2_vision", "name_or_path": str(tmp_path / "blip2")}))
    assert (enc.dim, enc.tokens_per_frame, enc.image_size) == (16, 17, 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = full.vision_model(pixel_values=x).last_hidden_state
        got = enc.model(pixel_values=x).last_hidden_state
    assert torch.allclose(ref, got, atol=1e-5)


# (the image-feature shard written by the media shard job: tests/test_media_shard.py)


# -- the family end to end -------------------------------------------------------------------
def _image_shard(path: Path, video_ids: list[str], t: int = 5, d: int = 12) -> Path:
    """An image-encoder shard: video ``*_c`` has 3 frames whose tokens encode colour c."""
    from tiktalk.formats import FEATURES_VERSION

    rng = np.random.default_rng(0)
    fo, rows = [0], []
    for j, vid in enumerate(video_ids):
        n = 0 if j == 2 else 3
        f = rng.normal(0, 0.1, (n, t, d)).astype(np.float32)
        f[..., 0] += float(vid.rsplit("_", 1)[1]) - 1.0
        rows.append(f.reshape(-1, d))
        fo.append(fo[-1] + n * t)
    np.savez(path, version=np.int64(FEATURES_VERSION), video_ids=np.array(video_ids),
             frame_offsets=np.array(fo, dtype=np.int64), frames=np.concatenate(rows).astype(np.float16),
             audio_offsets=np.zeros(len(video_ids) + 1, dtype=np.int64), audio=np.zeros((0, 0), np.float16),
             tokens_per_frame=np.int64(t), encoder=np.array("test"))
    return path


# -- image tokens read in place --------------------------------------------------------------
def test_image_token_index_reads_the_shards_in_place_and_only_asked_frames(tmp_path):
    from tiktalk.media.image_tokens import ImageTokenIndex
    from tiktalk.media.store import NpzRows

    paths = [_image_shard(tmp_path / "a.npz", ["a_0", "b_1", "c_2"]),
             _image_shard(tmp_path / "b.npz", ["d_0", "e_1", "f_2"])]
    index = ImageTokenIndex(paths)
    assert isinstance(index._rows[0], NpzRows) and index.layout == "frames"
    assert (index.tokens_per_frame, index.dim, index.n_frames("c_2"), index.n_frames("e_1")) == (5, 12, 0, 3)
    assert index.video_ids == ["a_0", "b_1", "c_2", "d_0", "e_1", "f_2"] and len(index) == 6
    with np.load(paths[1]) as z:                          # e_1: rows 15..29 of the second shard
        whole = z["frames"][15:30].astype(np.float32).reshape(3, 5, 12)
    assert np.array_equal(index.frames("e_1", [2, 0]), whole[[2, 0]])
    assert np.array_equal(index.tokens("e_1"), whole) and index.tokens("c_2").shape == (0, 5, 12)
    with pytest.raises(KeyError, match="'zz' is in no image-feature shard"):
        index.n_frames("zz")
    with pytest.raises(IndexError, match="has 3 token blocks, asked for block 3"):
        index.frames("a_0", [3])
    with pytest.raises(ValueError, match="already present in another shard"):
        ImageTokenIndex(paths + [paths[0]])
    with np.load(paths[0]) as z:
        np.savez_compressed(tmp_path / "c.npz", **{k: z[k] for k in z.files})
    with pytest.raises(ValueError, match="compressed and cannot be read in place"):
        ImageTokenIndex([tmp_path / "c.npz"])


def test_views_shards_hold_what_the_rows_read_and_refuse_other_settings(tmp_path):
    """A ``views`` shard stores per video the ``img`` frame of the run's seed and the ``video``
    mean of n_frames frames: reading them gives exactly what selecting from every frame gives,
    in 2 token blocks instead of F; a row with other n_frames or seed is refused."""
    from tiktalk.media.image_tokens import ImageTokenIndex
    from tiktalk.media.image_views import video_views
    from tiktalk.media.store import write_feature_shard

    frames_path = _image_shard(tmp_path / "frames.npz", ["a_0", "b_1", "c_2"])
    frames = ImageTokenIndex([frames_path])
    t, d = frames.tokens_per_frame, frames.dim
    rows = [video_views(frames.tokens(v), 2, 7, v) for v in frames.video_ids]
    assert [len(r) for r in rows] == [2 * t, 2 * t, 0]                 # c_2 has no frames
    write_feature_shard(tmp_path / "views.npz", frames.video_ids, rows, None, d, 0,
                        {"tokens_per_frame": np.int64(t), "encoder": np.array("test"),
                         "views": np.array(["img", "video"]), "view_frames": np.int64(2),
                         "view_seed": np.int64(7)})
    views = ImageTokenIndex([tmp_path / "views.npz"])
    assert (views.layout, views.view_frames, views.view_seed) == ("views", 2, 7)
    for v in ("a_0", "b_1"):
        for mode in ("img", "video"):
            want = frames.video_tokens(v, mode, 2, 7)                   # selected from all frames
            np.testing.assert_allclose(views.video_tokens(v, mode, 2, 7), want, atol=2e-3)
    assert views.video_tokens("c_2", "video", 2, 7) is None
    with pytest.raises(ValueError, match="views of 2 frames with seed 7, the row asks for 3 frames"):
        views.video_tokens("a_0", "video", 3, 7)
    with pytest.raises(ValueError, match="store views, not frames"):
        views.n_frames("a_0")
    with pytest.raises(ValueError, match="layout .* differs"):
        ImageTokenIndex([tmp_path / "views.npz", frames_path])
    # a shard of one row's view only
    only = [video_views(frames.tokens(v), 2, 7, v, ["video"]) for v in frames.video_ids]
    write_feature_shard(tmp_path / "video.npz", frames.video_ids, only, None, d, 0,
                        {"tokens_per_frame": np.int64(t), "encoder": np.array("test"),
                         "views": np.array(["video"]), "view_frames": np.int64(2),
                         "view_seed": np.int64(7)})
    video = ImageTokenIndex([tmp_path / "video.npz"])
    np.testing.assert_array_equal(video.video_tokens("b_1", "video", 2, 7), views.video_tokens("b_1", "video", 2, 7))
    with pytest.raises(ValueError, match=r"hold the views \['video'\], not 'img'"):
        video.video_tokens("b_1", "img", 2, 7)


@pytest.mark.parametrize("mode", ["img", "video"])
def test_blip2_family_train_predict_over_trained_llm(tmp_path, mode):
    from test_baselines_text import CAUSAL, TRAIN, check_predictions, make_dataset, read_lines

    from tiktalk.baselines import blip2, causal_lm

    inputs = make_dataset(tmp_path)
    llm_dir = tmp_path / "llm"
    causal_lm.train({"train": dict(TRAIN, epochs=1), "model": CAUSAL}, inputs, llm_dir)
    vids = [r["video_id"] for s in ("train", "val", "test") for r in read_lines(inputs.dialogues[s])]
    inputs.extra_features = [_image_shard(tmp_path / "img.npz", vids)]
    llm_before = {k: v.clone() for k, v in causal_lm.load_finetuned(llm_dir, merge=True)[0].state_dict().items()}
    params = {"train": TRAIN, "llm_dir": str(llm_dir), "predict_batch_size": 2,
              "model": {"mode": mode, "n_frames": 2, "num_beams": 2, "max_new_tokens": 5,
                        "standardize_features": mode == "video", "ln_vision": True,
                        "qformer": {"num_queries": 3, "hidden_size": 16, "num_layers": 2, "num_heads": 2,
                                    "intermediate_size": 32}}}
    out = tmp_path / "blip2"
    blip2.train(params, inputs, out)
    blob = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert blob["encoder_width"] == 12                                 # taken from the features
    saved = {k.split(".")[0] for k in blob["state_dict"]}
    assert saved == {"ln_vision", "qformer", "query_tokens", "llm_proj"} | ({"feature_norm"} if mode == "video" else set())
    last = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["model"]
    assert set(last) == set(blob["state_dict"])                         # the LLM is in neither
    if mode == "video":  # statistics of the training videos' tokens, saved and reloaded
        assert blob["state_dict"]["feature_norm.std"].ne(1.0).all()
        assert blob["state_dict"]["feature_norm.mean"].abs().sum() > 0
    # the LLM directory is untouched and the loaded model's LLM equals it
    model, _, _ = blip2.load_model(out, params)
    if mode == "video":
        assert torch.equal(model.feature_norm.mean, blob["state_dict"]["feature_norm.mean"])
    for k, v in model.llm.state_dict().items():
        assert torch.equal(v, llm_before[k]), k
    assert all(not p.requires_grad for p in model.llm.parameters())
    blip2.predict(params, out, inputs, "test", tmp_path / "p.jsonl")
    responses = check_predictions(tmp_path / "p.jsonl", inputs)
    blip2.predict(dict(params, predict_batch_size=1), out, inputs, "test", tmp_path / "q.jsonl")
    assert check_predictions(tmp_path / "q.jsonl", inputs) == responses
    with pytest.raises(ValueError, match="architecture differs from the trained one"):
        blip2.load_model(out, {**params, "model": {**params["model"], "qformer": {
            **params["model"]["qformer"], "num_queries": 4}}})
