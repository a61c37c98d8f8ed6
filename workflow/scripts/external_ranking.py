"""Rule external_ranking: an external row's candidate scores ranked like a model's (Recall@K, MR)."""
from tiktalk.io import write_json
from tiktalk.logs import script_logging
from tiktalk.metrics.ranking import ranking_result, read_candidate_scores, read_candidates

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    split = sm.wildcards.split
    candidates = read_candidates(sm.input.candidates, split)
    loglik, n_tokens = read_candidate_scores(sm.input.scores, candidates)
    result = ranking_result(candidates, loglik, n_tokens, sm.params.score, split)
    write_json(sm.output[0], result)
    log.info("%s on %s: %s", sm.wildcards.baseline, split, result["metrics"])
