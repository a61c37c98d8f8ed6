# The paper's other outputs, each beside the paper's own numbers (docs/paper-tables.md):
# ranking (Recall@K, Mean Rank), Table 2 (data division), Table 5 (topics), Table 6 (where the
# interest lies), Table 7 (training efficiency) and the Figure 4 cases page. Settings:
# config `paper_tables:` (tiktalk.report.paper_settings).
import sys

from tiktalk.workflow import is_ranked
from tiktalk.report.efficiency import rows_of as efficiency_rows
from tiktalk.report.paper_settings import paper_tables_outputs, paper_tables_settings
from tiktalk.report.paper_settings import relevant_input_files

PT = paper_tables_settings(config.get("paper_tables"))
PT_SOURCE = config["release"]["source"]
PT_LABELS = {b: config["baselines"][b]["label"] for b in BASELINES}
# rows that rank the candidates: families with a scorer, external rows with `scores`; a trained
# row whose family has no scorer gets a "cannot score" row, an external one without no row
RANKED = [b for b in BASELINES if is_ranked(config["baselines"][b])]
UNRANKED = {b: config["baselines"][b]["family"] for b in TRAINED if b not in RANKED}
T7_ROWS = efficiency_rows({b: config["baselines"][b] for b in BASELINES})
INTEREST = PT.interest
# Table 6 needs visually relevant responses: the demo's visual items, or filled Figure 2 sheets
TABLE6_ON = INTEREST is not None and (INTEREST.relevant == "item_types" or bool(HE.context_sources_dir))
if TABLE6_ON and INTEREST.demo_clip is not None and PT_SOURCE != "demo":
    # the tiny CLIP is fitted on the demo's videos and their focus segments only
    print("paper_tables: no Table 6: interest.demo_clip needs the demo data; on a release set "
          "paper_tables.interest.model (weights/chinese-clip)", file=sys.stderr)
    TABLE6_ON = False
CLIP_DIR = (INTEREST.model or f"{R}/interest/clip") if INTEREST else None
# Table 6's split: the labelled one (the Figure 2 sheets') or, on the demo, interest.split
T6_SPLIT = (HE.context_sources.split if INTEREST.relevant == "annotations" else INTEREST.split) if INTEREST else None


# the media stage's fetch tables (where each video file is), known after the manifest; none
# with precomputed features (no video is fetched: the pages show no frames)
FETCH_TABLES = lambda wildcards: [] if PRECOMPUTED else [f"{R}/media/{s}/fetch.tsv" for s in shards()]  # noqa: E731
# what `all` asks of these rules (rules/common.smk)
PT_OUTPUTS = paper_tables_outputs(PT, R, table7=bool(T7_ROWS), table6=TABLE6_ON)


# ------------------------------------------------------------------ ranking


rule ranking_candidates:
    """The shared candidate sets of a split: per dialogue its 5 references + 95 others (seeded)."""
    input:
        dialogues=f"{R}/data/{{split}}.jsonl",
        code=code("ranking_candidates.py"),
    output:
        f"{R}/ranking/{{split}}.candidates.json",
    params:
        n_candidates=PT.ranking.n_candidates,
        seed=PT.ranking.seed,
    log:
        f"{R}/logs/ranking_candidates/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/ranking_candidates/{{split}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow/scripts/ranking_candidates.py"


rule rank:
    """One baseline scores every candidate of a split (log-likelihood given the dialogue)."""
    input:
        # predict's inputs (model, dialogues, features, knowledge, LLM, weights) + the candidates
        unpack(lambda w: {**predict_inputs(w), "code": code("rank", baseline_cfg(w.baseline)["family"]),
                          "candidates": f"{R}/ranking/{w.split}.candidates.json"}),
    output:
        f"{R}/ranking/{{baseline}}/{{split}}.json",
    wildcard_constraints:
        baseline=one_of(TRAINED_RUNS),
    params:
        baseline=lambda w: baseline_cfg(w.baseline),
        tokenizer=config["tokenizer"],
        seed=config["seed"],
        llm_dir=lambda w: (
            f"{R}/models/{baseline_cfg(w.baseline)['llm_from']}"
            if baseline_cfg(w.baseline).get("llm_from")
            else None
        ),
        score=PT.ranking.score,
        batch_size=PT.ranking.batch_size,
    threads: 1
    log:
        f"{R}/logs/rank/{{baseline}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/rank/{{baseline}}_{{split}}.tsv"
    conda:
        baseline_env
    script:
        "../workflow/scripts/rank.py"


