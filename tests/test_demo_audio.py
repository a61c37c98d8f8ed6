"""The demo's audio signal survives the pipeline's real audio path.

Demo videos of the three pitches (written by the demo's own writer) go through the media
stage exactly as the demo config runs it: one shard job (PyAV decode, VGGish log-mel front end,
the demo's random-init VGGish, float16 feature shard), read back with the FeatureStore the
trainings use. The random VGGish's embeddings have a tiny spread (~3e-4 per dimension around
~8e-3), so they are compared the way the models see them, standardised per dimension: two
videos of different pitches must lie further apart than any two videos of the same pitch.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from tiktalk.demo.media import VideoSpec, write_demo_video
from tiktalk.demo.texts import PITCHES
from tiktalk.media.shard import extract_shard
from tiktalk.media.store import FeatureStore
from tiktalk.media.tables import write_fetch

ROOT = Path(__file__).resolve().parents[1]


def _videos(tmp_path: Path) -> dict[str, str]:
    """Two videos per pitch that differ in everything else (duration, colour, shape, motion)."""
    pitch_of = {}
    looks = [("红", "圆形", 2.0, 60, 0.2), ("蓝", "方形", 3.5, 100, 0.7)]
    for p, (k, (colour, shape, duration, grey, x0)) in itertools.product(PITCHES, enumerate(looks)):
        vid = f"{list(PITCHES).index(p)}{k}"
        spec = VideoSpec(video_id=vid, colour=colour, shape=shape, pitch=p, duration=duration,
                         background=grey, radius=12, x0=x0, y0=1 - x0, vx=2.5, vy=-1.5)
        write_demo_video(tmp_path / f"{vid}.mp4", spec, size=96, fps=8, sample_rate=16000)
        pitch_of[vid] = p
    return pitch_of


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> tuple[FeatureStore, dict[str, str]]:
    """The demo pitches through one shard job of the demo config's media stage."""
    tmp_path = tmp_path_factory.mktemp("audio")
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    media = dict(cfg["media"]["extract"], device="cpu")
    assert media["init"] == "random"          # what the demo computes
    pitch_of = _videos(tmp_path)
    fetch = tmp_path / "fetch.tsv"
    write_fetch(fetch, [{"video_id": v, "status": "ok", "reason": "", "path": str(tmp_path / f"{v}.mp4")}
                        for v in pitch_of])
    extract_shard(fetch, media, tmp_path / "s.features.npz", tmp_path / "s.status.tsv")
    return FeatureStore([tmp_path / "s.features.npz"]), pitch_of


def _separated(means: dict[str, np.ndarray], pitch_of: dict[str, str]) -> tuple[list, list]:
    """Distances between standardised per-video means: same pitch, other pitch."""
    vids = list(means)
    x = np.stack([means[v] for v in vids])
    z = (x - x.mean(0)) / x.std(0)
    same, other = [], []
    for i, j in itertools.combinations(range(len(vids)), 2):
        d = float(np.linalg.norm(z[i] - z[j]))
        (same if pitch_of[vids[i]] == pitch_of[vids[j]] else other).append(d)
    return same, other


def test_random_vggish_features_separate_the_demo_pitches(shard):
    store, pitch_of = shard
    assert store.audio_dim == 128
    means = {}
    for vid in pitch_of:
        rows = store.audio(vid)
        assert len(rows) >= 2                  # one VGGish example per 0.96 s
        means[vid] = rows.mean(0)
    x = np.stack(list(means.values()))
    assert x.std(0).max() < 1e-2               # why the comparison is standardised
    same, other = _separated(means, pitch_of)
    assert len(same) == 3 and len(other) == 12
    assert max(same) < min(other), (sorted(same), sorted(other))


def test_maria_standardiser_passes_the_pitch_on(shard):
    """What Maria+Audio's input layer sees: the training-set standardisation of the stored
    rows must leave unit-scale features in which the pitches stay apart."""
    from tiktalk.models.features import FeatureStandardizer
    import torch

    store, pitch_of = shard
    norm = FeatureStandardizer(store.audio_dim, "audio")
    norm.fit([store.audio(v) for v in pitch_of])
    out = {v: norm(torch.from_numpy(store.audio(v))).numpy() for v in pitch_of}
    rows = np.concatenate(list(out.values()))
    assert 0.5 < rows.std(0).mean() < 2.0, rows.std(0).mean()
    same, other = _separated({v: a.mean(0) for v, a in out.items()}, pitch_of)
    assert max(same) < min(other)
