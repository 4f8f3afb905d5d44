"""Fréchet distance between feature sets: the maths behind FID (Inception frames) and FVD (I3D clips).

``d² = |mu1 - mu2|² + tr(S1 + S2 - 2 (S1 S2)^½)``. pytorch-fid takes ``scipy.linalg.sqrtm`` of ``S1 S2``;
we use the identity ``tr((S1 S2)^½) = Σ sqrt(λ_i(S1 S2))`` (the eigenvalues of a product of two PSD
matrices are real and non-negative), which gives the same number, is faster for 2048-d features and does
not fail on the singular covariances that small evaluation sets produce.
"""

from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov`` with N-1, like pytorch-fid) of ``(N, D)`` features."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (clamped at 0 against round-off)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    eig = np.linalg.eigvals(sigma1 @ sigma2)
    tr_covmean = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two ``(N, D)`` feature sets."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))
