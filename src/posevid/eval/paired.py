"""Paired frame metrics: L1, PSNR (correct and the circulating buggy variant), SSIM.

All functions take two uint8 RGB frames (or stacks of frames) of the same shape, ``(H, W, 3)`` or
``(T, H, W, 3)``, and compute in float64. Per-frame values are returned so a report can show and plot
them; a video's score is the mean of its per-frame scores.

Why a "buggy" PSNR exists here: the PSNR script that circulates with pose-to-video papers computes
``np.mean((img1 - img2) ** 2)`` on ``uint8`` arrays. Both the subtraction and the square wrap around
modulo 256, so the "MSE" is ``mean((d * d) mod 256)`` for a pixel difference ``d``. Large errors can look
tiny, and papers that used it report PSNRs (~29 dB) that are not comparable to correct ones (~18 dB).
:func:`psnr_uint8_overflow_buggy` reproduces that computation bit for bit, for comparison only.
"""

from __future__ import annotations

import numpy as np

PSNR_MAX_DB = 100.0  # identical frames have infinite PSNR; we report this cap so JSON stays finite
DATA_RANGE = 255.0


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    return a, b


def _frames(x: np.ndarray) -> np.ndarray:
    return x[None] if x.ndim == 3 else x


def l1_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute error per frame on the [0, 1] scale (DreamPose's L1 convention)."""
    a, b = _pair(a, b)
    a, b = _frames(a), _frames(b)
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(len(a), -1).mean(1) / DATA_RANGE


def psnr_from_mse(mse: np.ndarray, data_range: float = DATA_RANGE, cap: float = PSNR_MAX_DB) -> np.ndarray:
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(data_range**2 / mse)
    return np.minimum(value, cap)


def psnr_per_frame(a: np.ndarray, b: np.ndarray, cap: float = PSNR_MAX_DB) -> np.ndarray:
    """PSNR in dB per frame, computed in float64 (peak 255); identical frames give ``cap``."""
    a, b = _pair(a, b)
    a, b = _frames(a), _frames(b)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return psnr_from_mse((diff * diff).reshape(len(a), -1).mean(1), cap=cap)


def psnr_uint8_overflow_buggy(a: np.ndarray, b: np.ndarray, cap: float = PSNR_MAX_DB) -> np.ndarray:
    """The circulating script's PSNR, wrap-around included. FOR COMPARISON ONLY: do not report it as PSNR."""
    a, b = _pair(a, b)
    a, b = _frames(a).astype(np.uint8), _frames(b).astype(np.uint8)
    wrapped = (a - b) ** 2  # uint8 arithmetic: both operations wrap modulo 256, exactly as the original script
    return psnr_from_mse(wrapped.reshape(len(a), -1).mean(1), cap=cap)


def _gaussian_filter(x: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=sigma, truncate=truncate, mode="reflect")


def ssim_gray(x: np.ndarray, y: np.ndarray, *, data_range: float = DATA_RANGE, sigma: float = 1.5) -> float:
    """Mean SSIM of two 2-D float images (Wang et al. 2004, Gaussian window).

    Matches ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)``: the same separable Gaussian (truncated at 3.5 sigma,
    window 11), half-sample symmetric borders, K1=0.01, K2=0.03, population covariances, and the mean
    taken over the image with a border of (window-1)/2 pixels cropped away.
    """
    truncate = 3.5
    win = 2 * int(truncate * sigma + 0.5) + 1
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ux, uy = _gaussian_filter(x, sigma, truncate), _gaussian_filter(y, sigma, truncate)
    uxx, uyy = _gaussian_filter(x * x, sigma, truncate), _gaussian_filter(y * y, sigma, truncate)
    uxy = _gaussian_filter(x * y, sigma, truncate)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per frame: the mean over RGB channels of :func:`ssim_gray` (skimage's ``channel_axis=-1``)."""
    a, b = _pair(a, b)
    a, b = _frames(a), _frames(b)
    return np.array([np.mean([ssim_gray(fa[..., c], fb[..., c]) for c in range(fa.shape[-1])]) for fa, fb in zip(a, b, strict=False)])
