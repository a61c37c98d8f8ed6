"""WordPiece tokenizer trained on the corpus, loadable by transformers' BertTokenizerFast."""

from __future__ import annotations

import pytest

from tiktalk.models.tokenizer import (
    EXTRA_SPECIAL_TOKENS, decode_tokens, load_tokenizer, train_wordpiece,
)

TEXTS = ["这个视频里的猫是红色的", "今天天气很好，我们去公园吧", "hello world 你好", "OK 好的 谢谢"] * 5


def test_train_save_and_load_with_transformers(tmp_path):
    from transformers import BertTokenizerFast

    tok = train_wordpiece(TEXTS, tmp_path / "tok", vocab_size=300)
    assert (tmp_path / "tok" / "vocab.txt").exists()
    again = BertTokenizerFast.from_pretrained(str(tmp_path / "tok"))
    assert len(again) == len(tok)
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id] == [0, 1, 2, 3, 4]
    for t in EXTRA_SPECIAL_TOKENS:  # markers are single special tokens
        assert len(tok.tokenize(t)) == 1 and tok.convert_tokens_to_ids(t) != tok.unk_token_id
    enc = again("红色的猫 hello [KNOW] 公园")
    tokens = again.convert_ids_to_tokens(enc["input_ids"])
    # bert-base-chinese behaviour: every CJK character is its own token; wrapped in CLS/SEP
    assert tokens == ["[CLS]", "红", "色", "的", "猫", "hello", "[KNOW]", "公", "园", "[SEP]"]


def test_decode_tokens_writes_chinese_without_spaces(tmp_path):
    tok = train_wordpiece(TEXTS, tmp_path / "tok", vocab_size=300)
    ids = tok("你好 hello world 猫")["input_ids"]
    assert decode_tokens(tok, ids) == "你好hello world猫"
    assert tok.decode(ids, skip_special_tokens=True) != decode_tokens(tok, ids)  # the reason it exists
    # unseen characters become [UNK] in the vocabulary and are dropped (special) when decoding
    assert decode_tokens(tok, tok("龘猫")["input_ids"]) == "猫"


def test_load_missing_directory_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "nope")
    (tmp_path / "empty").mkdir()          # a pretrained directory that holds no tokenizer
    with pytest.raises(RuntimeError, match=r"tokenizer directory '[^']*empty' holds no tokenizer"):
        load_tokenizer(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(RuntimeError, match="not reachable|empty vocabulary"):
        load_tokenizer("bert-base-chinese")


def test_corpus_covers_what_the_baselines_write(tmp_path):
    """The demo vocabulary is trained on the dialogues, the C3KG table, the relation labels of
    the knowledge segment and the ChatGLM prompt: none of them falls apart into [UNK]."""
    from tiktalk.io import write_jsonl
    from tiktalk.knowledge.flows import format_flows
    from tiktalk.models.prompts import build_prompt
    from tiktalk.models.tokenizer_corpus import tokenizer_corpus

    write_jsonl(tmp_path / "train.jsonl", [
        {"dialogue_id": "v_0", "video_id": "v", "split": "train", "context": ["今天去公园", "好啊"],
         "responses": ["一起走吧"]}])
    (tmp_path / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n下雨天\temotion_cause\t难过\t2\n",
                                       encoding="utf-8")
    texts = tokenizer_corpus(tmp_path / "train.jsonl", tmp_path / "c3kg.tsv")
    assert texts[:5] == ["今天去公园", "好啊", "一起走吧", "下雨天", "难过"]
    tok = train_wordpiece(texts, tmp_path / "tok", vocab_size=300)
    knowledge = format_flows([{"head": "下雨天", "relation": "emotion_cause", "tail": "难过"},
                              {"head": "下雨天", "relation": "xReact", "tail": "难过"}])
    for text in (knowledge, build_prompt(["今天去公园", "好啊", "一起走吧"], 3)):
        assert tok.unk_token_id not in tok(text)["input_ids"], text
    with pytest.raises(ValueError, match="train.jsonl"):  # rows are checked like everywhere else
        write_jsonl(tmp_path / "train.jsonl", [{"dialogue_id": "x", "context": ["a"]}])
        tokenizer_corpus(tmp_path / "train.jsonl")
