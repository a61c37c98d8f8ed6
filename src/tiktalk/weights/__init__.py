"""Pretrained weights as a pipeline stage (config block ``weights:``).

* :mod:`tiktalk.weights.spec` (DAG time, no torch): the artifacts of the config, which files a
  config block refers to (so rules declare them as inputs), and the config's own consistency.
* :mod:`tiktalk.weights.fetch`: the localrule side: download one file (Hugging Face hub with a
  pinned revision, or a URL through the project's downloader), check sha256, write the per-
  artifact record and ``weights/manifest.json``.
* :mod:`tiktalk.weights.cli`: ``tiktalk weights`` (the rehearsal's tiny weights are built by
  :mod:`tiktalk.rehearsal`, apart from the real weights' code).

Nothing is re-exported here: importing the package stays free of torch and the hub client.
"""
