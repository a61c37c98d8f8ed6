"""Beam search, the Maria model (six Table 3 configs) and its baseline adapter."""

from __future__ import annotations

import dataclasses
import math
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import torch

from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.families.registry import get_family
from tiktalk.data.dialogues import read_dialogues
from tiktalk.knowledge.flows import format_flows
from tiktalk.formats import FEATURES_VERSION
from tiktalk.io import read_jsonl, write_jsonl
from tiktalk.models.beam import beam_search, expand_for_beams, greedy_search, sample_top_k
from tiktalk.models.maria import (
    TYPE_CONTEXT, TYPE_KNOWLEDGE, TYPE_RESPONSE, Maria, MariaConfig, MariaDecode,
    build_backbone, build_example, collate, tokenizer_fields,
)
from tiktalk.settings import SettingsError, from_mapping
from tiktalk.models.tokenizer import train_wordpiece

torch.set_num_threads(1)

# ------------------------------------------------------------------------------------------
# beam search on a hand-made step function
# vocab: 0 = EOS, 1 = A, 2 = B, 3 = C.  P(A)=.6 P(B)=.4; after A: C=.4, A=.3, B=.3;
# after B: EOS=.9; after A C: EOS=1.  Greedy: A C EOS (p=.24); best: B EOS (p=.36).
TABLE = {
    (): [0.0, 0.6, 0.4, 0.0],
    (1,): [0.0, 0.3, 0.3, 0.4],
    (2,): [0.9, 0.05, 0.05, 0.0],
    (1, 3): [1.0, 0.0, 0.0, 0.0],
}


def toy_step(tokens, state):
    rows = []
    for row in tokens.tolist():
        p = TABLE.get(tuple(row), [1.0, 0.0, 0.0, 0.0])
        rows.append([math.log(x) if x > 0 else -1e9 for x in p])
    return torch.tensor(rows), state


def test_beam_finds_the_best_sequence_greedy_does_not():
    assert greedy_search(toy_step, None, 1, max_len=5, eos_id=0) == [[1, 3]]
    assert beam_search(toy_step, None, 1, 2, max_len=5, eos_id=0, length_penalty=0.0) == [[2]]


def test_length_penalty_prefers_longer_when_large():
    # normalised: log(.36)/2**lp vs log(.24)/3**lp; lp=1: -0.511 < -0.476 -> A C wins
    assert beam_search(toy_step, None, 1, 2, max_len=5, eos_id=0, length_penalty=1.0) == [[1, 3]]


def test_repetition_penalty_and_min_len():
    logits = torch.tensor([0.0, 2.0, 1.5, 1.0])
    step = lambda tok, st: (logits.expand(tok.shape[0], 4).clone(), st)  # noqa: E731
    assert greedy_search(step, None, 1, max_len=3, eos_id=0, min_len=3) == [[1, 1, 1]]
    # CTRL penalty 3 on the logits of used tokens: 2.0 -> .67, 1.5 -> .5, so 1, 2, 3
    assert greedy_search(step, None, 1, max_len=3, eos_id=0, min_len=3,
                         repetition_penalty=3.0) == [[1, 2, 3]]
    assert greedy_search(step, None, 1, max_len=3, eos_id=0, banned_ids=[1], min_len=3) == [[2, 2, 2]]


