"""Rule rank: one baseline ranks the shared candidate sets of one split (Recall@K, Mean Rank)."""
from pathlib import Path

from tiktalk.baselines.ranking import rank_split
from tiktalk.workflow import baseline_job

sm = snakemake  # noqa: F821
with baseline_job(sm) as job:  # the baseline env's interpreter, logging, failure record
    job.log.info("ranking %s on %s", sm.wildcards.baseline, sm.wildcards.split)
    rank_split(job.family, job.params, Path(sm.input.model).parent, job.inputs, sm.wildcards.split,
               sm.input.candidates, sm.output[0], score=sm.params.score,
               batch_size=sm.params.batch_size)
