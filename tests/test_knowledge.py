"""C3KG table, gpickle conversion, and flow retrieval (char TF-IDF and Sentence-BERT)."""

from __future__ import annotations

import pickle
import random

import networkx as nx
import numpy as np
import pytest

from tiktalk.formats import C3KG_COLUMNS, FLOW_RELATIONS
from tiktalk.io import read_jsonl, write_jsonl
from tiktalk.knowledge.c3kg import (
    ATOMIC_RELATIONS,
    convert_gpickle,
    is_flow_relation,
    read_c3kg_table,
    write_c3kg_table,
)
from tiktalk.knowledge.flows import RELATION_TEXT, format_flows, read_knowledge, write_knowledge
from tiktalk.knowledge.retrieve import (
    CharTfidfRetriever,
    context_text,
    make_retriever,
    retrieve_split,
)

HEADER = "\t".join(C3KG_COLUMNS) + "\n"

# A mini C3KG: flows of every kind, plus ATOMIC edges whose heads must never be retrieved.
EDGES = [
    ("下雨天", "next_utterance", "记得带伞", 3),
    ("下雨天", "next_sentence", "路上很滑", 7),
    ("下雨天", "xNeed", "雨伞", 9),
    ("养猫", "next_entity", "猫粮", 2),
    ("养猫", "next_utterance", "要铲屎", 2),
    ("开心", "intent_console", "一起庆祝", 1),
    ("难过", "emotion_cause", "考试没过", 4),
    ("难过", "emotion_intent", "抱抱你", 4),
    ("跑步", "next_sentence", "出汗", 1),
    ("吃火锅", "xWant", "喝冰可乐", 5),      # ATOMIC only: not a flow head
    ("吃火锅啦", "xReact", "满足", 1),        # ATOMIC only
]


def write_table(path, edges=EDGES):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for h, r, t, w in edges:
            fh.write(f"{h}\t{r}\t{t}\t{w}\n")
    return path


# ----------------------------------------------------------------------------- table


def test_relations():
    for rel in FLOW_RELATIONS + ("intent_ask", "intent_console", "intent_advise"):
        assert is_flow_relation(rel)
    for rel in ATOMIC_RELATIONS + ("intent_", "intent", "next", "xneed"):
        assert not is_flow_relation(rel)


def test_read_c3kg_table(tmp_path):
    table = read_c3kg_table(write_table(tmp_path / "c3kg.tsv"))
    assert list(table.columns) == list(C3KG_COLUMNS)
    assert len(table) == len(EDGES)
    assert table.loc[1, "tail"] == "路上很滑"
    assert table["weight"].dtype.kind == "f" and table.loc[1, "weight"] == 7.0