def test_beam_is_exhaustive_when_wide_and_batched():
    V, L = 3, 3
    g = torch.Generator().manual_seed(0)
    tables = [torch.log_softmax(torch.randn(V ** L * 4, V, generator=g), -1) for _ in range(2)]

    def key(row):
        return sum((t + 1) * (V + 1) ** i for i, t in enumerate(row)) % (V ** L * 4)

    def step(tokens, state):
        return torch.stack([tables[int(b)][key(r)] for r, b in zip(tokens.tolist(), state)]), state

    def brute(b, lp):
        best, best_seq = -1e18, None
        for n in range(1, L + 1):
            for seq in product(range(V), repeat=n):
                if 0 in seq[:-1] or (seq[-1] != 0 and n < L):  # finished: EOS or max_len
                    continue
                s = sum(float(tables[b][key(list(seq[:i]))][seq[i]]) for i in range(n))
                sc = s / n ** lp
                if sc > best:
                    best, best_seq = sc, [t for t in seq if t != 0]
        return best_seq

    K = V ** L
    state = expand_for_beams(torch.tensor([0, 1]), K)
    for lp in (0.0, 0.3, 1.0):
        got = beam_search(step, state, 2, K, max_len=L, eos_id=0, length_penalty=lp)
        assert got == [brute(0, lp), brute(1, lp)]


def test_top_k_sampling_seeded_and_restricted():
    logits = torch.tensor([-5.0, 1.0, 0.9, -3.0, -4.0])
    step = lambda tok, st: (logits.expand(tok.shape[0], 5).clone(), st)  # noqa: E731
    a = sample_top_k(step, None, 4, 10, eos_id=0, top_k=2, generator=torch.Generator().manual_seed(1))
    b = sample_top_k(step, None, 4, 10, eos_id=0, top_k=2, generator=torch.Generator().manual_seed(1))
    assert a == b and all(len(s) == 10 for s in a)
    assert {t for s in a for t in s} <= {1, 2} and {t for s in a for t in s} == {1, 2}
    assert sample_top_k(step, None, 2, 4, eos_id=0, top_k=1) == [[1, 1, 1, 1]] * 2


# ------------------------------------------------------------------------------------------
# a tiny world: tokenizer, dialogue tables, one feature shard, knowledge

COLOURS = ["红色", "绿色", "蓝色"]
VIS_DIM, AUD_DIM = 8, 4


def write_shard(path: Path, videos: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    ids = list(videos)
    fo, ao = [0], [0]
    for v in ids:
        fo.append(fo[-1] + len(videos[v][0]))
        ao.append(ao[-1] + len(videos[v][1]))
    np.savez(path, version=np.int64(FEATURES_VERSION), video_ids=np.array(ids),
             frame_offsets=np.array(fo, dtype=np.int64),
             frames=np.concatenate([videos[v][0] for v in ids]).astype(np.float16).reshape(-1, VIS_DIM),
             audio_offsets=np.array(ao, dtype=np.int64),
             audio=np.concatenate([videos[v][1] for v in ids]).astype(np.float16).reshape(-1, AUD_DIM))


def make_world(root: Path, n_train=60, n_test=9, seed=0) -> BaselineInputs:
    """Response = the colour class of the video's frames; context says nothing about it."""
    rng = np.random.default_rng(seed)
    videos, tables, know = {}, {"train": [], "test": []}, {"train": [], "test": []}
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            c = i % 3
            vid = f"{split}{i:03d}"
            n_frames = 0 if (split == "train" and i == 5) else int(rng.integers(2, 5))  # one failed video
            frames = rng.normal(0, 0.1, (n_frames, VIS_DIM))
            frames[:, c] += 1.0
            n_audio = 0 if i % 4 == 0 else 3                                         # some without audio
            videos[vid] = (frames, rng.normal(0, 1, (n_audio, AUD_DIM)))
            resp = COLOURS[c] if n_frames else "不知道"
            tables[split].append({"dialogue_id": f"d_{vid}", "video_id": vid, "split": split,
                                  "context": ["你看这个视频", "这是什么颜色"],
                                  "responses": [resp] if split == "train" else [resp] * 5})
            know[split].append({"dialogue_id": f"d_{vid}", "flows": [
                {"head": "颜色", "relation": "next_entity", "tail": "好看", "score": 0.9}]})
    root.mkdir(parents=True, exist_ok=True)
    write_shard(root / "s00000.features.npz", videos)
    paths = {}
    for split in tables:
        write_jsonl(root / f"{split}.jsonl", tables[split])
        write_jsonl(root / f"{split}.knowledge.jsonl", know[split])
        paths[split] = root / f"{split}.jsonl"
    texts = [t for rows in tables.values() for r in rows for t in r["context"] + r["responses"]]
    texts += ["颜色 概念流 好看"]
    train_wordpiece(texts, root / "tok", vocab_size=200)
    return BaselineInputs(dialogues=paths, features=[root / "s00000.features.npz"],
                          knowledge={s: root / f"{s}.knowledge.jsonl" for s in tables},
                          tokenizer=root / "tok", seed=seed)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("maria_world"))


TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_response_len=8, max_text_len=40, max_knowledge_len=12, max_frames=4,
            max_audio_frames=3, visual_dim=VIS_DIM, audio_dim=AUD_DIM,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

SIX = {  # Table 3: Maria, Maria+Audio, Maria+C3KG, text, Audio+text, C3KG+text
    "maria": dict(use_visual=True), "maria_audio": dict(use_visual=True, use_audio=True),
    "maria_c3kg": dict(use_visual=True, use_knowledge=True), "text": dict(use_visual=False),
    "audio_text": dict(use_visual=False, use_audio=True),
    "c3kg_text": dict(use_visual=False, use_knowledge=True),
}


def tiny_model(world, **over):
    from tiktalk.models.tokenizer import load_tokenizer

    tok = load_tokenizer(world.tokenizer)
    cfg = from_mapping(MariaConfig, {**TINY, **over, **tokenizer_fields(tok)})
    torch.manual_seed(0)
    mlm, cfg = build_backbone(cfg)
    return Maria(cfg, mlm), tok


def world_batch(world, model, tok, n=4):
    from tiktalk.baselines.maria import MariaDataset, open_feature_store, training_pairs
    from tiktalk.knowledge.flows import read_knowledge

    rows = read_dialogues(world.dialogues["train"])[:n]
    ds = MariaDataset(model.cfg, tok, training_pairs(rows), open_feature_store(world.features),
                      read_knowledge(world.knowledge["train"]))
    return ds.collate([ds[i] for i in range(len(ds))])


@pytest.mark.parametrize("name", sorted(SIX))
def test_six_configs_forward_backward(world, name):
    model, tok = tiny_model(world, **SIX[name])
    batch = world_batch(world, model, tok, n=6)  # rows 4 (no audio) and 5 (failed video) inside
    assert ("visual" in batch) == SIX[name].get("use_visual", True)
    assert ("audio" in batch) == SIX[name].get("use_audio", False)
    has_know = (batch["token_type_ids"] == TYPE_KNOWLEDGE).any().item()
    assert has_know == SIX[name].get("use_knowledge", False)
    loss = model(batch)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    if model.visual_proj is not None:
        assert model.visual_proj.weight.grad.abs().sum() > 0
    if model.audio_proj is not None:
        assert model.audio_proj.weight.grad.abs().sum() > 0
    out = model.generate(batch, MariaDecode(beam_size=2, max_len=4))
    assert len(out) == 6 and all(len(s) <= 4 for s in out)


