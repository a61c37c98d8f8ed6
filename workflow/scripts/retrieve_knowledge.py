"""Rule retrieve_knowledge: top-k C3KG flows per dialogue of one split."""
from tiktalk.knowledge.retrieve import retrieve_split
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    n = retrieve_split(sm.input.dialogues, sm.input.c3kg, sm.output[0], dict(sm.params.retriever),
                       provenance_path=sm.output.provenance)
    log.info("%s: flows retrieved for %d dialogues", sm.wildcards.split, n)
