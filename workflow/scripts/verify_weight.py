"""Localrule verify_weight: hash and check every file of one artifact; write its record."""
from pathlib import Path

from tiktalk.io import write_json
from tiktalk.logs import script_logging
from tiktalk.weights.fetch import read_record, verify_artifact
from tiktalk.weights.spec import Artifact

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    artifact = Artifact.from_config(sm.wildcards.name, sm.params.artifact)
    # the hashes of the last run (Snakemake removes the record itself before the job starts):
    # files whose size and mtime are unchanged are not read again
    cache = Path(sm.output.record).with_suffix(".cache.json")
    root = Path(sm.output.record).parents[1]                   # <root>/.verified/<name>.json
    record = verify_artifact(artifact, root, strict=sm.params.strict,
                             previous=read_record(cache))
    write_json(sm.output.record, record)
    write_json(cache, record)
    log.info("%s: %d file(s) verified", artifact.name, len(record["files"]))
