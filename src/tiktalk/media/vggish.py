"""VGGish (Hershey et al. 2017) inside the package: torchaudio 2.9 has none.

Front end = the TF reference (tensorflow/models research/audioset/vggish, ``vggish_input`` +
``mel_features`` + ``vggish_params``): mono float waveform in [-1, 1] at 16 kHz; frames of 400
samples (25 ms) every 160 (10 ms), no padding; periodic Hann window; |rfft| with n_fft 512
(257 bins); HTK mel matrix of 64 bands between 125 and 7500 Hz with the DC bin zeroed;
``log(mel + 0.01)``; non-overlapping examples of 96 frames x 64 bands (0.96 s).

Network = VGG-ish conv stack + fc 4096-4096-128 on (N, 1, 96, 64) examples. The embedding is
fc2's (last Linear) output with NO final ReLU. Before the fc layers the conv map is flattened in
TF's NHWC order (as harritaylor/torchvggish does), so ported TF weights line up.

Checkpoint (``vggish_weights``): a torch ``state_dict`` (``torch.load(weights_only=True)``) with
the keys of harritaylor/torchvggish's ``vggish-10086976.pth``::

    features.0.{weight,bias}   Conv2d(1, 64, 3, padding=1)
    features.3.{weight,bias}   Conv2d(64, 128, 3, padding=1)
    features.6.{weight,bias}   Conv2d(128, 256, 3, padding=1)
    features.8.{weight,bias}   Conv2d(256, 256, 3, padding=1)
    features.11.{weight,bias}  Conv2d(256, 512, 3, padding=1)
    features.13.{weight,bias}  Conv2d(512, 512, 3, padding=1)
    embeddings.0.{weight,bias} Linear(12288, 4096)
    embeddings.2.{weight,bias} Linear(4096, 4096)
    embeddings.4.{weight,bias} Linear(4096, 128)

PCA postprocessing (``vggish_pca``): ``.npz`` (TF's ``vggish_pca_params.npz``) or torch file
(torchvggish's ``vggish_pca_params-970ea276.pth``) with ``pca_eigen_vectors`` (128, 128) and
``pca_means`` (128,) or (128, 1): ``(emb - means) @ eigvecs.T``, clip to [-2, 2], scale by
255/4 after shifting by 2, truncate to uint8 (values 0..255, returned as float32).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tiktalk.io import fingerprint

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
STFT_WINDOW = 400
STFT_HOP = 160
N_FFT = 512
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96          # 0.96 s at 100 frames/s
EXAMPLE_SECONDS = EXAMPLE_FRAMES * STFT_HOP / SAMPLE_RATE   # 0.96: audio shorter gives no example
EMBEDDING_SIZE = 128
PCA_CLIP = 2.0
QUANTIZE_RANGE = 255.0


def hertz_to_mel(hz):
    """HTK mel scale: 1127 * ln(1 + f / 700)."""
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(num_mel_bins: int = NUM_MEL_BINS, num_spectrogram_bins: int = N_FFT // 2 + 1,
               sample_rate: int = SAMPLE_RATE, lower_hz: float = MEL_MIN_HZ,
               upper_hz: float = MEL_MAX_HZ) -> np.ndarray:
    """(num_spectrogram_bins, num_mel_bins) triangular HTK weights, DC row zero (as mel_features)."""
    nyquist = sample_rate / 2.0
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))
    edges = np.linspace(hertz_to_mel(lower_hz), hertz_to_mel(upper_hz), num_mel_bins + 2)
    w = np.empty((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        lo, ce, hi = edges[i:i + 3]
        lower_slope = (bins_mel - lo) / (ce - lo)
        upper_slope = (hi - bins_mel) / (hi - ce)
        w[:, i] = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    w[0, :] = 0.0
    return w


class VGGishFrontEnd(nn.Module):
    """Waveform (16 kHz mono float) -> log-mel examples (n, 96, 64), torch implementation."""

    def __init__(self):
        super().__init__()
        n = torch.arange(STFT_WINDOW, dtype=torch.float64)
        self.register_buffer("window", (0.5 - 0.5 * torch.cos(2 * torch.pi * n / STFT_WINDOW)), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_matrix()), persistent=False)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        wav = wav.to(torch.float64).reshape(-1)
        if wav.numel() < STFT_WINDOW:
            return torch.zeros((0, EXAMPLE_FRAMES, NUM_MEL_BINS), dtype=torch.float32)
        frames = wav.unfold(0, STFT_WINDOW, STFT_HOP)                       # (T, 400)
        spec = torch.fft.rfft(frames * self.window, n=N_FFT).abs()           # (T, 257)
        log_mel = torch.log(spec @ self.mel + LOG_OFFSET)                    # (T, 64)
        n_ex = log_mel.shape[0] // EXAMPLE_FRAMES
        return log_mel[: n_ex * EXAMPLE_FRAMES].reshape(n_ex, EXAMPLE_FRAMES, NUM_MEL_BINS).float()


_FRONT_END: VGGishFrontEnd | None = None


def waveform_to_examples(wav: np.ndarray, sample_rate: int = SAMPLE_RATE,
                         max_examples: int | None = None) -> np.ndarray:
    """Log-mel examples (n, 96, 64) float32 of a 16 kHz mono waveform (first ``max_examples``)."""
    global _FRONT_END
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"VGGish needs {SAMPLE_RATE} Hz audio, got {sample_rate} (resample first)")
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if max_examples is not None:
        # Enough samples for max_examples full examples, no more.
        need = (max_examples * EXAMPLE_FRAMES - 1) * STFT_HOP + STFT_WINDOW
        wav = wav[:need]
    if _FRONT_END is None:
        _FRONT_END = VGGishFrontEnd()
    ex = _FRONT_END(torch.from_numpy(wav)).numpy()
    return ex[:max_examples] if max_examples is not None else ex


class VGGish(nn.Module):
    """The VGGish network; ``forward`` maps (N, 96, 64) or (N, 1, 96, 64) to (N, 128)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(256, 512, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        )
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE),   # no ReLU: the embedding is fc2's raw output
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.features(x)                          # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)   # NHWC flatten, as TF
        return self.embeddings(x)