def test_input_layout_and_token_types(world):
    model, tok = tiny_model(world, use_visual=True, use_audio=True, use_knowledge=True)
    cfg = model.cfg
    know = format_flows([{"head": "颜色", "relation": "next_entity", "tail": "好看"}])
    assert know == "[KNOW] 颜色 概念流 好看"
    ex = build_example(cfg, tok, ["你看这个视频", "这是什么颜色"], "红色", know,
                       np.ones((7, VIS_DIM)), np.zeros((0, AUD_DIM)))
    b = collate([ex], cfg)
    ids, tt = b["input_ids"][0], b["token_type_ids"][0]
    R = cfg.max_response_len
    assert tok.convert_ids_to_tokens(ids[:4].tolist()) == ["[CLS]", "红", "色", "[SEP]"]
    assert (tt[:R] == TYPE_RESPONSE).all() and b["text_mask"][0, 4:R].sum() == 0
    text = tok.convert_ids_to_tokens(ids[R:].tolist())
    assert text[:7] == ["你", "看", "这", "个", "视", "频", "[SEP]"]
    k0 = text.index("[KNOW]")
    assert (tt[R:R + k0] == TYPE_CONTEXT).all() and (tt[R + k0:] == TYPE_KNOWLEDGE).all()
    assert b["visual"].shape == (1, cfg.max_frames, VIS_DIM)  # 7 frames subsampled to 4
    assert b["audio_mask"].sum() == 0                          # no audio stream: masked slot
    # context is truncated from the oldest turn when the text budget is exceeded
    long_ctx = ["一" * 30, "你看这个视频"]
    ex2 = build_example(cfg, tok, long_ctx, "红色", None, None, None)
    assert len(ex2["text_ids"]) <= cfg.max_text_len - R and ex2["text_ids"][-7:-1] == tok(
        "你看这个视频", add_special_tokens=False)["input_ids"]


def test_unilm_attention_mask_structure():
    R, Lt, V = 4, 3, 2
    is_resp = torch.zeros(R + Lt + V, dtype=torch.bool)
    is_resp[:R] = True
    valid = torch.ones(1, R + Lt + V, dtype=torch.bool)
    valid[0, 3] = False          # response pad
    valid[0, R + Lt + 1] = False  # padded frame
    m = Maria.unilm_mask(valid, is_resp)[0]
    assert not m[R:, :R].any()                       # context/visual never see the response
    assert m[R:R + Lt, R:].sum() == Lt * (Lt + V - 1)  # text sees text + valid frames
    for i in range(R):                               # causal inside the response
        assert m[i, :i + 1].tolist() == [True] * min(i + 1, 3) + [False] * max(0, i - 2)
        assert not m[i, i + 1:R].any()
        assert m[i, R:].tolist() == [True] * (Lt + 1) + [False]  # all but the padded frame
    assert not m[:, R + Lt + 1].any()                # padding is never attended


def test_mask_is_used_by_the_encoder(world):
    model, tok = tiny_model(world, use_visual=True)
    model.eval()
    batch = world_batch(world, model, tok, n=2)
    h = model.encode(batch)
    changed = dict(batch)
    ids = batch["input_ids"].clone()
    ids[:, 2] = tok.convert_tokens_to_ids("蓝")      # change response token 2
    changed["input_ids"] = ids
    h2 = model.encode(changed)
    R = model.cfg.max_response_len
    assert torch.allclose(h[:, R:], h2[:, R:], atol=1e-6)   # context/visual unaffected
    assert torch.allclose(h[:, :2], h2[:, :2], atol=1e-6)   # earlier response positions too
    assert not torch.allclose(h[:, 2:4], h2[:, 2:4])        # later positions see it
    # padded frames do not matter
    vis = batch["visual"].clone()
    vis[batch["visual_mask"] == 0] = 100.0
    h3 = model.encode({**batch, "visual": vis})
    T = batch["input_ids"].shape[1]
    keep = torch.cat([batch["text_mask"].bool(), batch["visual_mask"].bool()], 1)
    assert (~keep[:, T:]).any()                             # there is padding to ignore
    assert torch.allclose(h[keep], h3[keep], atol=1e-5)     # outputs at real positions unchanged


