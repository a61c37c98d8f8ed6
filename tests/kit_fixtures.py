"""A small test split and system predictions for the annotation-kit tests."""

from __future__ import annotations

from pathlib import Path

from tiktalk.io import write_jsonl

# Distinctive system names, so that a test can check no sheet or page leaks one.
SYSTEMS = ("sysgood_maria", "sysbad_livebot", "sysmid_dialogpt")


def write_split(path: Path, n_videos: int = 12, per_video: int = 2, split: str = "test") -> list[dict]:
    """Dialogues ``{video}_{k}`` with 1..5 context turns (levels 2..6) and 5 references."""
    rows = []
    for v in range(n_videos):
        video_id = f"{7000000000000000000 + v}"
        for k in range(per_video):
            n_ctx = 1 + (v + k) % 5
            rows.append({
                "dialogue_id": f"{video_id}_{k}", "video_id": video_id, "split": split,
                "context": [f"视频{v}第{k}段, 有逗号, \"引号\"\n和换行" if t == 0 else f"回复 {v}-{k}-{t}"
                            for t in range(n_ctx)],
                "responses": [f"参考 {v}-{k}-{r}" for r in range(5 if split != "train" else 1)],
            })
    write_jsonl(path, rows)
    return rows


def write_predictions(root: Path, rows: list[dict], systems=SYSTEMS, split: str = "test") -> dict[str, Path]:
    """``root/{system}/{split}.jsonl``; each system answers differently."""
    paths = {}
    for i, s in enumerate(systems):
        path = root / s / f"{split}.jsonl"
        write_jsonl(path, ({"dialogue_id": r["dialogue_id"],
                            "response": f"{'甲乙丙丁戊'[i % 5]}说: {r['dialogue_id']} </script><b>&</b>"}
                           for r in rows))
        paths[s] = path
    return paths