@pytest.mark.parametrize(
    "line, message",
    [
        ("下雨天\tnext_utterance\t带伞\n", "expected 4"),
        ("\tnext_utterance\t带伞\t1\n", "empty head"),
        ("下雨天\tnext_utterance\t \t1\n", "empty tail"),
        ("下雨天\tnext_chat\t带伞\t1\n", "unknown relation 'next_chat'"),
        ("下雨天\tnext_utterance\t带伞\tmany\n", "weight 'many'"),
        ("下雨天\tnext_utterance\t带伞\tnan\n", "weight 'nan'"),
    ],
)
def test_read_c3kg_table_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.tsv"
    path.write_text(HEADER + "养猫\tnext_entity\t猫粮\t2\n" + line, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_c3kg_table(path)
    assert f"{path}:3:" in str(err.value) and message in str(err.value)


def test_read_c3kg_table_bad_header(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("head\ttype\ttail\tweight\n养猫\tnext_entity\t猫粮\t2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.tsv:1: header"):
        read_c3kg_table(path)


def _graph(edges, seed):
    edges = list(edges)
    random.Random(seed).shuffle(edges)
    g = nx.DiGraph()
    for h, r, t, w in edges:
        g.add_edge(h, t, type=r, weight=w)
    return g


def _pickle(graph, path):
    with open(path, "wb") as fh:  # what nx.write_gpickle did in networkx 2
        pickle.dump(graph, fh, pickle.HIGHEST_PROTOCOL)
    return path


def test_convert_gpickle_refuses_without_opt_in(tmp_path):
    src = _pickle(_graph(EDGES, 0), tmp_path / "C3KG.Graph")
    out = tmp_path / "c3kg.tsv"
    with pytest.raises(PermissionError) as err:
        convert_gpickle(src, out)
    assert "allow_pickle=True" in str(err.value) and "arbitrary code" in str(err.value)
    assert not out.exists()


def test_convert_gpickle_roundtrip_and_deterministic(tmp_path):
    edges = EDGES + [("有\t制表符", "next_entity", "换行\n尾巴", 1.5)]
    out1, out2 = tmp_path / "a.tsv", tmp_path / "b.tsv"
    summary = convert_gpickle(_pickle(_graph(edges, 1), tmp_path / "g1"), out1, allow_pickle=True)
    convert_gpickle(_pickle(_graph(edges, 2), tmp_path / "g2"), out2, allow_pickle=True)
    assert out1.read_bytes() == out2.read_bytes()  # independent of insertion order
    assert summary["edges"] == len(edges)
    assert summary["flows"] == sum(is_flow_relation(r) for _, r, _, _ in edges)
    assert summary["relations"]["next_utterance"] == 2

    table = read_c3kg_table(out1)
    rows = list(table.itertuples(index=False, name=None))
    assert rows == sorted(rows)
    expected = {(h.replace("\t", " "), r, t.replace("\n", " "), float(w)) for h, r, t, w in edges}
    assert set(rows) == expected
    assert out1.read_text(encoding="utf-8").splitlines()[1:3] == [
        "下雨天\tnext_sentence\t路上很滑\t7", "下雨天\tnext_utterance\t记得带伞\t3",
    ]


def test_convert_gpickle_rejects_bad_edges(tmp_path):
    g = _graph(EDGES, 0)
    g.add_edge("a", "b", type="made_up", weight=1)
    with pytest.raises(ValueError, match="unknown or missing type 'made_up'"):
        convert_gpickle(_pickle(g, tmp_path / "g"), tmp_path / "o.tsv", allow_pickle=True)
    g = _graph(EDGES, 0)
    g.add_edge("a", "b", type="next_entity", weight="x")
    with pytest.raises(ValueError, match="non-numeric weight"):
        convert_gpickle(_pickle(g, tmp_path / "g"), tmp_path / "o.tsv", allow_pickle=True)
    with pytest.raises(ValueError, match="networkx graph"):
        convert_gpickle(_pickle({"not": "a graph"}, tmp_path / "g"), tmp_path / "o.tsv", allow_pickle=True)


def test_write_c3kg_table_roundtrip(tmp_path):
    n = write_c3kg_table(reversed(EDGES), tmp_path / "t.tsv")
    assert n == len(EDGES)
    assert len(read_c3kg_table(tmp_path / "t.tsv")) == len(EDGES)


# ----------------------------------------------------------------------------- retrieval


@pytest.fixture()
def table(tmp_path):
    return read_c3kg_table(write_table(tmp_path / "c3kg.tsv"))


def test_tfidf_retrieves_head_contained_in_context(table):
    r = CharTfidfRetriever(top_k=2).fit(table)
    [flows] = r.retrieve(["我今天去跑步了 外面是下雨天"])
    assert [f["head"] for f in flows] == ["下雨天", "下雨天"]
    # a head's flows come heaviest first
    assert [(f["relation"], f["tail"]) for f in flows] == [
        ("next_sentence", "路上很滑"), ("next_utterance", "记得带伞")]
    assert set(flows[0]) == {"head", "relation", "tail", "score"}
    [flows] = CharTfidfRetriever(top_k=5).fit(table).retrieve(["我家养猫"])
    assert flows[0]["head"] == "养猫" and flows[0]["score"] == pytest.approx(flows[1]["score"])


def test_only_flows_are_retrieved(table):
    r = CharTfidfRetriever(top_k=50).fit(table)
    assert "吃火锅" not in r.heads and "吃火锅啦" not in r.heads
    [flows] = r.retrieve(["今天吃火锅啦 下雨天 开心"])
    assert flows and all(is_flow_relation(f["relation"]) for f in flows)
    assert all(f["relation"] != "xNeed" for f in flows)
    assert {f["head"] for f in flows} == {"下雨天", "开心"}  # heads sharing no character never come back


def test_top_k_per_head_and_min_score(table):
    context = ["下雨天我很难过 不想跑步 也不开心 想养猫"]
    for k in (1, 3, 7):
        [flows] = CharTfidfRetriever(top_k=k).fit(table).retrieve(context)
        assert len(flows) == k
        scores = [f["score"] for f in flows]
        assert scores == sorted(scores, reverse=True)
    [flows] = CharTfidfRetriever(top_k=5, per_head=1).fit(table).retrieve(context)
    assert len(flows) == 5 and len({f["head"] for f in flows}) == 5
    [all_flows] = CharTfidfRetriever(top_k=50).fit(table).retrieve(context)
    assert len(all_flows) == 8  # every flow head shares characters with the context
    best = max(f["score"] for f in all_flows)
    [flows] = CharTfidfRetriever(top_k=50, min_score=best).fit(table).retrieve(context)
    assert [f["head"] for f in flows] == ["下雨天", "下雨天"] and flows[0]["score"] == best


def test_ties_are_broken_by_head(tmp_path):
    edges = [("乙丙", "next_entity", "x", 1), ("甲丙", "next_entity", "y", 1),
             ("丙丁", "next_entity", "z", 1)]
    r = CharTfidfRetriever(top_k=3).fit(read_c3kg_table(write_table(tmp_path / "t.tsv", edges)))
    [flows] = r.retrieve(["丙"])
    assert len({f["score"] for f in flows}) == 1
    assert [f["head"] for f in flows] == sorted(h for h, *_ in edges)


def test_context_text():
    assert context_text(["a ", "", "b", "c"]) == "a b c"
    assert context_text(["a", "b", "c"], last_n=2) == "b c"


def test_make_retriever_validates():
    with pytest.raises(ValueError, match="kind"):
        make_retriever({"kind": "bm25"})
    with pytest.raises(ValueError, match="unknown config keys"):
        make_retriever({"kind": "char_tfidf", "topk": 3})
    with pytest.raises(ValueError, match="'model'"):
        make_retriever({"kind": "sbert"})
    with pytest.raises(ValueError, match="top_k"):
        make_retriever({"kind": "char_tfidf", "top_k": 0})


def _dialogues(path):
    rows = [
        {"dialogue_id": "d2", "video_id": "v1", "split": "test", "context": ["今天下雨天", "是啊"],
         "responses": ["r"] * 5},
        {"dialogue_id": "d1", "video_id": "v1", "split": "test", "context": ["我好难过"],
         "responses": ["r"] * 5},
        {"dialogue_id": "d3", "video_id": "v2", "split": "test", "context": ["zzz"],
         "responses": ["r"] * 5},
    ]
    write_jsonl(path, rows)
    return rows


def test_retrieve_split_writes_knowledge_jsonl(tmp_path):
    dialogues = _dialogues(tmp_path / "test.jsonl")
    out = tmp_path / "knowledge" / "test.jsonl"
    n = retrieve_split(tmp_path / "test.jsonl", write_table(tmp_path / "c3kg.tsv"), out,
                       {"kind": "char_tfidf", "top_k": 2})
    rows = read_jsonl(out)
    assert n == 3 and [r["dialogue_id"] for r in rows] == [d["dialogue_id"] for d in dialogues]
    for row in rows:
        assert set(row) == {"dialogue_id", "flows"} and len(row["flows"]) <= 2
        for f in row["flows"]:
            assert set(f) == {"head", "relation", "tail", "score"}
            assert isinstance(f["score"], float) and is_flow_relation(f["relation"])
    assert rows[0]["flows"][0]["head"] == "下雨天"
    assert rows[1]["flows"][0]["head"] == "难过"
    assert rows[2]["flows"] == []


def test_retrieve_split_rejects_bad_dialogues(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"dialogue_id": "a", "video_id": "v", "split": "train",
                                        "context": "not a list", "responses": ["r"]}])
    with pytest.raises(ValueError, match=r"(?s)d\.jsonl: 1 bad dialogue row.*row 1 \(a\): context must "
                                         r"be a non-empty list"):
        retrieve_split(tmp_path / "d.jsonl", write_table(tmp_path / "c.tsv"), tmp_path / "o.jsonl",
                       {"kind": "char_tfidf"})
    assert not (tmp_path / "o.jsonl").exists()


