"""Image tokens inside ``input_ids``: the input embeddings of placeholder positions are replaced.

This is how VisualGLM-6B (BLIP-2 + ChatGLM-6B, from ChatGLM's lab) feeds the Q-Former's outputs
to an LLM that must be driven by ``input_ids``: ChatGLM-6B builds its attention mask and 2-D
position ids from the ids (``[gMASK]``, ``<sop>``), so the image occupies ``num_queries``
placeholder tokens there, and the embedding layer's output at those positions is swapped for
the projected query outputs. Masks and positions stay the model's own.

:class:`EmbeddingInjector` does the swap with a forward hook on the LLM's input embedding layer,
armed for the duration of one ``forward`` or ``generate`` call (:meth:`EmbeddingInjector.inject`).
On each call of the embedding layer it checks the ids at the recorded positions:

* all are the placeholder: replaced (the whole prompt is being embedded; under beam search
  the rows are the batch's rows repeated ``num_beams`` times, and so are the values);
* the sequence is too short to reach them, or none is the placeholder: left alone (a cached
  decoding step: the prompt, image included, is in the key/value cache already);
* some are and some are not: an error, as the ids no longer line up with the image.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EmbeddingInjector:
    def __init__(self, embedding: nn.Module, token_id: int):
        self.embedding = embedding
        self.token_id = int(token_id)
        self._values: torch.Tensor | None = None
        self._positions: torch.Tensor | None = None
        self.replaced_calls = 0

    @contextmanager
    def inject(self, values: torch.Tensor, positions: torch.Tensor):
        """Within the block, embeddings at ``positions`` (B, Q) of rows carrying the placeholder
        there are ``values`` (B, Q, H)."""
        if values.shape[:2] != positions.shape:
            raise ValueError(f"values {tuple(values.shape)} and positions {tuple(positions.shape)} disagree")
        self._values, self._positions = values, positions.long()
        self.replaced_calls = 0
        handle = self.embedding.register_forward_hook(self._hook)
        try:
            yield self
        finally:
            handle.remove()
            self._values = self._positions = None

    def _hook(self, module, args, output):
        ids = args[0] if args else None
        if ids is None or self._values is None:
            return None
        rows, length = ids.shape
        values, positions = self._values, self._positions.to(ids.device)
        batch = values.shape[0]
        if rows % batch:
            raise ValueError(f"embedding call with {rows} rows for a batch of {batch} images")
        if rows != batch:                       # beam search / sampling expansion
            k = rows // batch
            values, positions = values.repeat_interleave(k, 0), positions.repeat_interleave(k, 0)
        if length <= int(positions.max()):
            return None
        hit = ids.gather(1, positions) == self.token_id
        if not hit.any():
            return None
        if not hit.all():
            raise ValueError(f"image placeholder positions hold other tokens than id {self.token_id} "
                             f"in {int((~hit).any(1).sum())} row(s): ids and image no longer line up")
        index = positions.unsqueeze(-1).expand(-1, -1, output.shape[-1])
        self.replaced_calls += 1
        return output.scatter(1, index, values.to(output.dtype))
