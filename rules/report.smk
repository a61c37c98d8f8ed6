# Table 3 (csv/md/tex) with bootstrap intervals (and the spread over seeds), its chart, the
# claims table, the training curves, and the demo's per-item-type wiring table; after a run
# with failed jobs, the partial Table 3 (onerror below).
from tiktalk.metrics.bootstrap import BootstrapSettings
from tiktalk.workflow import config_file, wiring_relations

TABLE_SPLIT = config["evaluation"]["table_split"]
TABLE3_FILES = {
    "csv": f"{R}/tables/table3.csv",
    "md": f"{R}/tables/table3.md",
    "tex": f"{R}/tables/table3.tex",
    "png": f"{R}/plots/table3.png",
}
TABLE3_LABELS = {b: config["baselines"][b]["label"] for b in BASELINES}
# runs that are rows of Table 3 (a baseline with `table3: false`, e.g. Maria+Audio+C3KG for
# Table 7, is trained and scored but not tabulated here)
TABLE3_BASELINES = [b for b in BASELINES if config["baselines"][b].get("table3", True)]
# every row's run per seed (config `seeds`), and the bootstrap over the table split's dialogues
TABLE3_RUNS = {b: SEED_RUNS[b] for b in TABLE3_BASELINES}
BOOTSTRAP = BootstrapSettings.from_config(config["evaluation"])
REPLICATES = f"{R}/statistics/bootstrap_{TABLE_SPLIT}.npz"
CLAIMS_CFG = config["evaluation"].get("claims") or {}
CLAIM_FILES = [os.path.relpath(SRC / "resources" / "claims.yaml", os.getcwd()),
               *(config_file(f, workflow.basedir) for f in CLAIMS_CFG.get("files", []))]
CURVES = {b: f"{R}/plots/training/{b}.png" for b in TRAINED}   # rows with a training


rule bootstrap:
    """The corpus scores of every Table 3 run on the same resamples of the table split's
    dialogues, from the score jobs' per-dialogue statistics (tiktalk.metrics.bootstrap)."""
    input:
        stats=[f"{R}/statistics/{r}/{TABLE_SPLIT}.npz" for b in TABLE3_BASELINES for r in TABLE3_RUNS[b]],
        code=code("bootstrap"),
    output:
        REPLICATES,
    params:
        runs=[r for b in TABLE3_BASELINES for r in TABLE3_RUNS[b]],
        resamples=BOOTSTRAP.resamples,
        seed=BOOTSTRAP.seed,
    log:
        f"{R}/logs/bootstrap.log",
    benchmark:
        f"{R}/benchmarks/bootstrap.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/bootstrap.py"


rule table3:
    """One row per baseline, the paper's numbers beside them; each number with its bootstrap
    interval (and the mean and spread over seeds). Strict: it runs once every baseline has
    metrics, and then removes a partial table left by an earlier failed run."""
    input:
        metrics=[f"{R}/metrics/{r}/{TABLE_SPLIT}.json" for b in TABLE3_BASELINES for r in TABLE3_RUNS[b]],
        replicates=REPLICATES,
        code=code("report"),
    output:
        csv=report(TABLE3_FILES["csv"], category="Table 3", caption="../workflow/report/table3.rst"),
        md=report(TABLE3_FILES["md"], category="Table 3", caption="../workflow/report/table3.rst"),
        tex=report(TABLE3_FILES["tex"], category="Table 3", caption="../workflow/report/table3.rst"),
        png=report(TABLE3_FILES["png"], category="Table 3", caption="../workflow/report/table3.rst"),
    params:
        baselines=TABLE3_BASELINES,
        labels={b: TABLE3_LABELS[b] for b in TABLE3_BASELINES},
        runs=TABLE3_RUNS,
        level=BOOTSTRAP.level,
        split=TABLE_SPLIT,
        data_source=config.get("release", {}).get("source", "release"),
    log:
        f"{R}/logs/table3.log",
    benchmark:
        f"{R}/benchmarks/table3.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/table3.py"


