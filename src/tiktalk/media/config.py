"""Configuration of the media extraction stage (config key ``media`` in config/*.yaml)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping


@dataclass
class MediaConfig:
    max_frames: int = 50                 # frames kept per video, uniformly spaced (paper: 50)
    frame_size: int = 224                # decoded frames are resized to frame_size x frame_size
    input_size: int = 224                # backbone input (frames are resized again if different)
    backbone: str = "resnet101"          # torchvision ResNet name (demo: resnet18)
    backbone_weights: str | None = None  # local state_dict path; None -> seeded random init
    vggish_weights: str | None = None    # local converted VGGish state_dict; None -> random init
    vggish_pca: str | None = None        # local PCA params (.npz or torch); None -> no PCA
    max_audio_frames: int = 180          # VGGish examples (0.96 s each) kept (paper: 180)
    audio: bool = True                   # extract audio features at all
    max_duration_s: float = 180.0        # decode at most this many seconds of video and audio
    max_pixels: int = 4096 * 4096        # larger frames are a failure ("resolution above ...")
    skip_nonref: str | bool = "auto"     # decoder skip_frame='NONREF': "auto", True or False
    decoder_threads: int = 1             # FFmpeg threads per decoder (one decoder per core)
    batch_size: int = 32                 # frames per backbone forward pass
    videos_per_batch: int = 4            # decoded videos per DataLoader batch
    num_workers: int = 2                 # decoder processes feeding the models (0: in-process)
    device: str = "auto"                 # "auto" (cuda if available), "cpu", "cuda:1"...; the job's argument wins
    torch_threads: int = 0               # intra-op threads in the main process; 0: leave as is
    seed: int = 0                        # random init seed for backbone / VGGish

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "MediaConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown media config keys: {unknown} (known: {sorted(names)})")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.max_frames < 1:
            raise ValueError("media.max_frames must be >= 1")
        if self.frame_size < 8 or self.input_size < 8:
            raise ValueError("media.frame_size and media.input_size must be >= 8")
        if self.max_audio_frames < 0:
            raise ValueError("media.max_audio_frames must be >= 0")
        if self.max_duration_s <= 0:
            raise ValueError("media.max_duration_s must be > 0")
        if self.skip_nonref not in (True, False, "auto"):
            raise ValueError("media.skip_nonref must be true, false or 'auto'")
        if self.batch_size < 1 or self.videos_per_batch < 1 or self.num_workers < 0:
            raise ValueError("media.batch_size, videos_per_batch must be >= 1, num_workers >= 0")

    def to_dict(self) -> dict:
        return asdict(self)
