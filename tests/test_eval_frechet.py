"""Fréchet distance closed forms, and the FID / FVD / LPIPS networks' loading and plumbing (tiny random nets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posevid.errors import CheckpointError
from posevid.eval.frechet import feature_stats, frechet_distance, frechet_distance_features


def test_frechet_of_identical_features_is_zero():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_frechet_between_two_gaussians_equals_closed_form():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # shared eigenbasis: S1 and S2 commute
    a, b = rng.uniform(0.5, 3, 6), rng.uniform(0.5, 3, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(closed, rel=1e-10)
    # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(4 + 1)


def test_frechet_matches_pytorch_fid_sqrtm_formula_for_general_covariances():
    from scipy import linalg

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5)) + 1
    (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
    covmean = linalg.sqrtm(s1 @ s2).real
    reference = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-8)


def test_fvd_clip_protocol_shapes_and_padding():
    from posevid.eval.runner import fvd_clips

    frames = np.random.default_rng(3).integers(0, 256, (40, 90, 160, 3), dtype=np.uint8)
    clips, padded = fvd_clips(frames)  # defaults: 16 frames, 224x224, [-1, 1]
    assert tuple(clips.shape) == (2, 3, 16, 224, 224) and padded == 0  # 40 frames -> 2 whole clips, the tail is dropped
    assert clips.min() >= -1 and clips.max() <= 1
    short, padded = fvd_clips(frames[:10], clip_length=16, size=32)
    assert tuple(short.shape) == (1, 3, 16, 32, 32) and padded == 6
    assert torch.equal(short[:, :, 9], short[:, :, 15])  # padded with the last frame


def _he(net):
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.eval()


def test_i3d_loads_from_state_dict_and_gives_fvd(tmp_path):
    from posevid.eval.nets import InceptionI3d, load_i3d
    from posevid.eval.runner import fvd_clips

    torch.manual_seed(0)
    net = _he(InceptionI3d(width=1 / 16, num_classes=10))
    torch.save(net.state_dict(), tmp_path / "i3d.pth")
    loaded = load_i3d(tmp_path / "i3d.pth")
    assert loaded.feature_dim == 10 and loaded.width == 1 / 16
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (16, 40, 40, 3), dtype=np.uint8)
    clips, _ = fvd_clips(frames, clip_length=8, size=40)
    with torch.no_grad():
        a = loaded(clips).numpy()
        assert np.allclose(a[:1], net(clips[:1]).numpy(), atol=1e-5)
        noisy = loaded(clips + 0.5 * torch.randn_like(clips)).numpy()
    assert a.shape == (2, 10)
    assert frechet_distance_features(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_features(a, noisy) > 0
    with pytest.raises(CheckpointError, match="--i3d-weights"):
        load_i3d(tmp_path / "missing.pt")
    torch.save({"something.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a I3D weight file"):
        load_i3d(tmp_path / "other.pth")


def test_inception_loads_pt_inception_keys_and_ignores_fc(tmp_path):
    from posevid.eval.nets import FIDInceptionV3, load_inception

    torch.manual_seed(0)
    net = _he(FIDInceptionV3(width=1 / 8))
    state = dict(net.state_dict())
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and "Conv2d_1a_3x3.conv.weight" in state
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, net.feature_dim), torch.zeros(1008)  # as in pt_inception-2015-12-05
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # converted TF weights lack these
    torch.save(state, tmp_path / "pt_inception.pth")
    loaded = load_inception(tmp_path / "pt_inception.pth")
    x = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x))
    assert loaded(x).shape == (2, 256)
    del state["Mixed_6b.branch7x7_2.conv.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="missing key"):
        load_inception(tmp_path / "broken.pth")


def test_full_size_networks_match_the_published_parameter_counts():
    from posevid.eval.nets import LPIPS, FIDInceptionV3, InceptionI3d

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(FIDInceptionV3()) == 21_785_568  # torchvision inception_v3 minus AuxLogits and fc
    assert count(InceptionI3d()) == 12_697_264  # pytorch-i3d InceptionI3d(400)
    assert count(LPIPS("alex")) == 2_469_696 + 1_152  # torchvision alexnet.features + lin0..4
    assert count(LPIPS("vgg")) == 14_714_688 + 1_472  # torchvision vgg16.features + lin0..4


def test_lpips_files_identity_and_errors(tmp_path):
    from posevid.eval.nets import LPIPS, load_lpips

    torch.manual_seed(0)
    net = _he(LPIPS("vgg", width=1 / 8))
    state = net.state_dict()
    lin = {k: v.abs() for k, v in state.items() if k.startswith("lin")}
    torch.save(lin, tmp_path / "vgg.pth")
    torch.save({"net." + k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")} | lin, tmp_path / "merged.pth")
    with pytest.raises(CheckpointError, match="--lpips-backbone"):
        load_lpips(tmp_path / "vgg.pth")
    merged = load_lpips(tmp_path / "merged.pth")
    assert merged.net == "vgg"
    a = torch.rand(2, 3, 40, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(merged(a, a), torch.zeros(2))
        assert (merged(a, a + 0.3 * torch.randn_like(a)) > 0).all()
    with pytest.raises(CheckpointError, match="--lpips-weights"):
        load_lpips(tmp_path / "nope.pth")
