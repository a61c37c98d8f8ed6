"""Rule predict: decode one response per dialogue of a split."""
from pathlib import Path

from tiktalk.families.registry import get_family
from tiktalk.workflow import baseline_job

sm = snakemake  # noqa: F821
with baseline_job(sm) as job:  # the baseline env's interpreter, logging, failure record
    job.log.info("decoding %s on %s", sm.wildcards.baseline, sm.wildcards.split)
    get_family(job.family).predict(
        job.params, Path(sm.input.model).parent, job.inputs, sm.wildcards.split, Path(sm.output[0])
    )
