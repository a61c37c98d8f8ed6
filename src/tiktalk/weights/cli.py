"""``tiktalk weights ...``: the weights stage's command line (argparse only at import).

    tiktalk weights make-rehearsal DIR [--with-data] [--seed N]
        tiny same-class weights into DIR/weights/<name>/ (config/rehearsal.yaml reads
        rehearsal/weights); --with-data also writes DIR/release (official layout, no val.json),
        DIR/videos and DIR/c3kg.tsv (tiktalk.demo.rehearsal)
"""

from __future__ import annotations

import argparse


def weights_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = actions.add_parser("make-rehearsal", help="tiny same-class weights (and data) for "
                                                     "config/rehearsal.yaml")
    make.add_argument("dir", metavar="DIR", help="e.g. rehearsal (the config's paths start there)")
    make.add_argument("--with-data", action="store_true",
                      help="also the release without val.json, the videos and the C3KG table")
    make.add_argument("--seed", type=int, default=13)


def weights_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tiktalk.rehearsal.weights import build_rehearsal_weights

    root = Path(args.dir)
    built = build_rehearsal_weights(root / "weights", seed=args.seed)
    for name, files in built.items():
        print(f"{root / 'weights' / name}: {len(files)} file(s)")
    if args.with_data:
        from tiktalk.demo.rehearsal import make_rehearsal_data

        summary = make_rehearsal_data(root, seed=args.seed)
        print(f"{root}: release (train/test, no val), {summary['videos']} videos, c3kg.tsv")
    return 0
