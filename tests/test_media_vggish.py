"""VGGish front end vs. an independent NumPy computation, the network, weights, PCA."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tiktalk.media import vggish as V

torch.set_num_threads(1)


def reference_log_mel(wav: np.ndarray) -> np.ndarray:
    """Independent NumPy implementation of the TF reference (vggish_input.waveform_to_examples)."""
    sr, win, hop, nfft = 16000, 400, 160, 512
    n_frames = 1 + (len(wav) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)      # periodic Hann
    spec = np.abs(np.fft.rfft(wav[idx] * window, nfft))                 # (T, 257)
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)
    bin_mel = mel(np.linspace(0, sr / 2, nfft // 2 + 1))[:, None]       # (257, 1)
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    lo, ce, hi = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    weights = np.clip(np.minimum((bin_mel - lo) / (ce - lo), (hi - bin_mel) / (hi - ce)), 0, None)
    weights[0] = 0.0
    log_mel = np.log(spec @ weights + 0.01)
    n_ex = len(log_mel) // 96
    return log_mel[: n_ex * 96].reshape(n_ex, 96, 64), edges


def tone(hz: float, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz", [440.0, 1000.0, 3000.0])
def test_front_end_matches_numpy_reference_and_tone(hz):
    wav = tone(hz, 3.0)
    ours = V.waveform_to_examples(wav)
    ref, edges = reference_log_mel(wav.astype(np.float64))
    assert ours.shape == ref.shape == (3, 96, 64)   # 3 s -> 298 frames -> 3 examples of 0.96 s
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    # the band with most energy is the band whose centre is nearest the tone
    centres_hz = 700.0 * (np.exp(edges[1:-1] / 1127.0) - 1.0)
    best = int(np.argmax(ours.mean(axis=(0, 1))))
    assert best == int(np.argmin(np.abs(centres_hz - hz)))


def test_front_end_lengths_and_cap():
    assert V.waveform_to_examples(np.zeros(300, np.float32)).shape == (0, 96, 64)
    # 0.96 s needs 95 hops + one window: (96 - 1) * 160 + 400 samples
    assert V.waveform_to_examples(np.zeros(95 * 160 + 400, np.float32)).shape == (1, 96, 64)
    assert V.waveform_to_examples(np.zeros(95 * 160 + 399, np.float32)).shape == (0, 96, 64)
    assert V.waveform_to_examples(tone(440, 10.0), max_examples=4).shape == (4, 96, 64)
    with pytest.raises(ValueError, match="16000"):
        V.waveform_to_examples(tone(440, 1.0), sample_rate=44100)
    np.testing.assert_allclose(V.waveform_to_examples(np.zeros(16000, np.float32)), np.log(0.01), rtol=1e-6)


def test_mel_matrix_properties():
    m = V.mel_matrix()
    assert m.shape == (257, 64)
    assert np.all(m[0] == 0) and np.all(m >= 0)
    freqs = np.linspace(0, 8000, 257)
    assert np.all(m[freqs < 125] == 0) and np.all(m[freqs > 7500] == 0)


def test_network_shapes_no_final_relu_and_nhwc_flatten():
    torch.manual_seed(0)
    net = V.VGGish().eval()
    x = torch.randn(2, 96, 64)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 128)
    assert (y < 0).any()                       # fc2 output, no ReLU
    assert isinstance(net.embeddings[-1], torch.nn.Linear)
    keys = set(net.state_dict())
    expected = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")}
    expected |= {f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert keys == expected
    # NHWC flatten: fc1 column (h, w, c) = ((h * 4) + w) * 512 + c sees channel c at (h, w)
    feats = torch.zeros(1, 512, 6, 4)
    feats[0, 7, 2, 3] = 1.0
    flat = feats.permute(0, 2, 3, 1).reshape(1, -1)
    assert flat[0, (2 * 4 + 3) * 512 + 7] == 1.0


def test_audio_encoder_weights_pca_and_cap(tmp_path):
    torch.manual_seed(1)
    net = V.VGGish()
    torch.save(net.state_dict(), tmp_path / "vggish.pth")
    rng = np.random.default_rng(0)
    vecs = np.linalg.qr(rng.normal(size=(128, 128)))[0]
    means = rng.normal(size=128)
    np.savez(tmp_path / "pca.npz", pca_eigen_vectors=vecs, pca_means=means.reshape(128, 1))
    wav = tone(1000, 5.0)
    enc = V.AudioEncoder(tmp_path / "vggish.pth", max_examples=3)
    emb = enc.encode(wav)
    digest = hashlib.sha256((tmp_path / "vggish.pth").read_bytes()).hexdigest()
    assert emb.shape == (3, 128) and enc.weights_source == f"{tmp_path / 'vggish.pth'} sha256:{digest}"
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(V.waveform_to_examples(wav)[:3])).numpy()
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-5)
    enc_pca = V.AudioEncoder(tmp_path / "vggish.pth", tmp_path / "pca.npz", max_examples=3)
    q = enc_pca.encode(wav)
    expect = np.floor((np.clip((ref - means) @ vecs.T, -2, 2) + 2) * 255 / 4)
    np.testing.assert_array_equal(q, expect.astype(np.float32))
    assert q.min() >= 0 and q.max() <= 255
    # a checkpoint with missing keys is an error, not a silent partial load
    sd = net.state_dict()
    sd.pop("embeddings.4.weight")
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="lacks keys"):
        V.AudioEncoder(tmp_path / "bad.pth")


def test_random_init_only_when_asked_for_seeded_and_logged(caplog):
    with pytest.raises(ValueError, match="no vggish_weights given.*fetch_weights.*init: random"):
        V.AudioEncoder(seed=3)
    with caplog.at_level("INFO"):
        a = V.AudioEncoder(seed=3, random_init=True)
    b = V.AudioEncoder(seed=3, random_init=True)
    assert "random init as configured" in caplog.text and a.weights_source == "random init (seed 3)"
    ex = np.random.default_rng(0).normal(size=(2, 96, 64)).astype(np.float32)
    np.testing.assert_array_equal(a.encode_examples(ex), b.encode_examples(ex))
