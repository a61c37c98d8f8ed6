"""Command-line front ends of the annotation kits, for :mod:`tiktalk.cli`::

    tiktalk human-eval sheet --predictions-dir results/predictions --split test \\
        --dialogues results/data/test.jsonl --baselines maria,maria_c3kg --n 100 \\
        --annotators 3 --seed 13 --out he/     # he/sheets/*.csv + *.html, he/key.json
    tiktalk human-eval score --ratings filled/ --key he/key.json --out scores.json
    tiktalk human-eval table --scores scores.json --labels maria=Maria,... --out-dir tables/
    tiktalk context-sources sheet --dialogues results/data/test.jsonl --split test \\
        --n-videos 300 --annotators 3 --seed 13 --out cs/
    tiktalk context-sources score --ratings filled/ --key cs/key.json --out cs.json \\
        --figure-dir plots/

Imports here stay light (``tiktalk --help`` must be fast); each action imports its module.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in _csv_list(text):
        name, sep, label = part.partition("=")
        if not sep or not name.strip() or not label.strip():
            raise argparse.ArgumentTypeError(f"expected name=Label pairs, got {part!r}")
        out[name.strip()] = label.strip()
    return out


def _page_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--frames-dir", metavar="DIR",
                   help="thumbnails for the pages: DIR/<video_id>/*.jpg|png")
    g.add_argument("--videos-dir", metavar="DIR", action="append",
                   help="<video_id>.mp4 files: thumbnails are extracted with PyAV into OUT/frames "
                        "and small playable copies written to OUT/sheets/clips (repeatable)")
    p.add_argument("--frames", type=int, default=6, metavar="K", help="thumbnails per video (default 6)")
    p.add_argument("--clip-height", type=int, default=360, metavar="PX",
                   help="height of the video copies beside the pages (default 360; 0: none)")
    p.add_argument("--video-href", metavar="TEMPLATE",
                   help='relative link to each video for the player on the page instead of the '
                        'copies, e.g. "videos/{video_id}.mp4"')


def _media(args, key: dict, out: Path) -> tuple[dict, dict]:
    """(thumbnails, video links) for the pages of a kit written to ``out``."""
    from tiktalk.report.kit.clips import CLIPS_DIR, clip_links, template_links, write_clips
    from tiktalk.report.kit.frames import extract_thumbnails, load_strips

    videos = sorted({it["video_id"] for it in key["items"]})
    strips, links = {}, template_links(args.video_href, videos)
    frames_dir = args.frames_dir
    if args.videos_dir and args.frames > 0:
        frames_dir = out / "frames"
        problems = extract_thumbnails(videos, args.videos_dir, frames_dir, n_frames=args.frames)
        for video_id, why in problems.items():
            print(f"no frames for video {video_id}: {why}")
    if frames_dir and args.frames > 0:
        strips = load_strips(frames_dir, videos, max_frames=args.frames)
    if args.videos_dir and args.clip_height > 0 and not links:
        clips_dir = out / "sheets" / CLIPS_DIR
        for video_id, why in write_clips(videos, args.videos_dir, clips_dir,
                                         height=args.clip_height).items():
            print(f"no video copy for video {video_id}: {why}")
        links = clip_links(clips_dir, videos)
    return strips, links


# ------------------------------------------------------------------------------ human-eval
def human_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from tiktalk.report.paper import TABLE4_CRITERIA, TABLE4_SCALE

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("sheet", help="blinded rating sheets (CSV + HTML) per annotator and the key")
    p.add_argument("--predictions-dir", required=True, metavar="DIR",
                   help="DIR/<baseline>/<split>.jsonl for every baseline")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--dialogues", required=True, metavar="D.jsonl", help="the split's dialogue table")
    p.add_argument("--baselines", required=True, type=_csv_list, metavar="A,B,...")
    p.add_argument("--n", type=int, default=100, help="dialogues to rate (paper: 100)")
    p.add_argument("--annotators", type=int, default=3, help="paper: 3")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--scale-low", type=int, default=TABLE4_SCALE[0])
    p.add_argument("--scale-high", type=int, default=TABLE4_SCALE[1])
    p.add_argument("--criteria", type=_csv_list, default=list(TABLE4_CRITERIA), metavar="C1,C2,...")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="writes DIR/sheets/<annotator>.csv|.html (hand these out) and DIR/key.json "
                        "(keep it apart)")
    _page_arguments(p)

    p = sub.add_parser("score", help="per-system means and Fleiss' kappa from filled sheets")
    p.add_argument("--ratings", required=True, metavar="DIR", help="the filled sheets (*.csv, *.xlsx)")
    p.add_argument("--key", required=True, metavar="KEY.json")
    p.add_argument("--out", required=True, metavar="OUT.json")

    p = sub.add_parser("table", help="Table 4 (csv/md/tex + png) beside the paper's numbers")
    p.add_argument("--scores", required=True, metavar="OUT.json", help="from `human-eval score`")
    p.add_argument("--labels", type=_labels, default={}, metavar="run=Label,...",
                   help="paper row of each run, e.g. maria_c3kg=Maria+C3KG")
    p.add_argument("--data-source", choices=("demo", "release"), default="release")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="writes DIR/table4.csv, .md, .tex and .png")


def human_eval_run(args: argparse.Namespace) -> int:
    if args.action == "sheet":
        from tiktalk.report.kit.human_eval import make_sheets, write_pages
        from tiktalk.report.kit.settings import Scale

        out = Path(args.out)
        predictions = {b: Path(args.predictions_dir) / b / f"{args.split}.jsonl" for b in args.baselines}
        scale = Scale(args.scale_low, args.scale_high, tuple(args.criteria))
        key = make_sheets(args.dialogues, predictions, split=args.split, n=args.n,
                          annotators=args.annotators, seed=args.seed, scale=scale,
                          sheets_dir=out / "sheets", key_path=out / "key.json")
        pages = write_pages(key, out / "sheets", *_media(args, key, out))
        print(f"{len(key['items'])} dialogues x {len(args.baselines)} systems for "
              f"{len(key['annotators'])} annotators: {out / 'sheets'} ({len(pages)} pages); "
              f"key: {out / 'key.json'}")
    elif args.action == "score":
        from tiktalk.report.kit.human_eval import score

        result = score(args.ratings, args.key, args.out)
        print(json.dumps({"means": result["means"], "kappa_pooled": result["kappa"]["pooled"]["kappa"]},
                         ensure_ascii=False, indent=1))
    else:
        from tiktalk.report.kit.human_eval import read_scores
        from tiktalk.report.kit.table4 import build_table4, plot_table4

        scores = read_scores(args.scores)
        out = Path(args.out_dir)
        build_table4(scores, args.labels, out / "table4.csv", out / "table4.md", out / "table4.tex",
                     data_source=args.data_source)
        plot_table4(scores, args.labels, out / "table4.png", args.data_source)
        print((out / "table4.md").read_text(encoding="utf-8"))
    return 0


# ------------------------------------------------------------------------- context-sources
def context_sources_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("sheet", help="labelling sheets (CSV + HTML) per annotator and the key")
    p.add_argument("--dialogues", required=True, metavar="D.jsonl")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--n-videos", type=int, default=300, help="videos to sample (paper: 300)")
    p.add_argument("--annotators", type=int, default=3)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="writes DIR/sheets/<annotator>.csv|.html and DIR/key.json")
    _page_arguments(p)

    p = sub.add_parser("score", help="shares per source and level, kappa per label, Figure 2")
    p.add_argument("--ratings", required=True, metavar="DIR", help="the filled sheets (*.csv, *.xlsx)")
    p.add_argument("--key", required=True, metavar="KEY.json")
    p.add_argument("--out", required=True, metavar="OUT.json")
    p.add_argument("--figure-dir", metavar="DIR",
                   help="also write DIR/figure2b.csv, figure2c.csv, figure2.md, figure2.png")
    p.add_argument("--data-source", choices=("demo", "release"), default="release")


def context_sources_run(args: argparse.Namespace) -> int:
    from tiktalk.report.kit import context_sources as cs

    if args.action == "sheet":
        out = Path(args.out)
        key = cs.make_sheets(args.dialogues, split=args.split, n_videos=args.n_videos,
                             annotators=args.annotators, seed=args.seed,
                             sheets_dir=out / "sheets", key_path=out / "key.json")
        cs.write_pages(key, out / "sheets", *_media(args, key, out))
        n = sum(len(it["candidates"]) for it in key["items"])
        print(f"{n} responses of {len(key['items'])} dialogues for {len(key['annotators'])} "
              f"annotators: {out / 'sheets'}; key: {out / 'key.json'}")
        return 0
    result = cs.score(args.ratings, args.key, args.out)
    if args.figure_dir:
        from tiktalk.report.kit.figure2 import build_figure2

        d = Path(args.figure_dir)
        build_figure2(result, d / "figure2b.csv", d / "figure2c.csv", d / "figure2.md",
                      d / "figure2.png", data_source=args.data_source)
    print(json.dumps({s: v["percent"] for s, v in result["shares"].items()}, indent=1))
    return 0
