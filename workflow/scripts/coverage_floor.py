"""Rule coverage_floor: fail before any feature-reading training when a split's share of videos
with features is below media.min_coverage (the error names coverage.json and the top reasons)."""
from tiktalk.logs import script_logging
from tiktalk.media.coverage import check_coverage

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    check_coverage(sm.input.json, sm.params.min_coverage, sm.output.ok)
    log.info("media coverage at or above %g in every split", sm.params.min_coverage)
