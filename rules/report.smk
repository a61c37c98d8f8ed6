# Table 3 (csv/md/tex), its chart, and the demo's per-item-type wiring table; after a run with
# failed jobs, the partial Table 3 (onerror below).

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


rule table3:
    """One row per baseline run, the paper's numbers beside them. Strict: it runs once every
    baseline has metrics, and then removes a partial table left by an earlier failed run."""
    input:
        metrics=expand(f"{R}/metrics/{{baseline}}/{TABLE_SPLIT}.json", baseline=TABLE3_BASELINES),
        code=code("report"),
    output:
        csv=report(TABLE3_FILES["csv"], category="Table 3", caption="../workflow/report/table3.rst"),
        md=report(TABLE3_FILES["md"], category="Table 3", caption="../workflow/report/table3.rst"),
        tex=report(TABLE3_FILES["tex"], category="Table 3", caption="../workflow/report/table3.rst"),
        png=report(TABLE3_FILES["png"], category="Table 3", caption="../workflow/report/table3.rst"),
    params:
        baselines=TABLE3_BASELINES,
        labels={b: TABLE3_LABELS[b] for b in TABLE3_BASELINES},
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