def test_masking_probabilities(world):
    model, tok = tiny_model(world, use_visual=False, use_knowledge=True,
                            mask_prob_response=0.7, mask_prob_context=0.15, mask_prob_knowledge=0.15)
    rows = read_dialogues(world.dialogues["train"])
    ex = build_example(model.cfg, tok, ["今天天气很好我们去公园吧你看这个视频这是什么颜色"] * 2,
                       "红色的猫今天天气很好", "[KNOW] 颜色 概念流 好看 [KNOW] 颜色 概念流 好看", None, None)
    assert rows
    b = collate([ex] * 400, model.cfg)
    torch.manual_seed(0)
    _, labels = model.mask_tokens(b)
    sel = labels != -100
    cand = b["maskable"].bool()
    R = model.cfg.max_response_len
    tt = b["token_type_ids"]
    resp = cand.clone()
    resp[:, R:] = False
    rate = lambda region: (sel & region).sum().item() / region.sum().item()  # noqa: E731
    assert abs(rate(resp) - 0.7) < 0.03
    assert abs(rate(cand & (tt == TYPE_CONTEXT) & ~resp) - 0.15) < 0.02
    assert abs(rate(cand & (tt == TYPE_KNOWLEDGE)) - 0.15) < 0.03
    assert not (sel & ~cand).any()  # [CLS], [SEP] of the context, [KNOW], padding: never
    # knowledge off: no MKP
    model.cfg = dataclasses.replace(model.cfg, use_knowledge=False)
    _, labels = model.mask_tokens(b)
    assert not ((labels != -100) & (tt == TYPE_KNOWLEDGE)).any()


def save_and_load(model, tok, model_dir: Path) -> Maria:
    """model.pt as the adapter writes it, read back the way predict does."""
    from tiktalk.baselines.common import cpu_state, write_model
    from tiktalk.baselines.maria import FAMILY, VERSION, load_model
    from tiktalk.settings import to_mapping

    write_model(model_dir, FAMILY, VERSION, to_mapping(model.cfg), tokenizer=tok,
                state_dict=cpu_state(model.state_dict()))
    return load_model(model_dir)[0]


def test_save_load_round_trip(world, tmp_path):
    model, tok = tiny_model(world, use_visual=True, use_audio=True, use_knowledge=True)
    batch = world_batch(world, model, tok, n=3)
    again = save_and_load(model, tok, tmp_path)
    assert again.cfg == model.cfg
    model.eval()
    assert torch.equal(model.encode(batch), again.encode(batch))
    assert model.generate(batch, MariaDecode(beam_size=2)) == again.generate(batch, MariaDecode(beam_size=2))


def test_initializer_range_scales_every_random_matrix_of_a_scratch_model(world, tmp_path):
    """``initializer_range`` is the std of every random matrix of a scratch Maria: the
    encoder's, its embeddings (and the tied output layer), and the feature projections and
    positions; the trained model's config keeps it."""
    stds = {}
    for r in (0.02, 0.2):
        model, tok = tiny_model(world, use_visual=True, use_audio=True, initializer_range=r,
                                hidden_size=64, intermediate_size=128)
        assert model.cfg.initializer_range == model.cfg.bert_config["initializer_range"] == r
        mats = {"word": model.mlm.bert.embeddings.word_embeddings.weight,
                "query": model.mlm.bert.encoder.layer[0].attention.self.query.weight,
                "ffn": model.mlm.bert.encoder.layer[1].output.dense.weight,
                "output": model.mlm.cls.predictions.decoder.weight,
                "visual_proj": model.visual_proj.weight, "visual_pos": model.visual_pos.weight,
                "audio_proj": model.audio_proj.weight}
        stds[r] = {k: float(w.std()) for k, w in mats.items()}
        assert all(0.8 * r < v < 1.2 * r for v in stds[r].values()), stds[r]
    assert save_and_load(model, tok, tmp_path).cfg.initializer_range == 0.2


