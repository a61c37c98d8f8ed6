"""``tiktalk rehearse ...`` and ``tiktalk plan``: the scale rehearsal's command line
(argparse only at import).

    tiktalk rehearse scale --fraction F [--out DIR] [--c3kg-triples N] [--no-image]
        a synthetic release at F x the paper's size, its feature shards, C3KG and the tiny
        weights, under DIR (default scale/f<F>): config/scale.yaml's working directory
    tiktalk rehearse collect DIR [DIR ...] [--out results/tables/scale.csv] [--plot PNG]
        every job's time and peak memory (Snakemake benchmark files) with its data size
    tiktalk plan [--configfile config/tiktalk.yaml] [--measured scale.csv] [--nodes N]
        the cost of a real run: jobs, GPU-hours, disk, peak RAM, wall time (results/plan.md)
"""

from __future__ import annotations

import argparse


def rehearse_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = actions.add_parser("scale", help="synthetic release + features + C3KG at a fraction "
                                            "of the paper's size (config/scale.yaml)")
    make.add_argument("--fraction", type=float, required=True, help="1.0: Table 2's counts")
    make.add_argument("--out", default=None, help="default scale/f<fraction>")
    make.add_argument("--seed", type=int, default=13)
    make.add_argument("--c3kg-triples", type=int, default=1_000_000)
    make.add_argument("--no-image", action="store_true",
                      help="no BLIP-2 image shards (a config without a BLIP-2 row)")
    make.add_argument("--no-weights", action="store_true", help="data only (weights/ already there)")
    collect = actions.add_parser("collect", help="the runs' benchmark files as one table")
    collect.add_argument("dirs", nargs="+", metavar="DIR", help="scale run working directories")
    collect.add_argument("--configfile", default="config/scale.yaml",
                         help="the runs' config: which family each baseline job belongs to")
    collect.add_argument("--out", default="results/tables/scale.csv")
    collect.add_argument("--plot", default="results/plots/scale.png")


def rehearse_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.action == "scale":
        from tiktalk.scale.generate import ScaleSpec, make_scale_rehearsal

        out = Path(args.out or f"scale/f{args.fraction:g}")
        spec = ScaleSpec(fraction=args.fraction, seed=args.seed, c3kg_triples=args.c3kg_triples,
                         image_views=() if args.no_image else ("video",))
        summary = make_scale_rehearsal(out, spec, weights=not args.no_weights)
        f = summary["features"]
        print(f"{out}: {sum(c['videos'] for c in summary['counts'].values())} videos, "
              f"{sum(c['dialogues'] for c in summary['counts'].values())} dialogues, {f['shards']} shards "
              f"({f['bytes'] / 2**30:.1f} GiB of features), {summary['c3kg_triples']} C3KG triples")
        return 0
    from tiktalk.scale.measure import (check_budgets, collect_runs, plot_scale, write_budgets,
                                       write_scale_table)
    from tiktalk.scale.plan import load_yaml

    families = {b: v["family"] for b, v in load_yaml(args.configfile)["baselines"].items()}
    rows = collect_runs([Path(d) for d in args.dirs], families)
    write_scale_table(rows, args.out)
    plot_scale(rows, args.plot)
    checks = check_budgets(rows)
    budgets = str(Path(args.out).with_name(Path(args.out).stem + "_budgets.csv"))
    write_budgets(checks, budgets)
    failed = [c for c in checks if not c["ok"]]
    print(f"{args.out}: {len(rows)} jobs from {len(args.dirs)} run(s); {args.plot}")
    print(f"{budgets}: {len(checks) - len(failed)} of {len(checks)} budgets met")
    for c in failed:
        print(f"  NOT MET: {c['budget']} {c['job']}: {c['value']} (limit {c['limit']})")
    return 1 if failed else 0


def plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", default="config/tiktalk.yaml", help="the run's config")
    parser.add_argument("--profile", default="slurm/config.yaml", help="the SLURM profile's config.yaml")
    parser.add_argument("--measured", default=None,
                        help="scale.csv of a scale rehearsal at fraction 1.0 (default: the one "
                             "shipped with the package, measured on a 2-core machine)")
    parser.add_argument("--costs", default=None, help="per-item estimates (default: tiktalk/scale/costs.yaml)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of 4 x V100")
    parser.add_argument("--out", default="results/plan.md")


def plan_run(args: argparse.Namespace) -> int:
    from tiktalk.io import write_text_atomic
    from tiktalk.scale.measure import read_scale_table
    from tiktalk.scale.plan import COSTS, MEASURED, build_plan, load_yaml, render_plan

    if args.nodes < 1:
        raise ValueError("--nodes must be >= 1")
    config = load_yaml(args.configfile)
    profile = load_yaml(args.profile)
    measured_path = args.measured or MEASURED
    rows = read_scale_table(measured_path)
    top = max((r["fraction"] for r in rows), default=1.0)
    measured = [r for r in rows if r["fraction"] == top]
    lines = build_plan(config, profile, load_yaml(args.costs or COSTS), measured)
    text = render_plan(lines, args.nodes, args.configfile, args.profile, str(measured_path))
    write_text_atomic(args.out, text)
    print(text, end="")
    print(f"(written to {args.out})")
    return 0
