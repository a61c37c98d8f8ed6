"""Family ``external``: a row for your own system, scored exactly like the paper's rows.

    baselines:
      mine:
        family: external
        label: "My model"
        predictions: {test: path/to/test.jsonl}   # every evaluation split (and Figure 4's)
        scores: {test: path/to/scores.jsonl}      # optional: the ranking table's row

``predictions``: per split, a file in the ``tiktalk evaluate`` format, one
``{"dialogue_id", "response"}`` per dialogue of the split (:mod:`tiktalk.data.predictions`).
``scores``: per ranking split (``paper_tables.ranking.splits``), the candidate scores of
``results/ranking/{split}.candidates.json``, one ``{"dialogue_id", "loglik": [...],
"n_tokens": [...]}`` per dialogue (:func:`tiktalk.metrics.ranking.read_candidate_scores`).

No job trains or decodes: ``external_predictions`` checks the file and copies it to
``results/predictions/<row>/<split>.jsonl``, from where the score, bootstrap, Table 3, claims,
human-evaluation and Figure 4 jobs read it as they read every other row's; with ``scores``,
``external_ranking`` turns them into the row's ranking file. Each file is an input of its own
job only, so editing it re-scores that row alone. The config check reads every file at DAG
build and names the file and line of the first problems.
"""

from tiktalk.families.family import Family

_FILES = {"type": "object", "minProperties": 1, "additionalProperties": False,
          "properties": {"val": {"type": "string"}, "test": {"type": "string"}}}

FAMILY = Family(
    name="external",
    trains=False,
    scores="scores",
    pipeline_tokenizer=False,
    row={"required": ["predictions"],
         "properties": {
             "predictions": {**_FILES, "description": "split -> predictions file (tiktalk "
                                                      "evaluate's format)"},
             "scores": {**_FILES, "description": "split -> candidate scores file (JSONL: "
                                                 "dialogue_id, loglik, n_tokens)"}}},
)
