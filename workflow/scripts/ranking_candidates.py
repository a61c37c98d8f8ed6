"""Rule ranking_candidates: the shared candidate sets of one split (tiktalk.metrics.ranking)."""
from tiktalk.data.dialogues import read_dialogues
from tiktalk.logs import script_logging
from tiktalk.metrics.ranking import build_candidates, write_candidates

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    split = sm.wildcards.split
    sets = build_candidates(read_dialogues(sm.input.dialogues, split), sm.params.n_candidates,
                            sm.params.seed)
    write_candidates(sm.output[0], sets, split, sm.params.seed, sm.params.n_candidates)
    log.info("%d dialogues x %d candidates (%s)", len(sets), sm.params.n_candidates, split)
