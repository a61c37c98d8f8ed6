"""Checkpoint media_coverage: per split, the share of videos with features (coverage.json)."""
from tiktalk.logs import script_logging
from tiktalk.media.coverage import describe_failure, write_coverage

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    report = write_coverage(sm.input.status, sm.input.manifest, sm.output.json,
                            sm.params.min_coverage)
    for split, s in report["splits"].items():
        log.info("%s: %s of %s videos have features (coverage %s)", split, s["ok"], s["videos"],
                 s["coverage"])
    if not report["passed"]:
        log.error("%s", describe_failure(report, sm.output.json))
