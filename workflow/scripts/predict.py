"""Rule predict: decode one response per dialogue of a split."""
from pathlib import Path

from tiktalk.baselines.registry import get_family
from tiktalk.logs import script_logging
from tiktalk.workflow import baseline_inputs, family_params, run_in_baseline_env

sm = snakemake  # noqa: F821
run_in_baseline_env(sm.params.baseline)  # without conda: $TIKTALK_PYTHON_<ENV> runs this job
with script_logging(sm.log[0], sm.threads, job=sm) as log:  # job=: failure record
    baseline = sm.params.baseline
    params = family_params(baseline, sm.params.llm_dir)
    inputs = baseline_inputs(dict(sm.input.items()), sm.params.tokenizer, sm.params.seed)
    log.info("decoding %s on %s", sm.wildcards.baseline, sm.wildcards.split)
    get_family(baseline["family"]).predict(
        params, Path(sm.input.model).parent, inputs, sm.wildcards.split, Path(sm.output[0])
    )
