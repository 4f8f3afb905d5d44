"""Shared helpers for the DensePose golden tests: the fixture case, tolerant comparisons, posevid's stage runs.

Stage runs come from posevid itself: the predictor with ``return_stages=True`` (end to end) and the model's one
composition, ``DensePoseRCNN.forward``, started from a golden previous stage (:func:`fed`); no stage order here.

Everything about the case comes from the fixture folder: the image list from ``meta.json``, every setting
from ``config.yaml`` and every width from the weights, so another case made the same way passes too.
Reduced tensors (see the fixture README): ``NAME.strideS`` holds ``NAME[..., ::S, ::S]``;
``dreampose_npy.window``/``.origin`` hold the non-zero window losslessly; the resized input is a SHA-256.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

FIXTURE = Path(__file__).parent / "fixtures" / "densepose_tiny"
TOL = 1e-4
META = json.loads((FIXTURE / "meta.json").read_text())
IMAGES = sorted(META["images"])
WEIGHTS = {"pkl": FIXTURE / "model_final.pkl", "safetensors": FIXTURE / "weights.safetensors"}


def error(ours: torch.Tensor, golden: torch.Tensor) -> float:
    """Max abs difference divided by max(1, max |golden|): 'within 1e-4 absolute or relative to the tensor's scale'."""
    ours, golden = ours.detach().double().cpu(), golden.detach().double().cpu()
    assert ours.shape == golden.shape, (tuple(ours.shape), tuple(golden.shape))
    if golden.numel() == 0:
        return 0.0
    return float((ours - golden).abs().max() / max(1.0, float(golden.abs().max())))


def golden_pair(golden: dict, name: str, ours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(ours seen as the fixture stores it, golden) for ``name``, or None when the fixture lacks it."""
    if name in golden:
        return ours, golden[name]
    for s in (2, 3, 4):
        if f"{name}.stride{s}" in golden:
            return ours[..., ::s, ::s], golden[f"{name}.stride{s}"]
    return None


def assert_close(golden: dict, name: str, ours: torch.Tensor, tol: float = TOL) -> float:
    pair = golden_pair(golden, name, ours)
    assert pair is not None, f"fixture has no {name}"
    err = error(*pair)
    assert err <= tol, f"{name}: error {err:.3g} > {tol}"
    return err


# Labels are an argmax: float noise (another CPU kind, thread count) can flip a near-tied pixel, which then reads its
# U/V from another chart. Seen: 1 pixel of 3403 with ATen's generic kernels, MKL's compatible path and SSE4.1 oneDNN.
LABEL_FLIPS = 1e-3


def assert_close_except_flipped_labels(ours: torch.Tensor, golden: torch.Tensor, name: str, tol: float = TOL) -> None:
    """``(C, H, W)`` maps read at each pixel's label (U/V, the DreamPose canvas): every pixel within ``tol`` (as
    :func:`error`) but at most ``LABEL_FLIPS`` of them, the ones whose label flipped."""
    ours, golden = ours.detach().double().cpu(), golden.detach().double().cpu()
    assert ours.shape == golden.shape, (tuple(ours.shape), tuple(golden.shape))
    off = (ours - golden).abs().amax(0) / max(1.0, float(golden.abs().max())) > tol
    assert off.float().mean() <= LABEL_FLIPS, f"{name}: {int(off.sum())} of {off.numel()} pixels beyond {tol}"


def match_near_ties(ours_boxes, ours_scores, gold_boxes, gold_scores, tol: float = TOL) -> float:
    """Worst error after letting rows whose scores are within ``tol`` swap places (sorting near-ties).

    Returns the largest box/score error of the best match; rows must otherwise be in the same order.
    """
    assert ours_boxes.shape == gold_boxes.shape, (tuple(ours_boxes.shape), tuple(gold_boxes.shape))
    scale = max(1.0, float(gold_boxes.abs().max()))
    worst = 0.0
    for i in range(gold_boxes.shape[0]):
        near = torch.nonzero((ours_scores - gold_scores[i]).abs() <= tol * max(1.0, float(gold_scores.abs().max()))).flatten()
        near = near[(near - i).abs() <= 8]
        if near.numel() == 0:
            return float("inf")
        errs = (ours_boxes[near] - gold_boxes[i]).abs().max(dim=1).values / scale
        worst = max(worst, float(errs.min()), float((ours_scores[near[errs.argmin()]] - gold_scores[i]).abs()))
    return worst


@functools.cache
def golden(image: str) -> dict:
    return load_file(str(FIXTURE / f"{image}.safetensors"))


@functools.cache
def config():
    from posevid.densepose.config import DensePoseConfig

    return DensePoseConfig.from_yaml(FIXTURE / "config.yaml")


@functools.cache
def state(kind: str) -> dict:
    from posevid.densepose.weights import load_weights_file

    return load_weights_file(WEIGHTS[kind])


@functools.cache
def model(kind: str):
    from posevid.densepose.model import DensePoseRCNN

    return DensePoseRCNN.from_state_dict(state(kind), config(), source=str(WEIGHTS[kind]))


def rgb(image: str) -> np.ndarray:
    with Image.open(FIXTURE / META["images"][image]["file"]) as im:
        return np.asarray(im.convert("RGB"))


def predictor(kind: str):
    from posevid.densepose.predictor import DensePosePredictor

    return DensePosePredictor(model(kind), "cpu")


@functools.cache
def stage_run(kind: str, image: str):
    """posevid's own run of one image: the predictor's frame result (every kept instance with charts) and the model's
    :class:`~posevid.densepose.model.Stages` record of it (every intermediate of the one composition)."""
    (final,), stages = predictor(kind)([rgb(image)], return_stages=True)
    return final, stages


def fed(kind: str, until: str, **given):
    """The model's one composition (``DensePoseRCNN.forward``) started from ``given`` stage results (golden or ours),
    run up to the stage ``until``: what posevid computes for the next stages when the previous ones are exactly these."""
    from posevid.densepose.model import Stages

    with torch.no_grad():
        return model(kind)(Stages(**given), until=until)


def resized_to_original(boxes: torch.Tensor, resized_hw, frame_hw) -> torch.Tensor:
    out = boxes.clone()
    out[:, 0::2] *= frame_hw[1] / resized_hw[1]
    out[:, 1::2] *= frame_hw[0] / resized_hw[0]
    return out


def original_to_resized(boxes: torch.Tensor, resized_hw, frame_hw) -> torch.Tensor:
    out = boxes.clone()
    out[:, 0::2] *= resized_hw[1] / frame_hw[1]
    out[:, 1::2] *= resized_hw[0] / frame_hw[0]
    return out
