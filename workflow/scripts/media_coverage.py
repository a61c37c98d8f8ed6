"""Rule media_coverage: per split, the share of videos with features (coverage.json)."""
from tiktalk.logs import script_logging
from tiktalk.media.coverage import write_coverage

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    report = write_coverage(sm.input.status, sm.input.manifest, sm.output.json)
    for split, s in report["splits"].items():
        log.info("%s: %s of %s videos have features (coverage %s)", split, s["ok"], s["videos"],
                 s["coverage"])