def test_flows_as_the_knowledge_segment_reads_them(tmp_path):
    flows = [{"head": "下雨天", "relation": "emotion_cause", "tail": "难过", "score": 0.5},
             {"head": "下雨天", "relation": "intent_console", "tail": "别难过", "score": 0.5},
             {"head": "下雨天", "relation": "next_entity", "tail": "雨伞", "score": 0.5}]
    assert format_flows(flows, max_flows=2) == ("[KNOW] 下雨天 情感原因 难过 "
                                                "[KNOW] 下雨天 intent_console 别难过")
    assert format_flows(flows, max_flows=None).endswith("[KNOW] 下雨天 概念流 雨伞")
    # every relation of the C3KG table that has a reading has one written out
    assert set(RELATION_TEXT) == set(FLOW_RELATIONS) | set(ATOMIC_RELATIONS)
    assert write_knowledge(tmp_path / "k.jsonl", ["d1", "d2"], [flows, []]) == 2
    assert read_knowledge(tmp_path / "k.jsonl") == {"d1": flows, "d2": []}
    assert read_knowledge(None) == {}
    write_jsonl(tmp_path / "bad.jsonl", [{"dialogue_id": "d1", "flows": "x"}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: expected"):
        read_knowledge(tmp_path / "bad.jsonl")


# ----------------------------------------------------------------------------- Sentence-BERT


@pytest.fixture(scope="module")
def tiny_sbert(tmp_path_factory):
    """A tiny random BERT + mean pooling saved as a sentence-transformers model directory."""
    torch = pytest.importorskip("torch")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    bert_dir = tmp_path_factory.mktemp("tiny_bert")
    chars = sorted({ch for h, r, t, _ in EDGES for ch in h + t} | set("今天是啊我好家zx"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(str(bert_dir)).save_pretrained(str(bert_dir))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(bert_dir))

    word = Transformer(str(bert_dir), max_seq_length=48)
    model = SentenceTransformer(modules=[word, Pooling(32, "mean")], device="cpu")
    out_dir = tmp_path_factory.mktemp("tiny_sbert")
    model.save(str(out_dir))
    return out_dir


def test_sentence_bert_retrieve_split(tmp_path, tiny_sbert):
    # a context identical to a head embeds identically: cosine 1, retrieved first
    write_jsonl(tmp_path / "test.jsonl", [
        {"dialogue_id": "a", "video_id": "v1", "split": "train", "context": ["养猫"],
         "responses": ["r"]},
        {"dialogue_id": "b", "video_id": "v2", "split": "train", "context": ["我好", "难过"],
         "responses": ["r"]},
    ])
    cfg = {"kind": "sbert", "model": str(tiny_sbert), "top_k": 3, "batch_size": 2,
           "device": "cpu", "cache_dir": str(tmp_path / "cache")}
    out = tmp_path / "k.jsonl"
    assert retrieve_split(tmp_path / "test.jsonl", write_table(tmp_path / "c3kg.tsv"), out, cfg) == 2
    rows = read_jsonl(out)
    assert [r["dialogue_id"] for r in rows] == ["a", "b"]
    for row in rows:
        assert len(row["flows"]) == 3
        assert all(is_flow_relation(f["relation"]) for f in row["flows"])
        assert all(-1.0 - 1e-6 <= f["score"] <= 1.0 + 1e-6 for f in row["flows"])
        scores = [f["score"] for f in row["flows"]]
        assert scores == sorted(scores, reverse=True)
    assert rows[0]["flows"][0]["head"] == "养猫"
    assert rows[0]["flows"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert all(f["head"] not in ("吃火锅", "吃火锅啦") for r in rows for f in r["flows"])

    # head embeddings were cached; a second run reuses them and gives the same file
    assert len(list((tmp_path / "cache").glob("c3kg_heads_*.npy"))) == 1
    out2 = tmp_path / "k2.jsonl"
    retrieve_split(tmp_path / "test.jsonl", tmp_path / "c3kg.tsv", out2, cfg)
    assert read_jsonl(out2) == rows


def test_candidate_heads_give_the_same_top_k_as_ranking_every_head():
    """Retrieval ranks only the heads within 2e-6 of a context's k-th best raw score: the top k
    (rounded to 1e-6, ties by head order) are those of a sort of every head, ties and
    near-ties across the rounding boundary included."""
    from tiktalk.knowledge.retrieve import _candidate_heads, _top_indices

    rng = np.random.default_rng(3)
    base = rng.random((40, 500)).astype(np.float32)
    base[:, ::7] = 0.5                                              # exact ties
    base[:10, :30] = 0.5 + rng.uniform(-9e-7, 9e-7, (10, 30))       # ties after rounding only
    base[10:20, 40:80] = 1.5 + rng.uniform(-6e-7, 6e-7, (10, 40))   # the best, near-ties among them
    for k in (1, 5, 31):
        for row, cand in zip(base, _candidate_heads(base, k)):
            rounded = np.round(row.astype(np.float64), 6)
            want = _top_indices(rounded, k)
            got = cand[_top_indices(rounded[cand], k, cand)]
            assert list(got) == list(want)