rule external_ranking:
    """A row of your own system (family external) with `scores`: its candidate scores ranked
    exactly as a rank job ranks a model's (tiktalk.metrics.ranking.ranking_result)."""
    input:
        scores=lambda w: config["baselines"][w.baseline]["scores"][w.split],
        candidates=f"{R}/ranking/{{split}}.candidates.json",
        code=code("external_ranking.py"),
    output:
        f"{R}/ranking/{{baseline}}/{{split}}.json",
    wildcard_constraints:
        baseline=one_of(EXTERNAL),
    params:
        score=PT.ranking.score,
    log:
        f"{R}/logs/external_ranking/{{baseline}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/external_ranking/{{baseline}}_{{split}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow/scripts/external_ranking.py"


rule ranking_table:
    """Recall@1/5/10 and Mean Rank of every baseline on a split (a row says when one cannot score)."""
    input:
        ranking=expand(f"{R}/ranking/{{baseline}}/{{{{split}}}}.json", baseline=RANKED),
        code=code("ranking_table.py"),
    output:
        csv=f"{R}/tables/ranking_{{split}}.csv",
        md=report(f"{R}/tables/ranking_{{split}}.md", category="Ranking", caption="../workflow/report/ranking.rst"),
        tex=f"{R}/tables/ranking_{{split}}.tex",
        png=report(f"{R}/plots/ranking_{{split}}.png", category="Ranking", caption="../workflow/report/ranking.rst"),
    params:
        baselines=[b for b in BASELINES if b in RANKED or b in UNRANKED],
        ranked=RANKED,
        unscored=UNRANKED,
        labels=PT_LABELS,
        data_source=PT_SOURCE,
    log:
        f"{R}/logs/ranking_table/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/ranking_table/{{split}}.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/ranking_table.py"


# ------------------------------------------------------------------ Table 2, Table 7


rule table2:
    """Data division: videos, dialogues, turns, Avg-v/t/l per split and in total."""
    input:
        dialogues=expand(f"{R}/data/{{split}}.jsonl", split=SPLITS),
        status=status_shards,
        code=code("table2.py"),
    output:
        csv=f"{R}/tables/table2.csv",
        md=report(f"{R}/tables/table2.md", category="Table 2", caption="../workflow/report/table2.rst"),
        tex=f"{R}/tables/table2.tex",
    params:
        splits=SPLITS,
        data_source=PT_SOURCE,
    log:
        f"{R}/logs/table2.log",
    benchmark:
        f"{R}/benchmarks/table2.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/table2.py"


rule table7:
    """Minutes per epoch of the Maria modality rows (M1-M5), from the trainings' train_log.jsonl
    (written beside each model.pt by the same job)."""
    input:
        models=[f"{R}/models/{b}/model.pt" for b in T7_ROWS.values()],
        code=code("table7.py"),
    output:
        csv=f"{R}/tables/table7.csv",
        md=report(f"{R}/tables/table7.md", category="Table 7", caption="../workflow/report/table7.rst"),
        tex=f"{R}/tables/table7.tex",
        png=report(f"{R}/plots/table7.png", category="Table 7", caption="../workflow/report/table7.rst"),
    params:
        rows=T7_ROWS,
        # only its rows' labels: another baseline's label, or the baselines' order, is no change
        labels={b: PT_LABELS[b] for b in T7_ROWS.values()},
        data_source=PT_SOURCE,
    log:
        f"{R}/logs/table7.log",
    benchmark:
        f"{R}/benchmarks/table7.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/table7.py"


# ------------------------------------------------------------------ Table 5


