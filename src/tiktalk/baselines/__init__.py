"""Baselines of Table 3: one adapter module per model family (:mod:`tiktalk.families` describes them and
states the ``train`` / ``predict`` contract), the inputs they read (:mod:`.inputs`), what they
share at run time (:mod:`.common`) and the training launcher (:mod:`.launch`)."""
