"""Configuration of the media extraction stage (config key ``media.extract`` in config/*.yaml)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

from tiktalk.settings import from_mapping


@dataclass(frozen=True)
class MediaConfig:
    init: str = "pretrained"             # "pretrained": backbone/VGGish weights files required;
                                         # "random": seeded random init (the demo only)
    max_frames: int = 50                 # frames kept per video, uniformly spaced (paper: 50)
    frame_size: int = 224                # decoded frames are resized to frame_size x frame_size
    input_size: int = 224                # backbone input (frames are resized again if different)
    backbone: str = "resnet101"          # torchvision classification model (demo: resnet18)
    backbone_weights: str | None = None  # local state_dict path (init: pretrained)
    vggish_weights: str | None = None    # local torchvggish state_dict (init: pretrained)
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
    min_decoded_fraction: float = 0.9    # a video holding less of its duration is "truncated"

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "MediaConfig":
        """Strict: an unknown key is an error naming it and the closest known key."""
        return from_mapping(cls, d, "media.extract")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"media.extract.init must be 'pretrained' or 'random', got {self.init!r}")
        if self.max_frames < 1:
            raise ValueError("media.extract.max_frames must be >= 1")
        if self.frame_size < 8 or self.input_size < 8:
            raise ValueError("media.extract.frame_size and input_size must be >= 8")
        if self.max_audio_frames < 0:
            raise ValueError("media.extract.max_audio_frames must be >= 0")
        if self.max_duration_s <= 0:
            raise ValueError("media.extract.max_duration_s must be > 0")
        if self.skip_nonref not in (True, False, "auto"):
            raise ValueError("media.extract.skip_nonref must be true, false or 'auto'")
        if self.batch_size < 1 or self.videos_per_batch < 1 or self.num_workers < 0:
            raise ValueError("media.extract.batch_size and videos_per_batch must be >= 1, num_workers >= 0")
        if not 0.0 <= self.min_decoded_fraction <= 1.0:
            raise ValueError("media.extract.min_decoded_fraction must be in [0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)
