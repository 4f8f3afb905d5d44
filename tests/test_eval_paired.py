"""Closed-form checks of the paired frame metrics: L1, PSNR (correct and the uint8-overflow variant), SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posevid.eval import paired


@pytest.mark.parametrize("d", [1, 5, 20, 100])
def test_psnr_of_constant_offset_is_closed_form(d):
    a = np.full((2, 16, 24, 3), 60, np.uint8)
    b = a + np.uint8(d)
    expected = 20 * math.log10(255 / d)
    assert paired.psnr_per_frame(b, a) == pytest.approx([expected, expected], abs=1e-12)
    assert paired.psnr_per_frame(a, b) == pytest.approx([expected, expected], abs=1e-12)  # symmetric: no wrap-around
    assert paired.l1_per_frame(a, b) == pytest.approx([d / 255, d / 255])


def test_psnr_of_identical_frames_is_capped():
    a = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert paired.psnr_per_frame(a, a)[0] == paired.PSNR_MAX_DB
    assert paired.l1_per_frame(a, a)[0] == 0.0


@pytest.mark.parametrize("d", [3, 15, 16, 20, 100, 200])
def test_buggy_psnr_differs_exactly_as_the_overflow_predicts(d):
    a = np.full((12, 12, 3), 40, np.uint8)
    b = a + np.uint8(d)
    wrapped_mse = (d * d) % 256  # uint8 subtraction AND square both wrap modulo 256
    expected = 100.0 if wrapped_mse == 0 else 10 * math.log10(255**2 / wrapped_mse)
    for x, y in ((a, b), (b, a)):  # (256 - d)^2 = d^2 (mod 256): the same number both ways
        assert paired.psnr_uint8_overflow_buggy(x, y)[0] == pytest.approx(expected, abs=1e-12)
    correct = 20 * math.log10(255 / d)
    if d < 16:
        assert paired.psnr_uint8_overflow_buggy(a, b)[0] == pytest.approx(correct)  # small errors do not overflow
    else:
        assert paired.psnr_uint8_overflow_buggy(a, b)[0] != pytest.approx(correct)


def test_buggy_psnr_on_random_frames_matches_wrapped_mse_and_inflates_psnr():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    diff = a.astype(np.int64) - b.astype(np.int64)
    wrapped = ((diff % 256) ** 2 % 256).reshape(3, -1).mean(1)
    assert paired.psnr_uint8_overflow_buggy(a, b) == pytest.approx(10 * np.log10(255**2 / wrapped), abs=1e-10)
    assert (paired.psnr_uint8_overflow_buggy(a, b) > paired.psnr_per_frame(a, b) + 5).all()


def _skimage_ssim(a, b):
    from skimage.metrics import structural_similarity

    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)


def test_ssim_identical_is_one():
    a = np.random.default_rng(2).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert paired.ssim_per_frame(a, a)[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shift", [(0, 1), (3, 0), (2, 5)])
def test_ssim_of_shifted_images_matches_scikit_image(shift):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 1.5)  # some structure, not just white noise
    moved = np.roll(base, shift, axis=(0, 1))
    noisy = np.clip(moved.astype(int) + rng.integers(-10, 11, moved.shape), 0, 255).astype(np.uint8)
    for other in (moved, noisy):
        ours = paired.ssim_per_frame(base, other)[0]
        assert abs(ours - _skimage_ssim(base, other)) <= 1e-6
        assert ours < 1.0


def test_ssim_stacks_and_real_frames(eval_videos):
    frames = eval_videos["frames"][:3]
    shifted = np.roll(frames, 4, axis=2)
    ours = paired.ssim_per_frame(frames, shifted)
    ref = [_skimage_ssim(f, g) for f, g in zip(frames, shifted, strict=True)]
    assert np.abs(ours - ref).max() <= 1e-6


def test_paired_metrics_reject_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        paired.psnr_per_frame(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
