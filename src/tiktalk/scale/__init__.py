"""The scale rehearsal and the cost plan: the pipeline run at TikTalk's real size on synthetic
data (:mod:`tiktalk.scale.generate`), its measured costs (:mod:`tiktalk.scale.measure`) and the
plan of a real run built from them (:mod:`tiktalk.scale.plan`). Nothing is re-exported."""
