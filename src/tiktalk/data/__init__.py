"""Data stage: the release adapter (:mod:`.release`), the tables keyed by dialogue that later
stages read (:mod:`.dialogues`, :mod:`.predictions`), the video manifest (:mod:`.manifest`) and
the stage jobs that build them (:mod:`.build`). Nothing is re-exported here."""
