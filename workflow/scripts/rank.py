"""Rule rank: one baseline ranks the shared candidate sets of one split (Recall@K, Mean Rank)."""
from pathlib import Path

from tiktalk.baselines.ranking import rank_split
from tiktalk.logs import script_logging
from tiktalk.workflow import baseline_inputs, family_params, run_in_baseline_env

sm = snakemake  # noqa: F821
run_in_baseline_env(sm.params.baseline)  # without conda: $TIKTALK_PYTHON_<ENV> runs this job
with script_logging(sm.log[0], sm.threads, job=sm) as log:  # job=: failure record
    baseline = sm.params.baseline
    params = family_params(baseline, sm.params.llm_dir)
    inputs = baseline_inputs(dict(sm.input.items()), sm.params.tokenizer, sm.params.seed)
    log.info("ranking %s on %s", sm.wildcards.baseline, sm.wildcards.split)
    rank_split(baseline["family"], params, Path(sm.input.model).parent, inputs, sm.wildcards.split,
               sm.input.candidates, sm.output[0], score=sm.params.score,
               batch_size=sm.params.batch_size)