def test_resized_token_types_initialised_from_row_1():
    from transformers import BertConfig, BertForMaskedLM

    # the pretrained path (bert-base-chinese has type_vocab_size 2), with a local checkpoint
    bc = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, type_vocab_size=2)
    src = BertForMaskedLM(bc)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src.save_pretrained(d)
        cfg = MariaConfig(vocab_size=60, max_response_len=8, max_text_len=40, visual_dim=VIS_DIM)
        mlm, filled = build_backbone(cfg, d)
        m = Maria(filled, mlm)
    assert cfg.bert_config is None and cfg.hidden_size == 768  # the given config is unchanged
    w = m.mlm.bert.embeddings.token_type_embeddings.weight
    old = src.bert.embeddings.token_type_embeddings.weight
    assert w.shape[0] == 5 and torch.equal(w[:2], old) and torch.equal(w[4], old[1])
    assert m.mlm.bert.embeddings.word_embeddings.weight.shape[0] == 60  # resized for new tokens
    assert m.cfg.bert_config["type_vocab_size"] == 5 and m.cfg.hidden_size == 16


# ------------------------------------------------------------------------------------------
# the baseline adapter

def _params(use_visual, epochs=30, **train):
    return {"family": "maria", "init": "scratch",
            "model": {**TINY, "use_visual": use_visual},
            "train": {"epochs": epochs, "batch_size": 10, "lr": 2e-3, "log_every": 10, **train},
            "decode": {"batch_size": 8, "beam_size": 1, "max_len": 3}}


def test_baseline_train_predict_learns_visual_only_with_frames(world, tmp_path):
    maria = get_family("maria")
    accs = {}
    for use_visual in (True, False):
        out = tmp_path / f"v{use_visual}"
        params = _params(use_visual)
        maria.train(params, world, out)
        assert (out / "model.pt").exists() and (out / "tokenizer" / "tokenizer.json").exists()
        hist = [r for r in read_jsonl(out / "train_log.jsonl") if r["val_loss"] is None]
        assert hist[-1]["loss"] < hist[0]["loss"]  # a short training run lowers the loss
        pred_path = tmp_path / f"pred_{use_visual}.jsonl"
        maria.predict(params, out, world, "test", pred_path)
        preds = read_jsonl(pred_path)
        rows = read_dialogues(world.dialogues["test"])
        assert [p["dialogue_id"] for p in preds] == [r["dialogue_id"] for r in rows]
        accs[use_visual] = np.mean([p["response"] == r["responses"][0] for p, r in zip(preds, rows)])
    print("accuracy with / without frames:", accs)
    assert accs[True] >= 0.99, accs
    assert accs[False] <= 0.5, accs


def test_knowledge_keeps_whole_flows_and_leaves_the_context_room(world):
    model, tok = tiny_model(world, use_visual=False, use_knowledge=True)
    cfg = model.cfg  # max_text_len 40, response 8 -> 32 text slots, knowledge <= 12
    flows = [{"head": "看海", "relation": "emotion_cause", "tail": "开心"},
             {"head": "看海", "relation": "next_entity", "tail": "沙滩风景"},
             {"head": "看海", "relation": "next_utterance", "tail": "然后呢"}]
    ex = build_example(cfg, tok, ["今天我去看海了", "你猜我什么心情"], "开心", format_flows(flows),
                       None, None)
    text = tok.convert_ids_to_tokens(ex["text_ids"])
    know = text[text.index("[KNOW]"):]
    # only whole flows: the first (11 tokens incl. [KNOW]) fits in 12 - 1; the second would be cut
    assert know == tok.convert_ids_to_tokens(tok(format_flows(flows[:1]),
                                                 add_special_tokens=False)["input_ids"]) + ["[SEP]"]
    # the whole context fits beside it
    assert text[:text.index("[KNOW]")] == tok.convert_ids_to_tokens(
        tok("今天我去看海了[SEP]你猜我什么心情[SEP]", add_special_tokens=False)["input_ids"])
    # a single flow longer than the budget is cut rather than dropped
    long_flow = [{"head": "一" * 20, "relation": "emotion_cause", "tail": "开心"}]
    ex = build_example(cfg, tok, ["你好"], None, format_flows(long_flow), None, None)
    assert ex["text_types"].count(TYPE_KNOWLEDGE) == cfg.max_knowledge_len


