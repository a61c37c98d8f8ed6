"""Rule train_baseline: train one baseline of Table 3 (thin: logic in tiktalk)."""
from pathlib import Path

from tiktalk.baselines.launch import fingerprint, prepare_out_dir, run_training
from tiktalk.workflow import baseline_job

sm = snakemake  # noqa: F821
with baseline_job(sm) as job:  # the baseline env's interpreter, logging, failure record
    out_dir = Path(sm.output.model).parent
    code = list(sm.input.code)
    resumable = prepare_out_dir(out_dir, fingerprint({"baseline": job.baseline, "seed": sm.params.seed}, code))
    gpus = int(getattr(sm.resources, "gpu", 0) or 0)
    job.log.info("training %s (family %s) on %d GPU(s)%s", sm.wildcards.baseline,
                 job.family, gpus, ", resuming" if resumable else "")
    run_training(job.family, job.params, job.inputs, out_dir, gpus=gpus)
    if not Path(sm.output.model).exists():
        raise RuntimeError(f"family {job.family!r} finished without writing {sm.output.model}")
