"""Localrule fetch_weights: weights/manifest.json from the per-artifact records."""
from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.weights.fetch import write_manifest

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    manifest = write_manifest([read_json(p) for p in sm.input.records], sm.output.manifest)
    log.info("%d artifact(s) in %s", len(manifest["artifacts"]), sm.output.manifest)