def test_knowledge_budget_over_half_the_text_slots_is_an_error():
    with pytest.raises(ValueError, match="max_knowledge_len 48 must be in"):
        from_mapping(MariaConfig, dict(use_knowledge=True, max_text_len=64, max_response_len=16,
                                       max_knowledge_len=48))
    from_mapping(MariaConfig, dict(use_knowledge=False, max_text_len=64, max_response_len=16,
                                   max_knowledge_len=48))  # unused: not checked


def test_feature_standardisation_is_set_from_training_features_and_saved(world, tmp_path):
    model, tok = tiny_model(world, use_visual=True, use_audio=True)
    rng = np.random.default_rng(0)
    frames = [5.0 + rng.normal(size=(n, VIS_DIM)) * np.arange(1, VIS_DIM + 1) for n in (3, 4, 0)]
    frames[0][:, 0] = 7.0  # a constant dimension: centred, not divided by ~0
    frames[1][:, 0] = 7.0
    counts = model.set_feature_stats(frames, [np.ones((2, AUD_DIM)), None])
    assert counts == {"visual": 7, "audio": 2}
    x = np.concatenate(frames[:2])
    assert np.allclose(model.visual_norm.mean.numpy(), x.mean(0), atol=1e-5)
    std = model.visual_norm.std
    assert std[0] == 1.0 and np.allclose(std[1:].numpy(), x.std(0)[1:], rtol=1e-5)
    # the features the encoder sees are standardised: a shift of every frame by the training
    # mean changes nothing once the stats move with it
    batch = world_batch(world, model, tok, n=3)
    model.eval()
    h1 = model.encode(batch)
    model.visual_norm.mean += 100.0
    h2 = model.encode({**batch, "visual": batch["visual"] + 100.0})
    assert torch.allclose(h1, h2, atol=1e-4)
    assert torch.equal(save_and_load(model, tok, tmp_path).visual_norm.mean, model.visual_norm.mean)
    with pytest.raises(ValueError, match="visual features have dim 3"):
        model.set_feature_stats([np.ones((2, 3))])


def test_standardiser_rescales_small_informative_dimensions_at_any_scale():
    """The floor below which a dimension is only centred is relative to the features' scale:
    an encoder whose outputs are all tiny (the demo's random VGGish: std ~3e-4 around ~8e-3)
    gets unit-scale inputs just like one with outputs near 1, and the result does not depend
    on the scale; a constant dimension is centred, never divided by ~0."""
    from tiktalk.models.features import FeatureStandardizer

    rng = np.random.default_rng(0)
    x = 8e-3 + 3e-4 * rng.normal(size=(200, 6))
    x[:, 0] = 8e-3                                         # constant
    out = {}
    for scale in (1.0, 1e3):
        norm = FeatureStandardizer(6)
        assert norm.fit([x[:120] * scale, None, np.zeros((0, 6)), x[120:] * scale]) == 200
        z = norm(torch.from_numpy(x * scale)).numpy()
        assert np.allclose(z[:, 1:].std(0), 1.0, atol=1e-4), z.std(0)
        assert norm.std[0] == 1.0 and np.allclose(z[:, 0], 0.0, atol=1e-6)
        out[scale] = z
    assert np.allclose(out[1.0], out[1e3], atol=1e-4)


def test_config_is_immutable_and_typos_fail_naming_the_closest_key(world, tmp_path):
    model, tok = tiny_model(world)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cfg.vocab_size = 3
    maria = get_family("maria")
    params = _params(True, epochs=1)
    with pytest.raises(SettingsError, match=r"maria params.model: unknown key 'use_visul'; "
                                            r"did you mean 'use_visual'"):
        maria.train({**params, "model": {**params["model"], "use_visul": True}}, world, tmp_path)
    with pytest.raises(SettingsError, match="did you mean 'decode'"):
        maria.train({**params, "decod": {"batch_size": 2}}, world, tmp_path)
    assert not (tmp_path / "model.pt").exists()
