"""Localrule fetch_weight: download one file of a pretrained artifact (network allowed here)."""
from tiktalk.weights.fetch import allow_network

allow_network()  # before anything imports huggingface_hub: it reads the offline switch on import

from tiktalk.logs import script_logging  # noqa: E402
from tiktalk.weights.fetch import fetch_file  # noqa: E402
from tiktalk.weights.spec import Artifact  # noqa: E402

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    source = dict(sm.params.source)
    artifact = Artifact.from_config(sm.wildcards.name, source)
    fetch_file(artifact, sm.wildcards.file, sm.params.root)
