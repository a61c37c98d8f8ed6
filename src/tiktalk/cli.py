"""The ``tiktalk`` command line: ``tiktalk <subcommand> ...``.

Subcommands live in :data:`SUBCOMMANDS`, a name -> :class:`Subcommand` registry. To add one,
write an ``add_arguments(parser)`` and a ``run(args) -> int`` function and call
:func:`register` (or add an entry to the dict). ``run`` should import heavy modules itself so
that ``tiktalk --help`` stays fast. A :class:`UsageError`, ValueError or FileNotFoundError
raised by ``run`` is printed as ``tiktalk <name>: error: ...`` (one line) with exit status 2;
anything else propagates. ``tiktalk --version`` prints the package version.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


SUBCOMMANDS: dict[str, Subcommand] = {}


class UsageError(Exception):
    """What the user must change (a missing tool, a bad input): printed as one line, exit 2."""


def register(name: str, help: str, add_arguments, run) -> None:
    if name in SUBCOMMANDS:
        raise ValueError(f"subcommand {name!r} is already registered")
    SUBCOMMANDS[name] = Subcommand(help, add_arguments, run)


# ---------------------------------------------------------------- evaluate
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from tiktalk.metrics.evaluate import PROTOCOLS  # light: pycocoevalcap's pure-Python scorers

    parser.add_argument("--predictions", required=True, metavar="P.jsonl",
                        help='one {"dialogue_id", "response"} per line')
    parser.add_argument("--references", required=True, metavar="R.jsonl",
                        help='one {"dialogue_id", "references": [...]} per line; sets the order')
    parser.add_argument("--out", required=True, metavar="M.json", help="metrics JSON to write (atomically)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                        help="per-reference: mean over reference slots of corpus scores against "
                             "slot k alone (the paper's protocol, default); all-references: one "
                             "corpus score with all references (nlg-eval compute_metrics)")
    parser.add_argument("--no-meteor", action="store_true",
                        help="skip METEOR (it needs Java): the output has no 'meteor' key "
                             "(as nlg-eval's --no-... flags omit a metric)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="also a 95%% interval on every metric from N resamples of the "
                             "dialogues (e.g. 1000; 'intervals' in the JSON, docs/claims.md)")
    parser.add_argument("--bootstrap-seed", type=int, default=0, metavar="S",
                        help="seed of the resamples (default 0)")


def _evaluate_run(args: argparse.Namespace) -> int:
    from tiktalk.metrics.evaluate import evaluate_files, format_table
    from tiktalk.metrics.scorers import MeteorUnavailable

    try:
        metrics = evaluate_files(args.predictions, args.references, args.out, args.protocol,
                                 use_meteor=not args.no_meteor, bootstrap=args.bootstrap,
                                 bootstrap_seed=args.bootstrap_seed)
    except MeteorUnavailable as exc:
        raise UsageError(f"{exc}, or pass --no-meteor to leave METEOR out") from None
    print(format_table(metrics, title=f"{args.predictions} ({args.protocol})"))
    return 0


register("evaluate", "BLEU/METEOR/ROUGE-L/CIDEr/Dist-n of predictions against references",
         _evaluate_arguments, _evaluate_run)

# ---------------------------------------------------------------- annotation kits (Table 4, Fig. 2)
from tiktalk.report.kit import cli as kit_cli  # noqa: E402  (light: argparse only)

register("human-eval", "Table 4 kit: blinded rating sheets, scores + Fleiss' kappa, the table",
         kit_cli.human_eval_arguments, kit_cli.human_eval_run)
register("context-sources", "Figure 2(b)/(c) kit: context-source labelling sheets and shares",
         kit_cli.context_sources_arguments, kit_cli.context_sources_run)

# ---------------------------------------------------------------- media stage tools
from tiktalk.media import cli as media_cli  # noqa: E402  (light: no torch)

register("media", "media stage tools: `tiktalk media probe` tries the video sources before a run, "
         "`tiktalk media retry` fetches the failed videos again",
         media_cli.media_arguments, media_cli.media_run)


# ---------------------------------------------------------------- pretrained weights
from tiktalk.weights import cli as weights_cli  # noqa: E402  (light: argparse only)

register("weights", "pretrained weights: `tiktalk weights make-rehearsal DIR` builds the "
         "rehearsal's tiny same-class models", weights_cli.weights_arguments, weights_cli.weights_run)


# ---------------------------------------------------------------- scale rehearsal, cost plan
from tiktalk.scale import cli as scale_cli  # noqa: E402  (light: argparse only)

register("rehearse", "the scale rehearsal: `tiktalk rehearse scale --fraction F` writes a "
         "synthetic release of F x TikTalk's size; `collect` gathers its jobs' costs",
         scale_cli.rehearse_arguments, scale_cli.rehearse_run)
register("plan", "the cost of a real run (jobs, GPU-hours, disk, peak RAM, wall time on N nodes) "
         "from the scale rehearsal's measurements: results/plan.md", scale_cli.plan_arguments,
         scale_cli.plan_run)


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    from tiktalk import __version__

    parser = argparse.ArgumentParser(prog="tiktalk", description="TikTalk reproduction pipeline")
    parser.add_argument("--version", action="version", version=f"tiktalk {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, sub in SUBCOMMANDS.items():
        sp = subs.add_parser(name, help=sub.help, description=sub.help)
        sub.add_arguments(sp)
        sp.set_defaults(_run=sub.run, _parser=sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args._run(args)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        args._parser.exit(2, f"{args._parser.prog}: error: {exc}\n")
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
