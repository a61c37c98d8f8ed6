# Table 3 (csv/md/tex), its chart, and the demo's per-item-type wiring table.

TABLE_SPLIT = config["evaluation"]["table_split"]


rule table3:
    """One row per baseline run, the paper's numbers beside them."""
    input:
        metrics=expand(f"{R}/metrics/{{baseline}}/{TABLE_SPLIT}.json", baseline=BASELINES),
        code=code("report"),
    output:
        csv=report(f"{R}/tables/table3.csv", category="Table 3", caption="../workflow/report/table3.rst"),
        md=f"{R}/tables/table3.md",
        tex=f"{R}/tables/table3.tex",
        png=report(f"{R}/plots/table3.png", category="Table 3", caption="../workflow/report/table3.rst"),
    params:
        baselines=BASELINES,
        labels={b: config["baselines"][b]["label"] for b in BASELINES},
    log:
        f"{R}/logs/table3.log",
    benchmark:
        f"{R}/benchmarks/table3.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/table3.py"


rule demo_item_types:
    """Demo wiring check: scores per item type (visual/audio/knowledge/text) per baseline."""
    input:
        predictions=expand(
            f"{R}/predictions/{{baseline}}/{TABLE_SPLIT}.jsonl", baseline=BASELINES
        ),
        references=f"{R}/data/{TABLE_SPLIT}_references.jsonl",
        item_types=f"{R}/demo/item_types.json",
        code=code("report"),
    output:
        csv=report(
            f"{R}/tables/demo_item_types.csv",
            category="Demo wiring",
            caption="../workflow/report/items.rst",
        ),
    params:
        baselines=BASELINES,
    log:
        f"{R}/logs/demo_item_types.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/demo_item_types.py"
