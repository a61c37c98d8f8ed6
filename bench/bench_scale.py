"""How each stage's time and memory grow with the data, from scale-rehearsal runs.

Prints, per job of the paper DAG, the exponent b of ``cost ~ items^b`` between the two largest
runs given (1.0: linear; the data stages must stay <= 1.1), for wall time, CPU time (where both
runs recorded a second or more: on a busy machine it is the better measure of the work) and
peak memory,
with the cost at the largest run. A memory exponent near 0 means the job's memory does not grow
with the data (what a training job needs at TikTalk's size).

    python bench/bench_scale.py scale/f0.01 scale/f0.1 scale/f1        # finished runs
    python bench/bench_scale.py --run 0.002 0.004 [--workdir DIR]       # make and run two now

``--run`` generates each fraction (tiktalk rehearse scale, a 20,000-triple C3KG) and runs
config/scale.yaml's data stages on it (release adapter, manifest, shards, retrieval, ranking
candidates, Table 2), then prints; minutes on a laptop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_TARGETS = ["results/knowledge/train.jsonl", "results/knowledge/test.jsonl",
                "results/media/coverage.json", "results/tables/table2.csv",
                "results/ranking/test.candidates.json"]


def run_fraction(fraction: float, workdir: Path) -> Path:
    from tiktalk.scale.generate import ScaleSpec, make_scale_rehearsal

    out = workdir / f"f{fraction:g}"
    make_scale_rehearsal(out, ScaleSpec(fraction=fraction, c3kg_triples=20_000))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-m", "snakemake", *DATA_TARGETS, "--cores", "2", "-d", str(out),
                    "-s", str(ROOT / "Snakefile"), "--configfile", str(ROOT / "config/scale.yaml"),
                    str(out / "sizes.yaml")], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def main(argv=None) -> int:
    from tiktalk.scale.measure import collect_runs, growth
    from tiktalk.scale.plan import load_yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="*", help="scale run working directories")
    parser.add_argument("--run", nargs="+", type=float, metavar="F", help="generate and run these fractions")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    dirs = [Path(d) for d in args.dirs]
    if args.run:
        work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
        dirs += [run_fraction(f, work) for f in args.run]
    if len(dirs) < 2:
        parser.error("give at least two runs (directories or --run fractions)")
    families = {b: v["family"] for b, v in load_yaml(ROOT / "config/scale.yaml")["baselines"].items()}
    rows = growth(collect_runs(dirs, families))
    print(f"{'job':<44} {'items':>9} {'time (s)':>9} {'time exp':>9} {'cpu exp':>8} {'peak (MB)':>10} {'mem exp':>8}")
    for g in rows:
        name = f"{g['rule']}/{g['job']}".rstrip("/")
        te = "-" if g["time_exponent"] is None else f"{g['time_exponent']:.2f}"
        ce = "-" if g["cpu_exponent"] is None else f"{g['cpu_exponent']:.2f}"
        me = "-" if g["memory_exponent"] is None else f"{g['memory_exponent']:.2f}"
        print(f"{name:<44} {int(g['items']):>9} {g['s']:>9.1f} {te:>9} {ce:>8} {g['max_rss_mb']:>10.0f} {me:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
