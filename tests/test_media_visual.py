"""ResNet frame encoder: dims, normalisation, local weights, seeded random init."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torchvision

from tiktalk.media.visual import VisualEncoder, build_backbone

torch.set_num_threads(1)


def test_resnet18_dim_and_batching():
    enc = VisualEncoder("resnet18", input_size=64, batch_size=3, seed=0, random_init=True)
    frames = np.random.default_rng(0).integers(0, 255, size=(7, 48, 48, 3), dtype=np.uint8)
    out = enc.encode(frames)
    assert out.shape == (7, 512) and out.dtype == np.float32
    # batching does not change results
    one = np.concatenate([enc.encode(frames[i:i + 1]) for i in range(7)])
    np.testing.assert_allclose(out, one, rtol=1e-4, atol=1e-5)
    assert enc.encode(np.zeros((0, 48, 48, 3), np.uint8)).shape == (0, 512)
    with pytest.raises(ValueError, match="frames must be"):
        enc.encode(np.zeros((2, 48, 48), np.uint8))


def test_resnet101_is_2048d():
    model, dim, _ = build_backbone("resnet101", random_init=True)
    assert dim == 2048
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 2048)


def test_any_torchvision_classifier_is_a_backbone(tmp_path):
    """Swapping the encoder is a config value: the last linear layer goes, whatever its name
    (``fc``, ``classifier.3``), and the features are its input; a checkpoint's head keys are
    ignored; a model without a linear head, or an unknown name, is an error naming it."""
    torch.manual_seed(3)
    ref = torchvision.models.mobilenet_v3_small(weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "mnv3.pth")
    model, dim, source = build_backbone("mobilenet_v3_small", tmp_path / "mnv3.pth")
    assert dim == ref.classifier[3].in_features == 1024 and "sha256:" in source
    ref.classifier[3] = torch.nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), ref(x))
    with pytest.raises(ValueError, match="no nn.Linear classifier head"):
        build_backbone("squeezenet1_0", random_init=True)
    with pytest.raises(ValueError, match="unknown backbone 'resnet7'.*resnet101"):
        build_backbone("resnet7", random_init=True)


def test_weights_from_local_state_dict(tmp_path, caplog):
    torch.manual_seed(123)
    ref = torchvision.models.resnet18(weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")   # includes fc.* (ignored)
    with caplog.at_level("INFO"):
        enc = VisualEncoder("resnet18", weights=tmp_path / "r18.pth", input_size=32)
    digest = hashlib.sha256((tmp_path / "r18.pth").read_bytes()).hexdigest()
    assert enc.weights_source == f"{tmp_path / 'r18.pth'} sha256:{digest}" and "weights from" in caplog.text
    frames = np.full((2, 32, 32, 3), 200, np.uint8)
    x = (torch.full((2, 3, 32, 32), 200 / 255.0) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref.fc = torch.nn.Identity()
    with torch.no_grad():
        expect = ref(x).numpy()
    np.testing.assert_allclose(enc.encode(frames), expect, rtol=1e-4, atol=1e-5)
    # a state_dict of another architecture is refused
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ValueError, match="does not fit resnet18"):
        VisualEncoder("resnet18", weights=tmp_path / "r34.pth")


def test_random_init_only_when_asked_for_seeded_and_logged(caplog):
    with pytest.raises(ValueError, match="no backbone_weights given.*fetch_weights.*init: random"):
        VisualEncoder("resnet18", seed=5, input_size=32)
    with caplog.at_level("INFO"):
        a = VisualEncoder("resnet18", seed=5, input_size=32, random_init=True)
    assert "random init as configured" in caplog.text and a.weights_source == "random init (seed 5)"
    b = VisualEncoder("resnet18", seed=5, input_size=32, random_init=True)
    c = VisualEncoder("resnet18", seed=6, input_size=32, random_init=True)
    f = np.random.default_rng(1).integers(0, 255, size=(2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(a.encode(f), b.encode(f))
    assert not np.allclose(a.encode(f), c.encode(f))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet1O1")


def test_random_resnet101_fits_float16():
    enc = VisualEncoder("resnet101", seed=0, input_size=64, random_init=True)
    f = np.random.default_rng(2).integers(0, 255, size=(2, 64, 64, 3), dtype=np.uint8)
    out = enc.encode(f)
    assert out.shape == (2, 2048) and np.isfinite(out.astype(np.float16)).all()
    assert not np.allclose(out[0], out[1])
