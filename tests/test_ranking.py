"""Ranking evaluation: candidate sets, Recall@K / Mean Rank under ties, and each family's scorer
(the log-likelihood it gives a response equals what its own training loss or decoder says)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tiktalk.metrics.ranking import (best_rank, build_candidates, candidate_scores,
                                     chance_metrics, ranking_metrics, read_candidates,
                                     recall_at_k, reference_ranks, write_candidates)

torch.set_num_threads(1)


# -- maths ------------------------------------------------------------------------------------
def test_metrics_by_hand_without_ties():
    # 10 candidates; references at 0 and 3; order by score: c1 (9), c0 (5), c3 (4), then the rest
    s = [5, 9, 1, 4, 0, -1, -2, -3, -4, -5]
    assert list(reference_ranks(s, [0, 3])) == [2.0, 3.0]
    assert best_rank(s, [0, 3]) == 2.0
    assert recall_at_k(s, [0, 3], 1) == 0.0
    assert recall_at_k(s, [0, 3], 2) == 0.5
    assert recall_at_k(s, [0, 3], 5) == 1.0
    m = ranking_metrics([s, [0] * 9 + [1]], [[0, 3], [9]], ks=(1, 5))
    # dialogue 2: its one reference is the best candidate
    assert m["recall_at_1"] == pytest.approx(100 * (0 + 1) / 2)
    assert m["recall_at_5"] == pytest.approx(100.0)
    assert m["mean_rank"] == pytest.approx((2.5 + 1) / 2)
    assert m["mean_best_rank"] == pytest.approx((2 + 1) / 2)
    assert m["n"] == 2 and m["n_candidates"] == 10


def _brute_force(scores, refs, k):
    """Average over every order of the tied candidates (a different implementation)."""
    s = np.asarray(scores, dtype=float)
    n = len(s)
    rec, ranks, bests, count = 0.0, 0.0, 0.0, 0
    for perm in itertools.permutations(range(n)):
        tiebreak = np.empty(n)
        tiebreak[list(perm)] = np.arange(n)
        order = sorted(range(n), key=lambda i: (-s[i], tiebreak[i]))
        pos = {c: p + 1 for p, c in enumerate(order)}
        rec += sum(pos[r] <= k for r in refs) / len(refs)
        ranks += np.mean([pos[r] for r in refs])
        bests += min(pos[r] for r in refs)
        count += 1
    return rec / count, ranks / count, bests / count


@pytest.mark.parametrize("scores,refs", [
    ([1, 1, 1, 1, 1, 1], [0, 2]),          # everything tied: chance
    ([2, 1, 1, 1, 0, 1], [1, 4]),          # one reference in a tie, one strictly last
    ([3, 3, 1, 3, 0, 3], [0, 3, 4]),       # references tied with each other and with others
])
def test_tie_expectations_equal_brute_force(scores, refs):
    for k in (1, 2, 4):
        rec, mean_rank, best = _brute_force(scores, refs, k)
        assert recall_at_k(scores, refs, k) == pytest.approx(rec)
        assert float(np.mean(reference_ranks(scores, refs))) == pytest.approx(mean_rank)
        assert best_rank(scores, refs) == pytest.approx(best)


def test_chance_values():
    c = chance_metrics(100, 5)
    assert c["recall_at_1"] == pytest.approx(1.0)     # 100 * 1/100
    assert c["recall_at_10"] == pytest.approx(10.0)
    assert c["mean_rank"] == pytest.approx(50.5)
    assert c["mean_best_rank"] == pytest.approx(101 / 6)


def test_length_normalised_and_summed_scores():
    ll, n = np.array([[-4.0, -3.0]]), np.array([[4, 1]])
    assert candidate_scores(ll, n, "mean").tolist() == [[-1.0, -3.0]]
    assert candidate_scores(ll, n, "sum").tolist() == [[-4.0, -3.0]]
    with pytest.raises(ValueError, match="one of"):
        candidate_scores(ll, n, "max")


# -- candidate sets ---------------------------------------------------------------------------
def _rows(n=12):
    return [{"dialogue_id": f"d{i}", "video_id": f"v{i}", "split": "test", "context": ["嗨"],
             "responses": [f"回复{i}-{j}" for j in range(5)]} for i in range(n)]


def test_candidate_sets_hold_the_references_and_distinct_other_responses(tmp_path):
    rows = _rows()
    rows[1]["responses"][0] = rows[0]["responses"][0]      # a text shared by two dialogues
    sets = build_candidates(rows, n_candidates=20, seed=3)
    assert sets == build_candidates(rows, n_candidates=20, seed=3)
    assert sets != build_candidates(rows, n_candidates=20, seed=4)
    for row, s in zip(rows, sets):
        assert len(s["candidates"]) == 20 == len(set(s["candidates"]))
        assert sorted(s["candidates"][i] for i in s["references"]) == sorted(row["responses"])
        others = [c for i, c in enumerate(s["candidates"]) if i not in s["references"]]
        assert not set(others) & set(row["responses"])
    assert {tuple(s["references"]) for s in sets} != {(0, 1, 2, 3, 4)}   # shuffled in
    # one dialogue's set does not depend on the table's order
    again = {s["dialogue_id"]: s for s in build_candidates(rows[::-1], 20, 3)}
    assert all(again[s["dialogue_id"]] == s for s in sets)
    path = tmp_path / "c.json"
    write_candidates(path, sets, "test", 3, 20)
    assert read_candidates(path, "test")["dialogues"] == sets
    with pytest.raises(ValueError, match="expected 'val'"):
        read_candidates(path, "val")


def test_too_few_other_responses_is_an_error_naming_the_dialogue():
    with pytest.raises(ValueError, match=r"dialogue d0: only 10 distinct .* 95 distractors"):
        build_candidates(_rows(3), n_candidates=100)


# -- Maria: one encoder pass equals stepwise decoding ------------------------------------------
def _stepwise(model, batch):
    """log p of y_1..y_n, [SEP] the way generate() computes each step (a [MASK] after the prefix)."""
    cfg = model.cfg
    R = cfg.max_response_len
    out = []
    for b in range(batch["input_ids"].shape[0]):
        row = {k: v[b:b + 1] for k, v in batch.items()}
        n2 = int(row["text_mask"][0, :R].sum())          # [CLS] y_1..y_n [SEP]
        gold = row["input_ids"][0, 1:n2].tolist()
        total = 0.0
        for t in range(len(gold)):
            ids, tm = row["input_ids"].clone(), row["text_mask"].clone()
            ids[:, 1 + t] = cfg.mask_token_id
            ids[:, 2 + t:R] = cfg.pad_token_id
            tm[:, :2 + t] = 1
            tm[:, 2 + t:R] = 0
            h = model.encode({**row, "input_ids": ids, "text_mask": tm})
            total += torch.log_softmax(model.mlm.cls(h[:, 1 + t]), -1)[0, gold[t]].item()
        out.append((total, len(gold)))
    return out


@pytest.mark.parametrize("over", [dict(use_visual=True, use_audio=True, use_knowledge=True),
                                  dict(use_visual=False)])
def test_maria_one_pass_log_likelihood_equals_stepwise(tmp_path, over):
    from test_maria import make_world, tiny_model, world_batch

    from tiktalk.models.scoring import maria_response_logprobs

    world = make_world(tmp_path, n_train=6, n_test=2)
    model, tok = tiny_model(world, **over)
    model.eval()
    batch = world_batch(world, model, tok, n=4)
    sums, counts = maria_response_logprobs(model, batch)
    for (s, n), (ref_s, ref_n) in zip(zip(sums.tolist(), counts.tolist()), _stepwise(model, batch)):
        assert n == ref_n
        assert s == pytest.approx(ref_s, abs=1e-4)


# -- every family's scorer agrees with its own loss --------------------------------------------
def _candidates(inputs, texts):
    from tiktalk.io import read_jsonl

    rows = read_jsonl(inputs.dialogues["test"])
    return {"n_candidates": len(texts),
            "dialogues": [{"dialogue_id": r["dialogue_id"], "candidates": list(texts),
                           "references": [0]} for r in rows]}, rows


def _check(loglik, n_tokens, n_dialogues, n_cand):
    assert loglik.shape == n_tokens.shape == (n_dialogues, n_cand)
    assert np.all(np.isfinite(loglik)) and np.all(loglik < 0) and np.all(n_tokens >= 1)


def test_dialogpt_and_causal_lm_scores_equal_their_training_loss(tmp_path):
    from test_baselines_text import CAUSAL, TRAIN, make_dataset

    from tiktalk.baselines import causal_lm, dialogpt
    from tiktalk.models.causal_lm import CausalLMModel, end_token_id

    inputs = make_dataset(tmp_path)
    texts = ["是红色的", "是蓝色的", "今天天气不错哈哈"]
    cands, rows = _candidates(inputs, texts)

    params = {"train": dict(TRAIN, epochs=1), "model": {"n_layer": 1, "n_embd": 16, "n_head": 2,
                                                        "n_positions": 64, "max_input_len": 64}}
    dialogpt.train(params, inputs, tmp_path / "gpt")
    ll, nt = dialogpt.score_candidates(params, tmp_path / "gpt", inputs, "test", cands, batch_size=4)
    _check(ll, nt, len(rows), len(texts))
    model, tok = dialogpt.load_model(tmp_path / "gpt")
    for i, j in ((0, 0), (len(rows) - 1, 2)):
        ids, labels = dialogpt.encode_dialogue(tok, rows[i]["context"], texts[j], model.cfg)
        with torch.no_grad():
            loss = model(dialogpt.collate([{"input_ids": ids, "labels": labels}], tok.pad_token_id))
        assert -ll[i, j] / nt[i, j] == pytest.approx(loss.item(), rel=1e-4)

    # the ranking job: the same scores, ranked and written with the chance values beside
    from tiktalk.baselines.ranking import rank_split
    from tiktalk.io import read_json

    write_candidates(tmp_path / "c.json", cands["dialogues"], "test", 0, len(texts))
    metrics = rank_split("dialogpt", params, tmp_path / "gpt", inputs, "test", tmp_path / "c.json",
                         tmp_path / "rank.json", score="sum", batch_size=4)
    written = read_json(tmp_path / "rank.json")
    assert written["metrics"] == metrics and metrics["n"] == len(rows) and metrics["score"] == "sum"
    assert written["chance"]["mean_rank"] == pytest.approx(2.0)
    first = [1 + sum(ll[i] > ll[i, 0]) for i in range(len(rows))]        # reference: candidate 0
    assert [d["reference_ranks"][0] for d in written["dialogues"]] == first
    assert metrics["mean_rank"] == pytest.approx(np.mean(first))

    cparams = {"train": dict(TRAIN, epochs=1), "model": CAUSAL}
    causal_lm.train(cparams, inputs, tmp_path / "llm")
    ll, nt = causal_lm.score_candidates(cparams, tmp_path / "llm", inputs, "test", cands, batch_size=5)
    _check(ll, nt, len(rows), len(texts))
    lm, tok, cfg = causal_lm.load_finetuned(tmp_path / "llm")
    model = CausalLMModel(lm, cfg, tok.pad_token_id, end_token_id(tok)).eval()
    ids, labels = causal_lm.encode_example(tok, causal_lm.build_prompt(rows[1]["context"], cfg.max_history),
                                           texts[1], cfg.max_source_len, cfg.max_target_len)
    with torch.no_grad():
        loss = model(causal_lm.collate([{"input_ids": ids, "labels": labels}], tok.pad_token_id))
    assert -ll[1, 1] / nt[1, 1] == pytest.approx(loss.item(), rel=1e-4)


def test_livebot_and_blip2_scores_equal_their_training_loss(tmp_path):
    from test_baselines_text import CAUSAL, TRAIN, make_dataset, read_lines
    from test_blip2 import _image_shard

    from tiktalk.baselines import blip2, causal_lm, livebot
    from tiktalk.media.store import FeatureStore

    inputs = make_dataset(tmp_path, with_features=True)
    texts = ["是红色的", "是绿色的", "我也想要一个"]
    cands, rows = _candidates(inputs, texts)

    lparams = {"train": dict(TRAIN, epochs=1), "max_frames": 4, "context_turns": 3,
               "max_context_len": 40, "max_len": 8,
               "model": {"hidden": 16, "ff": 32, "heads": 2, "blocks": 1, "dropout": 0.0}}
    livebot.train(lparams, inputs, tmp_path / "lb")
    ll, nt = livebot.score_candidates(lparams, tmp_path / "lb", inputs, "test", cands, batch_size=4)
    _check(ll, nt, len(rows), len(texts))
    model, tok = livebot.load_model(tmp_path / "lb")
    p = livebot._params(lparams)
    ex = livebot.make_examples(rows[2:3], tok, FeatureStore(inputs.features), p, with_target=False)[0]
    ex["target"] = livebot.encode_target(tok, texts[2], p.max_len)
    with torch.no_grad():
        loss = model(livebot.collate([ex], tok.pad_token_id))
    assert -ll[2, 2] / nt[2, 2] == pytest.approx(loss.item(), rel=1e-4)

    causal_lm.train({"train": dict(TRAIN, epochs=1), "model": CAUSAL}, inputs, tmp_path / "llm")
    vids = [r["video_id"] for s in ("train", "val", "test") for r in read_lines(inputs.dialogues[s])]
    inputs.extra_features = [_image_shard(tmp_path / "img.npz", vids)]
    bparams = {"train": dict(TRAIN, epochs=1), "llm_dir": str(tmp_path / "llm"),
               "model": {"mode": "img", "n_frames": 2, "qformer": {
                   "num_queries": 3, "hidden_size": 16, "num_layers": 2, "num_heads": 2,
                   "intermediate_size": 32}}}
    blip2.train(bparams, inputs, tmp_path / "b2")
    ll, nt = blip2.score_candidates(bparams, tmp_path / "b2", inputs, "test", cands, batch_size=4)
    _check(ll, nt, len(rows), len(texts))
    model, tok, llm_cfg = blip2.load_model(tmp_path / "b2", bparams)
    index = blip2.ImageTokenIndex(inputs.extra_features)
    ex = blip2.make_examples(rows[:1], tok, llm_cfg, index, with_target=False)[0]
    ex["input_ids"], ex["labels"] = blip2.encode_example(
        tok, blip2.build_prompt(rows[0]["context"], llm_cfg.max_history), texts[1],
        llm_cfg.max_source_len, llm_cfg.max_target_len)
    with torch.no_grad():
        loss = model(blip2.collate([ex], tok.pad_token_id, blip2.VideoTokens(index, "img", 2, inputs.seed)))
    assert -ll[0, 1] / nt[0, 1] == pytest.approx(loss.item(), rel=1e-4)


def test_scoring_families_are_the_ones_with_a_scorer():
    """A descriptor's ``scores`` says whether its code has score_candidates (the ranking jobs)."""
    from tiktalk.families.registry import families, get_family

    trained = {f: d for f, d in families().items() if d.trains}
    assert trained
    for name, desc in trained.items():
        assert desc.scores is hasattr(get_family(name), "score_candidates"), name