rule claims:
    """The paper's claims (and the config's own) tested on our runs: paired bootstrap
    comparisons, Holm-corrected, a verdict per claim that must hold on every seed; Table 4's
    claims from the filled rating sheets once human_eval.ratings_dir names them."""
    input:
        replicates=REPLICATES,
        claims=CLAIM_FILES,
        ratings=lambda w: (filled_sheet_files(HE.ratings_dir, "ratings_dir") if HE.ratings_dir else []),
        key=lambda w: ([f"{HE_DIR}/table4/key.json"] if HE.ratings_dir else []),
        code=code("claims"),
    output:
        csv=report(f"{R}/tables/claims.csv", category="Claims", caption="../workflow/report/claims.rst"),
        md=report(f"{R}/tables/claims.md", category="Claims", caption="../workflow/report/claims.rst"),
        comparisons=report(f"{R}/tables/claims_comparisons.csv", category="Claims",
                           caption="../workflow/report/claims.rst"),
    params:
        runs=TABLE3_RUNS,
        labels={b: TABLE3_LABELS[b] for b in TABLE3_BASELINES},
        seeds=SEEDS,
        alpha=CLAIMS_CFG.get("alpha", 0.05),
        level=BOOTSTRAP.level,
        ratings_dir=lambda w: HE.ratings_dir,
        rated_labels=lambda w: {b: HE_LABELS[b] for b in HE_BASELINES},
        split=TABLE_SPLIT,
        data_source=config.get("release", {}).get("source", "release"),
    log:
        f"{R}/logs/claims.log",
    benchmark:
        f"{R}/benchmarks/claims.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/claims.py"


rule training_curves:
    """Train and validation loss against the step of every row (each seed's run), and all rows
    overlaid, from the trainings' train_log.jsonl."""
    input:
        models=[f"{R}/models/{r}/model.pt" for b in TRAINED for r in TABLE3_RUNS.get(b, [b])],
        code=code("training_curves"),
    output:
        rows=[report(CURVES[b], category="Training", subcategory="Per row",
                     caption="../workflow/report/training.rst") for b in TRAINED],
        overlay=report(f"{R}/plots/training_curves.png", category="Training",
                       subcategory="All rows", caption="../workflow/report/training.rst"),
    params:
        runs={b: {f"seed {s}": r for s, r in zip(SEEDS if b in TABLE3_RUNS else [config["seed"]],
                                                  TABLE3_RUNS.get(b, [b]))} for b in TRAINED},
        labels={b: TABLE3_LABELS[b] for b in TRAINED},
    log:
        f"{R}/logs/training_curves.log",
    benchmark:
        f"{R}/benchmarks/training_curves.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/training_curves.py"


rule demo_item_types:
    """Demo wiring check: scores per item type (visual/audio/knowledge/text) per baseline, and
    the wiring margins with their paired bootstrap 95% intervals (tiktalk.report.wiring)."""
    input:
        predictions=expand(
            f"{R}/predictions/{{baseline}}/{TABLE_SPLIT}.jsonl", baseline=BASELINES
        ),
        references=f"{R}/data/{TABLE_SPLIT}_references.jsonl",
        item_types=f"{R}/demo/item_types.json",
        code=code("demo_wiring"),
    output:
        csv=report(
            f"{R}/tables/demo_item_types.csv",
            category="Demo wiring",
            caption="../workflow/report/items.rst",
        ),
        wiring=report(
            f"{R}/tables/demo_wiring.csv",
            category="Demo wiring",
            caption="../workflow/report/wiring.rst",
        ),
        wiring_md=f"{R}/tables/demo_wiring.md",
    params:
        baselines=BASELINES,
        labels=TABLE3_LABELS,
        relations=[list(r) for r in wiring_relations(config["baselines"])],
    log:
        f"{R}/logs/demo_item_types.log",
    benchmark:
        f"{R}/benchmarks/demo_item_types.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/demo_item_types.py"


# ------------------------------------------------------------------ partial Table 3
# After a run with failed jobs (e.g. one baseline's training; run with -k/--keep-going so the
# others finish), Snakemake calls this handler in its main process. It writes
# results/tables/table3.partial.{csv,md,tex} (+ plots/table3.partial.png): the rows of every
# baseline whose metrics are current, and for each other baseline a row that says which job
# blocked it and why (its failure record under results/failures/). The table3 rule's own
# outputs are left alone (see tiktalk.report.table3).


onerror:
    from tiktalk.report.table3 import partial_table3_after_failure

    partial_table3_after_failure(
        workflow,
        TABLE3_BASELINES,
        TABLE_SPLIT,
        f"{R}/metrics/{{baseline}}/{TABLE_SPLIT}.json",
        {b: TABLE3_LABELS[b] for b in TABLE3_BASELINES},
        TABLE3_FILES,
    )
