"""The rehearsal's own code: tiny pretrained weights for config/rehearsal.yaml and the scale
rehearsal, kept apart from the real weights' code (:mod:`tiktalk.weights`).

* :mod:`tiktalk.rehearsal.weights`: every artifact of the rehearsal as a tiny model of the same
  class as the real one, saved the way the real one is distributed (``tiktalk weights
  rehearsal``);
* :mod:`tiktalk.rehearsal.llm`: the LLM rows' two (ChatGLM-6B's class and BLIP-2);
* :mod:`tiktalk.rehearsal.chatglm_double`: the remote code of the ChatGLM-6B interface double,
  files that :func:`tiktalk.rehearsal.llm.write_chatglm` copies into a model directory (the
  pipeline never imports them from here).

Nothing is re-exported here.
"""
