"""Rule figure4_cases: a page of test cases (frames, context, references, every response)."""
from tiktalk.logs import script_logging
from tiktalk.report.cases import build_cases
from tiktalk.report.interest import video_files

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    shown = build_cases(sm.input.dialogues, dict(zip(sm.params.baselines, sm.input.predictions)),
                        sm.params.labels, video_files(sm.input.fetch), sm.output[0],
                        split=sm.params.split, data_source=sm.params.data_source, n=sm.params.n,
                        seed=sm.params.seed, named=sm.params.named, frames=sm.params.frames)
    log.info("cases: %s", shown)
