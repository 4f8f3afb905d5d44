"""Comparisons for outputs that went through floating point: what the computation guarantees, not its bytes.

Float kernels differ between CPU kinds (Intel with AMX, AMD without; AVX-512 or AVX2 code paths) and with the
thread count, so the last bits of latents differ, and a uint8 value near a rounding edge can land one level
away. Hashes and byte equality stay for outputs that involve no float maths (file copies, integer image ops).
"""

from __future__ import annotations

import numpy as np

# uint8 frames decoded from float latents: every value within one level, at most 0.1 % of the values off at all
# (the reference goldens' README; seen across CPU kinds, thread counts and ATen/MKL/oneDNN code paths: <= 0.025 %).
UINT8_MAX_LEVEL = 1
UINT8_MAX_FRACTION = 1e-3


def uint8_difference(ours: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(largest absolute difference in levels, fraction of values that differ at all) of two same-shaped uint8 arrays."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape, f"shape {ours.shape} != reference {reference.shape}"
    diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    return int(diff.max(initial=0)), float((diff > 0).mean()) if diff.size else 0.0


def assert_uint8_close(ours: np.ndarray, reference: np.ndarray, what: str = "frames", *,
                       max_level: int = UINT8_MAX_LEVEL, max_fraction: float = UINT8_MAX_FRACTION) -> None:  # fmt: skip
    """uint8 images equal to ``reference`` up to float noise: no value more than ``max_level`` away, at most
    ``max_fraction`` of the values different at all."""
    level, fraction = uint8_difference(ours, reference)
    assert level <= max_level and fraction <= max_fraction, (
        f"{what}: values up to {level} levels apart (allowed {max_level}), {fraction:.4%} differ (allowed {max_fraction:.4%})"
    )


def max_relative_error(ours, reference) -> float:
    """Largest absolute difference relative to the reference's largest magnitude (latents, float frames)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape, f"shape {ours.shape} != reference {reference.shape}"
    return float(np.abs(ours - reference).max() / np.abs(reference).max())
