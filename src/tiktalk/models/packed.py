"""Token-id examples packed into flat arrays: a training set of TikTalk's size (363,589
dialogues) as a few hundred bytes an example instead of Python lists of ints (~40 bytes a
token). NumPy only.

    packed = PackedExamples({"input_ids": "i", "mask": "b"})   # field -> array typecode
    packed.append({"input_ids": [...], "mask": [...]})
    packed[i] -> {"input_ids": np.ndarray (int32), "mask": np.ndarray (int8)}   # views

String fields (``strings=("video_id",)``) are kept in a list, each distinct value once.
"""

from __future__ import annotations

from array import array
from typing import Mapping, Sequence

import numpy as np

_DTYPES = {"i": np.int32, "b": np.int8, "h": np.int16}


class PackedExamples:
    """Variable-length integer fields of many examples, each field one flat array + offsets."""

    def __init__(self, fields: Mapping[str, str], strings: Sequence[str] = ()):
        bad = {k: t for k, t in fields.items() if t not in _DTYPES}
        if bad:
            raise ValueError(f"typecodes must be one of {sorted(_DTYPES)}, got {bad}")
        self._codes = dict(fields)
        self._data = {k: array(t) for k, t in fields.items()}
        self._ends = {k: array("q") for k in fields}
        self._strings: dict[str, list[str]] = {k: [] for k in strings}
        self._interned: dict[str, str] = {}
        self._n = 0
        self._views: dict[str, np.ndarray] | None = None

    def append(self, example: Mapping) -> None:
        for k, data in self._data.items():
            data.extend(example[k])
            self._ends[k].append(len(data))
        for k, values in self._strings.items():
            v = example[k]
            values.append(self._interned.setdefault(v, v))
        self._n += 1
        self._views = None

    def __len__(self) -> int:
        return self._n

    def strings(self, field: str) -> list[str]:
        """Every example's value of a string field, in order."""
        return self._strings[field]

    def _arrays(self) -> dict[str, np.ndarray]:
        if self._views is None:
            self._views = {k: np.frombuffer(d, _DTYPES[self._codes[k]]) if len(d) else
                           np.zeros(0, _DTYPES[self._codes[k]]) for k, d in self._data.items()}
        return self._views

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"example {i} of {len(self)}")
        i %= len(self)
        arrays = self._arrays()
        out = {}
        for k, ends in self._ends.items():
            start = ends[i - 1] if i else 0
            out[k] = arrays[k][start:ends[i]]
        for k, values in self._strings.items():
            out[k] = values[i]
        return out

    @property
    def nbytes(self) -> int:
        return sum(d.itemsize * len(d) for d in self._data.values()) + sum(8 * len(e) for e in self._ends.values())


def pack(examples, fields: Mapping[str, str], strings: Sequence[str] = ()) -> PackedExamples:
    """A :class:`PackedExamples` of an iterable of example dicts."""
    packed = PackedExamples(fields, strings)
    for ex in examples:
        packed.append(ex)
    return packed
