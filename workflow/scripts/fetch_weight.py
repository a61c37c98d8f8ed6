"""Localrule fetch_weight: download one file of a pretrained artifact (network allowed here)."""
from tiktalk.weights.fetch import allow_network

allow_network()  # before anything imports huggingface_hub: it reads the offline switch on import

from pathlib import Path  # noqa: E402

from tiktalk.logs import script_logging  # noqa: E402
from tiktalk.weights.fetch import fetch_file  # noqa: E402
from tiktalk.weights.spec import Artifact  # noqa: E402

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    file = sm.wildcards.file
    root = Path(sm.output[0]).parents[len(Path(file).parts)]   # <root>/<name>/<file>
    fetch_file(Artifact.from_config(sm.wildcards.name, sm.params.source), file, root)
