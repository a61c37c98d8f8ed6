"""The encoder chain of a shard job, in the style of video2dataset's subsamplers: each video is
decoded once (:class:`DecodePlan` says what to decode), and every encoder the config asks for
reads its part of the decoded video.

An encoder has one interface (:class:`Encoder`): ``name`` (the decoded input it reads: a frame
request of the plan, or ``"audio"`` for the VGGish log-mel examples), ``output`` (the shard
file its rows go to: ``"features"`` or ``"image"``), ``slot`` (the array of that file:
``"frames"`` or ``"audio"``), ``dim``, ``source`` (where its weights came from),
``provenance`` (the fingerprint of every weight file it loaded and whether it was initialised
randomly: :func:`tiktalk.io.provenance`; the shard files store the chain's as ``provenance``) and
``encode(inputs) -> rows``: a batch of videos' inputs in, one (rows, dim) float32 array per
video out. The chain of a job is :func:`build_encoders`; the plan is built from the same
config by :func:`plan_for` before any model exists (the decoder processes start first).

=========  ==================  =========  =======  =================================
name       model               output     slot     input
=========  ==================  =========  =======  =================================
visual     ResNet (pooled)     features   frames   ``max_frames`` frames, ``frame_size``
audio      VGGish              features   audio    log-mel examples (0.96 s each)
image      BLIP-2 ViT (tokens) image      frames   ``n_frames`` frames, ``image_size``
=========  ==================  =========  =======  =================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from tiktalk.io import provenance
from tiktalk.media.config import MediaConfig
from tiktalk.media.decode import FrameRequest
from tiktalk.media.image_encoder import ImageEncoderConfig
from tiktalk.media.image_views import MODES, video_views, views_of


@dataclass(frozen=True)
class DecodePlan:
    """What the decoder produces per video: frame sets by name, and audio examples."""

    requests: dict[str, FrameRequest] = field(default_factory=dict)
    audio_examples: int = 0          # max VGGish examples; 0: no audio decoded

    @property
    def audio(self) -> bool:
        return self.audio_examples > 0


def plan_for(cfg: MediaConfig, image: ImageEncoderConfig | None = None) -> DecodePlan:
    """The decode plan of a shard job: ResNet frames, VGGish audio (when enabled) and, with an
    image encoder, its frames (at the size it reads, found without loading weights)."""
    from tiktalk.media.image_encoder import input_size

    requests = {"visual": FrameRequest(cfg.max_frames, cfg.frame_size)}
    if image is not None:
        requests["image"] = FrameRequest(image.n_frames, input_size(image))
    audio = cfg.max_audio_frames if cfg.audio else 0
    return DecodePlan(requests, audio)


class Encoder(ABC):
    name: str
    output: str
    slot: str
    dim: int
    source: str
    provenance: dict

    @abstractmethod
    def encode(self, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
        """One (rows, dim) float32 array per video of ``inputs`` (batched inside)."""

    def extra(self) -> dict[str, np.ndarray]:
        """Further keys of the shard file this encoder fills (none by default)."""
        return {}

    def finish(self, video_ids: Sequence[str], rows: list[np.ndarray]) -> list[np.ndarray]:
        """The rows the shard stores for each video, from what :meth:`encode` gave (default:
        all of them)."""
        return rows

    @staticmethod
    def _split(rows: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
        out, at = [], 0
        for n in counts:
            out.append(rows[at:at + n])
            at += n
        return out


class ResNetFrames(Encoder):
    """Decoded frames -> one pooled ResNet feature per frame."""

    name, output, slot = "visual", "features", "frames"

    def __init__(self, cfg: MediaConfig, device):
        from tiktalk.media.visual import VisualEncoder

        self.model = VisualEncoder(cfg.backbone, cfg.backbone_weights, input_size=cfg.input_size,
                                   device=device, batch_size=cfg.batch_size, seed=cfg.seed,
                                   random_init=cfg.init == "random")
        self.dim, self.source = self.model.dim, self.model.weights_source
        self.provenance = provenance([cfg.backbone_weights], random_init=cfg.init == "random")

    def encode(self, inputs):
        if not inputs:
            return []
        rows = self.model.encode(torch.cat(list(inputs)))
        return self._split(rows, [len(x) for x in inputs])


class VGGishAudio(Encoder):
    """Log-mel examples -> one VGGish embedding per 0.96 s."""

    name, output, slot = "audio", "features", "audio"

    def __init__(self, cfg: MediaConfig, device):
        from tiktalk.media.vggish import AudioEncoder

        self.model = AudioEncoder(cfg.vggish_weights, cfg.vggish_pca, max_examples=cfg.max_audio_frames,
                                  device=device, seed=cfg.seed, batch_size=max(cfg.batch_size, 16),
                                  random_init=cfg.init == "random")
        self.dim, self.source = self.model.dim, self.model.weights_source
        self.provenance = provenance([cfg.vggish_weights, cfg.vggish_pca], random_init=cfg.init == "random")

    def encode(self, inputs):
        if not inputs:
            return []
        rows = self.model.encode_examples(torch.cat(list(inputs)).numpy(), truncate=False)
        return self._split(rows, [len(x) for x in inputs])


class ImageTokens(Encoder):
    """Decoded frames -> the frozen image encoder's tokens, (frames * tokens_per_frame) rows."""

    name, output, slot = "image", "image", "frames"

    def __init__(self, cfg: ImageEncoderConfig, seed: int = 0, views=MODES):
        from tiktalk.media.image_encoder import ImageEncoder

        self.cfg, self.seed, self.views = cfg, int(seed), views_of(views)
        self.model = ImageEncoder(cfg)
        self.dim, self.source = self.model.dim, cfg.describe()
        self.provenance = provenance([cfg.name_or_path], random_init=not cfg.name_or_path)

    def encode(self, inputs):
        if not inputs:
            return []
        feats = self.model.encode(torch.cat(list(inputs)))          # (N, T, D)
        rows = feats.reshape(-1, self.dim)
        t = self.model.tokens_per_frame
        return self._split(rows, [len(x) * t for x in inputs])

    def extra(self):
        out = {"tokens_per_frame": np.int64(self.model.tokens_per_frame),
               "encoder": np.array(self.cfg.describe())}
        if self.cfg.store == "views":
            out.update(views=np.array(self.views), view_frames=np.int64(self.cfg.n_frames),
                       view_seed=np.int64(self.seed))
        return out

    def finish(self, video_ids, rows):
        """``store: views``: per video only what the BLIP-2 rows read (the ``img`` frame of the
        run's seed, the ``video`` mean of ``n_frames`` frames: :func:`video_views`)."""
        if self.cfg.store != "views":
            return rows
        t = self.model.tokens_per_frame
        return [video_views(r.reshape(-1, t, self.dim), self.cfg.n_frames, self.seed, vid, self.views)
                for vid, r in zip(video_ids, rows, strict=True)]


def chain_provenance(encoders: Sequence[Encoder]) -> dict:
    """One :func:`tiktalk.io.provenance` record for the encoders that fill one shard file."""
    weights = {w["path"]: w for e in encoders for w in e.provenance["weights"]}
    return {"random_init": any(e.provenance["random_init"] for e in encoders),
            "weights": list(weights.values())}


def build_encoders(cfg: MediaConfig, device, image: ImageEncoderConfig | None = None,
                   seed: int = 0, views=MODES) -> list[Encoder]:
    """The chain for ``plan_for(cfg, image)``: ResNet, VGGish (when audio is on), image encoder
    (``seed``: the run's, which picks the BLIP-2_Img frame of a video; ``views``: the BLIP-2
    modes whose views the image shard stores)."""
    chain: list[Encoder] = [ResNetFrames(cfg, device)]
    if cfg.audio and cfg.max_audio_frames > 0:
        chain.append(VGGishAudio(cfg, device))
    if image is not None:
        chain.append(ImageTokens(image, seed, views))
    return chain
