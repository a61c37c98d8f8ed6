"""Table 2 of the paper, data division: per split and in total, videos, dialogues, turns, Avg-v,
Avg-t and Avg-l, beside the paper's numbers.

How things are counted (the definitions the paper's own numbers imply, :func:`paper_checks`):

* **Turns** of a dialogue = its context utterances + ONE response. A val/test dialogue has five
  references but they are five answers to the same turn, not five turns. The paper's numbers
  fix this: turns / dialogues gives its Avg-t in every row (Train 816,170 / 363,589 = 2.245,
  Test 7,087 / 2,728 = 2.598, Total 826,752 / 367,670 = 2.249), and counting all five
  references would put every val/test dialogue at >= 6 turns, not 2.6. The least a dialogue
  can have is 2 (one context utterance and the response): Train's 2.24 means most training
  dialogues answer a single comment (Level-2 replies).
* **Avg-t** = turns / dialogues.
* **Avg-l** = characters per turn: the characters of every counted turn over the number of
  turns; a val/test dialogue's response turn counts the mean length of its references.
  Characters are non-whitespace code points (the metrics' character tokens). The paper's total
  16.41 is the turn-weighted mean of its split rows (within their rounding).
* **Avg-v** = the mean duration of the dialogues' videos, each DIALOGUE counting its video's
  duration (from the media stage's status tables). The paper's total, 34.03 s, is the
  dialogue-weighted mean of its rows (34.03-34.04 within rounding); the video-weighted mean
  would be 34.21 s, which no rounding of the rows allows. The per-video mean is given too
  (``avg_v_per_video``). Videos without a known duration (failed fetch) are left out and
  counted.
* **Videos**: distinct video ids of the split (the splits share none, so they add up).
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

from tiktalk.data.dialogues import read_dialogues
from tiktalk.formats import SPLITS
from tiktalk.io import write_text_atomic
from tiktalk.media.tables import read_status
from tiktalk.report.render import (
    Block,
    Column,
    data_source_name,
    markdown_table,
    to_csv,
    to_latex,
    to_markdown,
)

PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 2"
# Split: videos, dialogues, turns, Avg-v (s), Avg-t, Avg-l
PAPER_TABLE2 = {
    "Train": (35703, 363589, 816170, 34.01, 2.24, 16.42),
    "Val": (1000, 1353, 3495, 36.93, 2.58, 16.06),
    "Test": (2000, 2728, 7087, 36.42, 2.60, 16.25),
    "Total": (38703, 367670, 826752, 34.03, 2.25, 16.41),
}
KEYS = ("videos", "dialogues", "turns", "avg_v", "avg_t", "avg_l")
COLUMNS = (
    Column("videos", "Videos", "{:,}"), Column("dialogues", "Dialogues", "{:,}"),
    Column("turns", "Turns", "{:,}"), Column("avg_v", "Avg-v (s)", "{:.2f}"),
    Column("avg_t", "Avg-t", "{:.2f}"), Column("avg_l", "Avg-l", "{:.2f}"),
)
CSV_FIELDS = ("source", "split") + KEYS + ("avg_v_per_video", "videos_without_duration")


def n_chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def dialogue_counts(row: Mapping) -> tuple[int, float]:
    """(turns, characters of those turns) of one dialogue row (module docstring)."""
    refs = row["responses"]
    response_chars = sum(n_chars(r) for r in refs) / len(refs)
    return len(row["context"]) + 1, sum(n_chars(c) for c in row["context"]) + response_chars


def durations(status_paths: Iterable[str | os.PathLike]) -> dict[str, float]:
    """video_id -> duration (s) from the media status tables (rows without one are left out)."""
    out = {}
    for path in status_paths:
        for row in read_status(path):
            if row["duration"]:
                out[row["video_id"]] = float(row["duration"])
    return out


def _stats(rows: Sequence[Mapping], duration: Mapping[str, float]) -> dict:
    turns = chars = 0.0
    for row in rows:
        t, c = dialogue_counts(row)
        turns += t
        chars += c
    videos = sorted({r["video_id"] for r in rows})
    known = [duration[r["video_id"]] for r in rows if r["video_id"] in duration]
    per_video = [duration[v] for v in videos if v in duration]
    return {
        "videos": len(videos), "dialogues": len(rows), "turns": int(turns),
        "avg_v": sum(known) / len(known) if known else None,
        "avg_t": turns / len(rows) if rows else None,
        "avg_l": chars / turns if turns else None,
        "avg_v_per_video": sum(per_video) / len(per_video) if per_video else None,
        "videos_without_duration": len(videos) - len(per_video),
    }


def table2_rows(dialogues: Mapping[str, Sequence[Mapping]], duration: Mapping[str, float]) -> list[dict]:
    """Our rows: one per split (in split order) and the total."""
    rows = []
    for split in SPLITS:
        if split in dialogues:
            rows.append({"source": "ours", "split": split.capitalize(), **_stats(dialogues[split], duration)})
    everything = [r for split in SPLITS if split in dialogues for r in dialogues[split]]
    rows.append({"source": "ours", "split": "Total", **_stats(everything, duration)})
    return rows


def paper_rows() -> list[dict]:
    return [{"source": "paper", "split": s, **dict(zip(KEYS, v))} for s, v in PAPER_TABLE2.items()]


def paper_checks() -> list[dict]:
    """The counting definitions checked against the paper's own Table 2 (module docstring):
    ``{"claim", "expected", "got", "ok"}`` per check, computed from :data:`PAPER_TABLE2`."""
    p = PAPER_TABLE2
    splits = ("Train", "Val", "Test")
    checks = []
    for i, name in ((0, "videos"), (1, "dialogues"), (2, "turns")):
        got = sum(p[s][i] for s in splits)
        checks.append({"claim": f"Total {name} = sum of the splits", "expected": p["Total"][i],
                       "got": got, "ok": got == p["Total"][i]})
    for s in (*splits, "Total"):
        got = p[s][2] / p[s][1]
        checks.append({"claim": f"{s}: Avg-t = turns / dialogues (turns = context + one response)",
                       "expected": p[s][4], "got": round(got, 3), "ok": round(got, 2) == p[s][4]})

    def weighted_range(col: int, weight: int) -> tuple[float, float]:
        w = [p[s][weight] for s in splits]
        lo = sum(wi * (p[s][col] - 0.005) for wi, s in zip(w, splits)) / sum(w)
        hi = sum(wi * (p[s][col] + 0.005) for wi, s in zip(w, splits)) / sum(w)
        return lo, hi

    for col, weight, what, expect_ok in ((3, 1, "Avg-v: dialogue-weighted mean of the splits", True),
                                         (3, 0, "Avg-v: video-weighted mean of the splits", False),
                                         (5, 2, "Avg-l: turn-weighted mean of the splits", True)):
        lo, hi = weighted_range(col, weight)
        inside = lo - 0.005 <= p["Total"][col] <= hi + 0.005
        checks.append({"claim": f"Total {what}" + ("" if expect_ok else " (rejected)"),
                       "expected": p["Total"][col], "got": f"{lo:.3f}-{hi:.3f}",
                       "ok": inside == expect_ok})
    return checks


def caption(source: str) -> str:
    return (f"Data division of {data_source_name(source)}. Turns of a dialogue: its context "
            "utterances plus one response (the five references of a val/test dialogue are one "
            "turn); Avg-v: mean duration (s) of the dialogues' videos; Avg-t: turns per dialogue; "
            "Avg-l: characters per turn.")


def _display(rows: Sequence[Mapping]) -> list[dict]:
    return [{**r, "label": r["split"]} for r in rows]


def build_table2(dialogue_paths: Mapping[str, str | os.PathLike], status_paths: Iterable[str | os.PathLike],
                 out_csv, out_md, out_tex, *, data_source: str) -> list[dict]:
    """Write Table 2 (ours, the paper's rows, the definition checks); return our rows."""
    dialogues = {s: read_dialogues(p, s) for s, p in dialogue_paths.items()}
    ours = table2_rows(dialogues, durations(status_paths))
    paper = paper_rows()
    fmt = {k: "{:.4f}" for k in ("avg_v", "avg_t", "avg_l", "avg_v_per_video")}
    write_text_atomic(out_csv, to_csv(CSV_FIELDS, ours + paper, fmt))
    blocks = [Block("Ours", _display(ours)), Block(f"Paper (reported: {PAPER_CITATION})", _display(paper))]
    missing = ours[-1]["videos_without_duration"]
    notes = [f"{missing} video(s) without a known duration are left out of Avg-v."] if missing else []
    checks = paper_checks()
    md = to_markdown(COLUMNS, blocks, caption(data_source), "Split")
    md += "".join(f"\n{n}\n" for n in notes)
    md += ("\n### How the paper counts (checked on its own numbers)\n\n"
           + markdown_table(["Check", "Paper", "Computed", "OK"],
                            ([c["claim"], c["expected"], c["got"], "yes" if c["ok"] else "NO"]
                             for c in checks), "lrrl") + "\n")
    write_text_atomic(out_md, md)
    write_text_atomic(out_tex, to_latex(COLUMNS, blocks, caption(data_source), "tab:table2", "Split", notes))
    return ours
