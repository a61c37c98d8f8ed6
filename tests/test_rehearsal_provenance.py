"""What a job records about the weights it loaded (tiktalk.io.provenance): the sha256 of each file
or directory, computed here independently, and a random_init flag; the retriever's sidecar and
the shard files' record of an encoder chain (the slow SLURM rehearsal checks every job)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from tiktalk.io import provenance
from tiktalk.rehearsal.weights import build_rehearsal_weights


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_files_directories_and_names_are_recorded(tmp_path):
    (tmp_path / "a.pth").write_bytes(b"weights")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_bytes(b"{}")
    (model / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_bytes(b"ignored")          # hidden: not part of the weights
    rec = provenance([tmp_path / "a.pth", None, str(model), tmp_path / "a.pth", "org/hub-name"])
    assert rec["random_init"] is False
    lines = f"config.json\t{_sha(b'{}')}\nsub/w.bin\t{_sha(bytes([0, 1]))}\n"
    assert rec["weights"] == [
        {"path": str(tmp_path / "a.pth"), "sha256": _sha(b"weights"), "files": 1},
        {"path": str(model), "sha256": _sha(lines.encode()), "files": 2},
        {"path": "org/hub-name", "sha256": None, "files": 0},         # not local: no fingerprint
    ]
    # an already computed fingerprint is taken as it is (a 12 GB directory is hashed once)
    again = provenance([rec["weights"][1], model], random_init=True)
    assert again == {"random_init": True, "weights": [rec["weights"][1]]}


def test_encoder_chain_record_joins_its_encoders():
    from tiktalk.media.encoders import chain_provenance

    class Enc:
        def __init__(self, rec):
            self.provenance = rec

    w1, w2 = ({"path": p, "sha256": p * 2, "files": 1} for p in ("x", "y"))
    rec = chain_provenance([Enc({"random_init": False, "weights": [w1]}),
                            Enc({"random_init": False, "weights": [w1, w2]})])
    assert rec == {"random_init": False, "weights": [w1, w2]}
    assert chain_provenance([Enc({"random_init": True, "weights": []}), Enc(rec)])["random_init"] is True


def test_retrieval_writes_the_sentence_bert_fingerprint_beside_its_flows(tmp_path):
    from tiktalk.knowledge.retrieve import retrieve_split

    build_rehearsal_weights(tmp_path / "weights", names=["sbert-chinese"])
    sbert = tmp_path / "weights" / "sbert-chinese"
    dialogues = tmp_path / "test.jsonl"
    row = {"dialogue_id": "v_0", "video_id": "v", "split": "test", "context": ["今天天气很好"],
           "responses": ["是的"] * 5}
    dialogues.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    c3kg = tmp_path / "c3kg.tsv"
    pd.DataFrame({"head": ["天气很好", "吃饭了吗"], "relation": ["next_sentence"] * 2,
                  "tail": ["出去走走", "吃了"], "weight": [1.0, 1.0]}).to_csv(c3kg, sep="\t", index=False)
    for kind, cfg in (("sbert", {"kind": "sbert", "model": str(sbert), "device": "cpu", "top_k": 1}),
                      ("tfidf", {"kind": "char_tfidf", "top_k": 1})):
        side = tmp_path / f"{kind}.provenance.json"
        assert retrieve_split(dialogues, c3kg, tmp_path / f"{kind}.jsonl", cfg, progress=False,
                              provenance_path=side) == 1
        rec = json.loads(side.read_text())
        assert rec["random_init"] is False
        if kind == "sbert":
            files = sorted(p for p in sbert.rglob("*") if p.is_file())
            lines = "".join(f"{p.relative_to(sbert).as_posix()}\t{_sha(p.read_bytes())}\n" for p in files)
            assert rec["weights"] == [{"path": str(sbert), "sha256": _sha(lines.encode()), "files": len(files)}]
        else:
            assert rec["weights"] == []                               # TF-IDF loads no weights
