"""Rule train_baseline: train one baseline of Table 3 (thin: logic in tiktalk)."""
from pathlib import Path

from tiktalk.logs import script_logging
from tiktalk.baselines.launch import fingerprint, prepare_out_dir, run_training
from tiktalk.workflow import baseline_inputs, family_params, run_in_baseline_env

sm = snakemake  # noqa: F821
run_in_baseline_env(sm.params.baseline)  # without conda: $TIKTALK_PYTHON_<ENV> runs this job
with script_logging(sm.log[0], sm.threads, job=sm) as log:  # job=: failure record
    baseline = sm.params.baseline
    params = family_params(baseline, sm.params.llm_dir)
    inputs = baseline_inputs(dict(sm.input.items()), sm.params.tokenizer, sm.params.seed)
    out_dir = Path(sm.output.model).parent
    code = list(sm.input.code)
    resumable = prepare_out_dir(out_dir, fingerprint({"baseline": baseline, "seed": sm.params.seed}, code))
    gpus = int(getattr(sm.resources, "gpu", 0) or 0)
    log.info("training %s (family %s) on %d GPU(s)%s", sm.wildcards.baseline,
             baseline["family"], gpus, ", resuming" if resumable else "")
    run_training(baseline["family"], params, inputs, out_dir, gpus=gpus)
    if not Path(sm.output.model).exists():
        raise RuntimeError(f"family {baseline['family']!r} finished without writing {sm.output.model}")
