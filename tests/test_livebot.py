"""Livebot: model shapes/masking/decoding, and the family adapter end to end on tiny data."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tiktalk.models.livebot import Livebot, LivebotConfig
from tiktalk.settings import SettingsError, from_mapping

torch.set_num_threads(1)


def tiny_cfg(**kw) -> LivebotConfig:
    base = dict(vocab_size=30, feature_dim=6, hidden=16, ff=32, heads=2, blocks=2, dropout=0.0,
                max_positions=64, pad_id=0, bos_id=2, eos_id=3)
    base.update(kw)
    return from_mapping(LivebotConfig, base)


def tiny_batch(b=3, f=4, lc=7, ly=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(b, f, 6, generator=g)
    frame_mask = torch.ones(b, f, dtype=torch.bool)
    frame_mask[0, 2:] = False
    context = torch.randint(5, 30, (b, lc), generator=g)
    context[1, 4:] = 0
    target = torch.randint(5, 30, (b, ly), generator=g)
    target[:, 0] = 2
    target[:, -1] = 3
    target[2, 3:] = 0
    target[2, 2] = 3
    return {"frames": frames, "frame_mask": frame_mask, "context": context, "target": target}


def test_config_rejects_unknown_keys_and_is_immutable():
    with pytest.raises(SettingsError, match="unknown key 'hiden'; did you mean 'hidden'"):
        from_mapping(LivebotConfig, {"vocab_size": 5, "feature_dim": 2, "hiden": 3})
    with pytest.raises(ValueError, match="not divisible by heads"):
        tiny_cfg(hidden=15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_cfg().hidden = 8


def test_forward_loss_and_padding_invariance():
    torch.manual_seed(0)
    model = Livebot(tiny_cfg()).eval()
    batch = tiny_batch()
    loss = model(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # padded frames and context pads must not change anything
    b2 = {k: v.clone() for k, v in batch.items()}
    b2["frames"][0, 2:] = 1000.0
    b2["context"] = torch.cat([batch["context"], torch.zeros(3, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model.token_nll(batch), model.token_nll(b2), atol=1e-5)
    # ... but real frames do
    b3 = {k: v.clone() for k, v in batch.items()}
    b3["frames"][0, 0] += 3.0
    with torch.no_grad():
        assert not torch.allclose(model.token_nll(batch)[0], model.token_nll(b3)[0])


def test_decoder_is_causal():
    torch.manual_seed(0)
    model = Livebot(tiny_cfg()).eval()
    batch = tiny_batch()
    memory = model.encode(batch)
    y = batch["target"][:, :-1]
    y2 = y.clone()
    y2[:, 3:] = 7
    with torch.no_grad():
        a, b = model.decode(y, memory), model.decode(y2, memory)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_greedy_generate_stops_and_matches_single_rows():
    torch.manual_seed(1)
    model = Livebot(tiny_cfg()).eval()
    batch = tiny_batch()
    out = model.generate(batch, max_len=5)
    assert len(out) == 3 and all(len(r) <= 5 for r in out)
    assert all(3 not in r and 0 not in r for r in out)
    for i in range(3):
        single = {k: v[i:i + 1] for k, v in batch.items()}
        assert model.generate(single, max_len=5) == [out[i]]


def test_training_lowers_loss_and_learns_the_video():
    """A target token decided by the video alone is learned (the video path is wired)."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = Livebot(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    b = 16
    g = torch.Generator().manual_seed(0)
    colour = torch.randint(0, 2, (b,), generator=g)
    frames = torch.zeros(b, 3, 6)
    frames[:, :, 0] = colour[:, None].float() * 2 - 1
    batch = {"frames": frames, "frame_mask": torch.ones(b, 3, dtype=torch.bool),
             "context": torch.full((b, 4), 9),
             "target": torch.stack([torch.tensor([2, 10 + int(c), 3]) for c in colour])}
    first = model(batch).item()
    for _ in range(60):
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.3
    model.eval()
    pred = model.generate(batch, max_len=3)
    assert [p[:1] for p in pred] == [[10 + int(c)] for c in colour]


def test_token_embeddings_tell_tokens_apart_more_than_positions_do():
    """At a real vocabulary size the embedded tokens must not be drowned by the sinusoidal
    positions (lancopku/livebot keeps nn.Embedding's N(0, 1)): two different tokens at one
    position lie further apart than one token at two positions. At Xavier's scale (std ~0.03
    for 2000 x 64) the demo Livebot answered every text prompt with the same sentence."""
    torch.manual_seed(0)
    model = Livebot(tiny_cfg(vocab_size=2000, hidden=64, ff=128)).eval()
    assert 0.9 < model.embedding.weight.std().item() < 1.1          # N(0, 1)
    fan = model.output_layer.weight.shape
    bound = (6 / (fan[0] + fan[1])) ** 0.5                          # the stacks: Xavier
    assert model.output_layer.weight.abs().max().item() <= bound + 1e-6
    with torch.no_grad():
        tokens = model.embed(torch.arange(10, 30).view(20, 1))[:, 0]       # 20 tokens, position 0
        places = model.embed(torch.full((1, 20), 10))[0]                    # token 10, 20 positions
    between_tokens = torch.pdist(tokens).mean().item()
    between_positions = torch.pdist(places).mean().item()
    assert between_tokens > 1.5 * between_positions, (between_tokens, between_positions)


# -- family adapter --------------------------------------------------------------------------
def test_livebot_family_train_predict_roundtrip(tmp_path):
    from test_baselines_text import make_dataset

    from tiktalk.baselines import livebot
    from tiktalk.io import read_jsonl

    inputs = make_dataset(tmp_path, with_features=True)
    params = {
        "train": {"epochs": 3, "batch_size": 4, "lr": 3e-3, "device": "cpu", "log_every": 1000},
        "model": {"hidden": 16, "ff": 32, "heads": 2, "blocks": 1, "dropout": 0.0},
        "max_frames": 4, "context_turns": 3, "max_context_len": 40, "max_len": 8,
    }
    out = tmp_path / "model"
    livebot.train(params, inputs, out)
    assert (out / "model.pt").exists()
    # the saved weights are the trained ones: they fit the training data better than a fresh init
    model, tok = livebot.load_model(out)
    from tiktalk.media.store import FeatureStore

    ex = livebot.make_examples(read_jsonl(inputs.dialogues["train"]), tok, FeatureStore(inputs.features),
                               livebot.LivebotParams(**{k: v for k, v in params.items()}),
                               with_target=True)
    batch = livebot.collate(ex, tok.pad_token_id)
    torch.manual_seed(0)
    fresh = Livebot(model.cfg).eval()
    with torch.no_grad():
        assert model(batch).item() < fresh(batch).item() - 0.5
    assert batch["frame_mask"].sum(1).min() >= 1              # the frameless video got a zero frame
    pred = tmp_path / "pred.jsonl"
    livebot.predict(params, out, inputs, "test", pred)
    rows = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines()]
    table = [json.loads(line) for line in inputs.dialogues["test"].read_text(encoding="utf-8").splitlines()]
    assert [r["dialogue_id"] for r in rows] == [t["dialogue_id"] for t in table]
    assert all(isinstance(r["response"], str) for r in rows)
    pred2 = tmp_path / "pred2.jsonl"
    livebot.predict(params, out, inputs, "test", pred2)
    assert pred.read_text(encoding="utf-8") == pred2.read_text(encoding="utf-8")