class _SeqFirstLM(torch.nn.Module):
    """A causal LM whose final hidden states are (length, batch, hidden), as ChatGLM-6B's."""

    def __init__(self, vocab: int = 11, hidden: int = 6):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, hidden)
        self.mix = torch.nn.Linear(hidden, hidden)
        self.lm_head = torch.nn.Linear(hidden, vocab, bias=False)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, head):
        self.lm_head = head

    def forward(self, input_ids):
        h = torch.tanh(self.mix(self.emb(input_ids).cumsum(1))).transpose(0, 1)   # (L, B, H)
        return type("Out", (), {"logits": self.lm_head(h).permute(1, 0, 2).contiguous()})()


@pytest.mark.parametrize("rows,length", [(3, 7), (5, 5)])   # (5, 5): layouts indistinguishable
def test_head_at_scored_positions_equals_full_logits(rows, length):
    """Ranking applies an LM's output layer at the scored positions only: the same sums as
    the full logits, for batch-first (GPT-2) and sequence-first (ChatGLM-6B) hidden states, with
    an offset (BLIP-2's queries), and the model's own head is restored afterwards."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tiktalk.models.scoring import lm_logprob_sums, token_logprob_sums

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 11, (rows, length), generator=gen)
    labels = ids.clone()
    labels[:, : length // 2] = -100                      # the prompt is not scored
    labels[0, -1] = -100                                 # nor padding
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_embd=8, n_layer=1, n_head=2, n_positions=16)).eval()
    for lm, run, offset in ((gpt2, lambda: gpt2(input_ids=ids), 0),
                            (_SeqFirstLM(), None, 0),
                            (gpt2, lambda: gpt2(input_ids=torch.cat([ids[:, :2], ids], 1)), 2)):
        run = run or (lambda lm=lm: lm(ids))
        with torch.no_grad():
            want = token_logprob_sums(run().logits[:, offset:], labels)
            head = lm.get_output_embeddings()
            got = lm_logprob_sums(lm, run, labels, offset=offset)
        assert lm.get_output_embeddings() is head
        torch.testing.assert_close(got[0], want[0])
        assert torch.equal(got[1], want[1])