rule table5:
    """Videos per topic: each video to the category name most similar to its description."""
    input:
        manifest=f"{R}/data/videos.tsv",
        release=sorted({release_file(s) for s in SPLITS}),
        weights=weight_inputs({"similarity": PT.topics.similarity}),
        code=code("table5.py"),
    output:
        csv=f"{R}/tables/table5.csv",
        md=report(f"{R}/tables/table5.md", category="Table 5", caption="../workflow/report/table5.rst"),
        tex=f"{R}/tables/table5.tex",
        png=report(f"{R}/plots/table5.png", category="Table 5", caption="../workflow/report/table5.rst"),
        assignments=f"{R}/topics/videos.tsv",
        provenance=f"{R}/topics/provenance.json",  # the Sentence-BERT model's fingerprint
    params:
        names=[list(n) for n in PT.topics.names],
        others=PT.topics.others,
        similarity=PT.topics.similarity,
        min_similarity=PT.topics.min_similarity,
        fields=config["release"].get("fields", {}),
        data_source=PT_SOURCE,
    log:
        f"{R}/logs/table5.log",
    benchmark:
        f"{R}/benchmarks/table5.tsv"
    conda:
        "../envs/knowledge.yaml"
    script:
        "../workflow/scripts/table5.py"


# ------------------------------------------------------------------ Table 6


if INTEREST is not None and INTEREST.demo_clip is not None:

    rule interest_clip:
        """Demo: a tiny Chinese-CLIP fitted on the training videos' frames and visual responses."""
        input:
            dialogues=f"{R}/data/train.jsonl",
            item_types=f"{R}/demo/item_types.json",
            attributes=f"{R}/demo/video_attributes.json",
            fetch=FETCH_TABLES,
            code=code("interest_clip.py"),
        output:
            model=directory(CLIP_DIR),
        params:
            settings=INTEREST.demo_clip,
            max_frames=INTEREST.max_frames,
            buckets=INTEREST.buckets,
        log:
            f"{R}/logs/interest_clip.log",
        benchmark:
            f"{R}/benchmarks/interest_clip.tsv"
        conda:
            "../envs/media.yaml"
        script:
            "../workflow/scripts/interest_clip.py"


if TABLE6_ON:

    rule table6:
        """Per 20% time bucket, the visually relevant responses whose most similar frame lies in it."""
        input:
            **relevant_input_files(INTEREST, T6_SPLIT, R, HE_DIR),
            ratings=filled_sheet_files(HE.context_sources_dir, "context_sources_dir")
            if INTEREST.relevant == "annotations" else [],
            clip=CLIP_DIR,
            weights=weight_inputs({"model": INTEREST.model}),
            attributes=[f"{R}/demo/video_attributes.json"] if PT_SOURCE == "demo" else [],
            fetch=FETCH_TABLES,
            code=code("table6.py"),
        output:
            csv=f"{R}/tables/table6.csv",
            md=report(f"{R}/tables/table6.md", category="Table 6", caption="../workflow/report/table6.rst"),
            tex=f"{R}/tables/table6.tex",
            png=report(f"{R}/plots/table6.png", category="Table 6", caption="../workflow/report/table6.rst"),
            matches=f"{R}/interest/{T6_SPLIT}.matches.jsonl",
        params:
            split=T6_SPLIT,
            relevant=INTEREST.relevant,
            ratings_dir=HE.context_sources_dir,
            max_frames=INTEREST.max_frames,
            buckets=INTEREST.buckets,
            batch_size=INTEREST.batch_size,
            device=INTEREST.device,
            model=INTEREST.model or "tiny Chinese-CLIP fitted on the demo",
            data_source=PT_SOURCE,
        log:
            f"{R}/logs/table6.log",
        benchmark:
            f"{R}/benchmarks/table6.tsv"
        conda:
            "../envs/media.yaml"
        script:
            "../workflow/scripts/table6.py"


# ------------------------------------------------------------------ Figure 4


rule figure4_cases:
    """A page of cases: frames, context, references and every baseline's response."""
    input:
        dialogues=f"{R}/data/{PT.cases.split}.jsonl",
        predictions=expand(f"{R}/predictions/{{baseline}}/{PT.cases.split}.jsonl", baseline=BASELINES),
        fetch=FETCH_TABLES,
        code=code("figure4_cases.py"),
    output:
        report(f"{R}/report/figure4.html", category="Figure 4", caption="../workflow/report/figure4.rst"),
    params:
        baselines=BASELINES,
        labels=PT_LABELS,
        split=PT.cases.split,
        n=PT.cases.n,
        seed=PT.cases.seed,
        named=list(PT.cases.dialogue_ids) if PT.cases.dialogue_ids else None,
        frames=PT.cases.frames,
        data_source=PT_SOURCE,
    log:
        f"{R}/logs/figure4_cases.log",
    benchmark:
        f"{R}/benchmarks/figure4_cases.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/figure4_cases.py"