def load_pca_params(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(eigvecs (128, 128), means (128,)) from a TF ``.npz`` or a torch file."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            vecs, means = z["pca_eigen_vectors"], z["pca_means"]
    else:
        d = torch.load(path, map_location="cpu", weights_only=True)
        vecs, means = np.asarray(d["pca_eigen_vectors"]), np.asarray(d["pca_means"])
    vecs = np.asarray(vecs, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64).reshape(-1)
    if vecs.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE,):
        raise ValueError(f"{path}: PCA params must be (128, 128) and (128,), got {vecs.shape}, {means.shape}")
    return vecs, means


def pca_postprocess(emb: np.ndarray, eigvecs: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The reference Postprocessor: returns the uint8 values (0..255) as float32."""
    pca = (np.asarray(emb, dtype=np.float64) - means) @ eigvecs.T
    clipped = np.clip(pca, -PCA_CLIP, PCA_CLIP)
    quant = ((clipped + PCA_CLIP) * (QUANTIZE_RANGE / (2 * PCA_CLIP))).astype(np.uint8)
    return quant.astype(np.float32)


class AudioEncoder:
    """Waveform -> VGGish embeddings (<= ``max_examples`` x 128), optionally PCA'd."""

    def __init__(self, weights: str | Path | None = None, pca: str | Path | None = None,
                 max_examples: int = 180, device: str = "cpu", seed: int = 0, batch_size: int = 64,
                 random_init: bool = False):
        self.device = torch.device(device)
        self.max_examples = max_examples
        self.batch_size = batch_size
        if weights and random_init:
            raise ValueError(f"VGGish: both vggish_weights ({weights}) and random init requested")
        if not weights and not random_init:
            raise ValueError("VGGish: no vggish_weights given (media.extract.vggish_weights: the "
                             "torchvggish checkpoint, fetched by `snakemake --cores 1 fetch_weights`); "
                             "random init only with media.extract.init: random")
        if weights:
            self.model = VGGish()
            state = torch.load(weights, map_location="cpu", weights_only=True)
            # tolerate torchvggish's extra buffers/ReLU-free differences: only our keys matter
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(f"{weights}: VGGish checkpoint lacks keys {missing}")
            if unexpected:
                log.warning("VGGish checkpoint %s: ignored keys %s", weights, unexpected)
            self.weights_source = f"{weights} sha256:{fingerprint(weights)['sha256']}"
            log.info("VGGish: weights from %s", self.weights_source)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.model = VGGish()
            self.weights_source = f"random init (seed {seed})"
            log.info("VGGish: random init as configured (seed %d)", seed)
        self.model.eval().to(self.device)
        self.pca = load_pca_params(pca) if pca else None
        if pca:
            self.weights_source += f"; PCA {pca} sha256:{fingerprint(pca)['sha256']}"
            log.info("VGGish: PCA postprocessing from %s", pca)
        self.dim = EMBEDDING_SIZE

    @torch.no_grad()
    def encode_examples(self, examples: np.ndarray, truncate: bool = True) -> np.ndarray:
        """(n, 96, 64) log-mel examples -> (n, 128) float32 (first ``max_examples`` when
        ``truncate``; pass False for a batch that concatenates several videos)."""
        examples = np.asarray(examples, dtype=np.float32)
        if truncate:
            examples = examples[: self.max_examples]
        if len(examples) == 0:
            return np.zeros((0, self.dim), np.float32)
        outs = []
        for i in range(0, len(examples), self.batch_size):
            x = torch.from_numpy(examples[i:i + self.batch_size]).to(self.device)
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.float16):
                    y = self.model(x)
            else:
                y = self.model(x)
            outs.append(y.float().cpu().numpy())
        emb = np.concatenate(outs)
        if self.pca is not None:
            emb = pca_postprocess(emb, *self.pca)
        return emb

    def encode(self, wav: np.ndarray) -> np.ndarray:
        return self.encode_examples(waveform_to_examples(wav, max_examples=self.max_examples))
