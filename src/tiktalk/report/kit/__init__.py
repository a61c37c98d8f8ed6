"""The human-evaluation kits: Table 4 (rated responses) and Figure 2(b)/(c) (context sources).

One machinery for both (docs/human-evaluation.md):

* :mod:`~tiktalk.report.kit.annotation`: items, blinded per-annotator sheets, the key, and
  reading filled sheets back (:mod:`~tiktalk.report.kit.sheet_io`: CSV / Excel files);
  :mod:`~tiktalk.report.kit.rating_page`: the static HTML page that fills a sheet;
  :mod:`~tiktalk.report.kit.frames` and :mod:`~tiktalk.report.kit.clips`: the thumbnails and
  playable clips beside the pages;
* the two tasks: :mod:`~tiktalk.report.kit.human_eval` and
  :mod:`~tiktalk.report.kit.context_sources` (sheets and scores, with Fleiss' kappa from
  :mod:`~tiktalk.report.kit.agreement`), drawn by :mod:`~tiktalk.report.kit.table4` and
  :mod:`~tiktalk.report.kit.figure2`;
* :mod:`~tiktalk.report.kit.settings` (the config block ``human_eval``, cheap: the rules read
  it at DAG time) and :mod:`~tiktalk.report.kit.cli` (``tiktalk human-eval``, ``tiktalk
  context-sources``).

Of the rest of the report, the kit uses only the paper's numbers, the renderer and the plot
helpers (tests/test_layers.py); the claims and Table 6 read filled sheets through it.
Nothing is re-exported here.
"""
