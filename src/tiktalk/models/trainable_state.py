"""State dicts that hold only what training changes (the LLM rows' checkpoints).

The trainer saves ``model.state_dict()`` in ``checkpoints/last.pt`` every epoch and on SIGTERM,
and restores it with ``model.load_state_dict``. For a model around a frozen 6B LLM that would be
~12 GB per checkpoint, written inside SLURM's signal grace period. A model that mixes in
:class:`TrainableStateDict` narrows both methods to its trainable parameters (``requires_grad``)
plus the buffers under ``STATE_BUFFERS`` (e.g. feature statistics fitted before training); the
frozen weights are rebuilt from the base model's id and revision instead.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


class TrainableStateDict:
    """Mixin for an ``nn.Module``: ``state_dict()``/``load_state_dict()`` cover the trainable
    parameters and the ``STATE_BUFFERS`` buffers only (strict on exactly that set)."""

    STATE_BUFFERS: tuple[str, ...] = ()       # module-name prefixes whose buffers are state

    def trainable_state_keys(self) -> set[str]:
        keys = {name for name, p in self.named_parameters() if p.requires_grad}
        if self.STATE_BUFFERS:
            keys |= {name for name, _ in self.named_buffers()
                     if name.split(".", 1)[0] in self.STATE_BUFFERS}
        return keys

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        if args:
            raise TypeError("state_dict() takes keyword arguments only")
        keep = self.trainable_state_keys()
        full = nn.Module.state_dict(self, prefix=prefix, keep_vars=keep_vars)
        out = OrderedDict((k, v) for k, v in full.items() if k[len(prefix):] in keep)
        if destination is not None:
            destination.update(out)
            return destination
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        own = self.trainable_state_keys()
        missing = sorted(own - set(state_dict))
        unexpected = sorted(set(state_dict) - own)
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__} state mismatch: missing {missing[:5]}"
                           f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                           f"{' ...' if len(unexpected) > 5 else ''}")
        result = nn.Module.load_state_dict(self, state_dict, strict=False, assign=assign)
        if result.unexpected_keys:
            raise KeyError(f"{type(self).__name__}: unexpected keys {result.unexpected_keys[:5]}")
        return result
