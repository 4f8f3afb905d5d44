"""The CLI's outputs are unchanged by the redesign (issue 13): the parity contract of a refactor.

For a fixed seed on the tiny random models, ``posevid generate`` (plain, windowed in memory, windowed
streamed, several videos with another scheduler), ``posevid animate`` (with and without frame batches) and
``posevid pose`` are run through the console entry point (``_cli_reference.run_cases``) and compared with
``fixtures/cli_reference/``: arrays written by the code *before* the redesign (commit bf08c22) with
``make_reference.py`` there, never by today's code.

What is compared is what the computation guarantees on any x86-64 CPU and thread count (issue 20):

- PNG frames and the frames handed to each mp4's encoder (x264 itself is not reproducible): uint8 from float
  latents, so within one level on at most 0.1 % of the values (``plugins.tolerance``, the goldens' budget);
- keypoints: MediaPipe (float, XNNPACK) within ``POSE_XY_PX`` / ``POSE_SCORE``; the skeleton and overlay videos
  drawn from them may differ on a few line-edge pixels per frame (``POSE_VIDEO``);
- sidecars and keypoints.json's other fields (no float maths): equal, apart from times, versions, temporary paths
  and the fields listed in ``CHANGED_ON_PURPOSE`` (each with the reason).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from _cli_reference import CASES, REFERENCE_COMMIT, Inputs, load, normalise, run_cases
from plugins.tolerance import assert_uint8_close

REFERENCE_DIR = Path(__file__).parent / "fixtures" / "cli_reference"

# issue 14 changed the pose defaults (zero-phase smoothing, limb rule, joint correction, no overlay, ultrafast);
# these flags are the earlier behaviour (docs/pose.md), which bf08c22 ran without flags
POSE_EARLIER_BEHAVIOUR = ["--smooth", "one-euro", "--limb-rule", "threshold", "--joint-correction", "off", "--overlay",
                          "--preset", "medium"]  # fmt: skip
# Pose tolerances, for the 128x128 output. keypoints.json rounds coordinates to 0.01 px and scores to 1e-4.
# - POSE_XY_PX: float noise in MediaPipe's network (XNNPACK kernels chosen per CPU) moves joints by ~1e-3 px (+-1 level
#   of noise on every input pixel, a far larger change, moved them by up to 4 px, median 0.2); a real change moves
#   them by far more: today's smoothing default instead of One-Euro 1.8 px, no smoothing 1.1 px, joint correction
#   2.2 px, a segment boundary up to 208 px (issue 20).
# - POSE_VIDEO: the skeleton (and the overlay drawn on the video) is drawn at 1/16 px from unrounded joints, so a
#   joint that moved changes line-edge pixels completely. Per frame, joints moved by up to +-0.1 px changed <= 0.22 %
#   of the values (+-0.002 px: 0.03 %); the three real changes above changed 0.45-0.9 %; 1 px wider lines 2.3 %.
# Both sides ran on the same worker count (POSE_ARGS: --workers 1). If pose segmentation changes on purpose and
# moves these keypoints, the lead decides: remake the reference (fixtures/cli_reference/README.md) or adjust here.
POSE_XY_PX = 0.1
POSE_SCORE = 0.01
POSE_VIDEO = {"max_level": 255, "max_fraction": 3e-3}  # per frame

# Sidecar keys whose value may differ from the reference run, and why. Everything else must be equal.
CHANGED_ON_PURPOSE: dict[str, str] = {
    # issue 12 item 8: the sidecar recorded the default "outputs" even when --out pointed elsewhere
    "output_dir": "records the folder really written to",
    # issue 12 item 5 (lead merge): which weight files were read, and the explicit opt-in for untrained temporal layers
    "weights_read": "new field",
    "allow_untrained_temporal": "new field",
    # issue 13: one --quiet everywhere, and the output set written atomically (listed files)
    "quiet": "new shared flag",
    "overwrite": "new shared flag",
    "files": "new field: every file written",
    # issue 11: animate's sidecar names the --driving-video (None with --densepose)
    "driving_video": "new field",
    # the driving video's DensePose person rule and short side (the app's size setting); None with --densepose
    "densepose_person": "new field",
    "densepose_short_side": "new field",
    # issue 14: pose.json records the resolved limb rule, joint correction and encoder preset
    "limb_rule": "new field",
    "joint_correction": "new field",
    "preset": "new field",
    # issue 21: pose.json says whether face and hands were estimated (--wholebody) and in how many frames
    "wholebody": "new field",
    "parts": "new field",
    # issue 20: keypoints no longer depend on the worker count, and their meta no longer records it (pose.json does);
    # they record where the video is cut instead (a function of its frame count)
    "workers": "dropped from the keypoints meta",
    "segments": "new field",
}
# issue 12 item 8: pose.json said "output": "pose" (a staging name); it now records the --out folder
CHANGED_ON_PURPOSE_TOP = {"pose": {"output"}}


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    made_by, cases = load(REFERENCE_DIR)
    assert made_by["commit"].startswith(REFERENCE_COMMIT), f"the reference must come from {REFERENCE_COMMIT}: {made_by}"
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_fyp_release, tiny_dreampose_release, examples_dir, fixtures_dir) -> dict:
    """Run every case once with today's code."""
    inputs = Inputs(tiny_fyp_release, tiny_dreampose_release, examples_dir, fixtures_dir, tmp_path_factory.mktemp("cli_ref"))
    return run_cases(inputs, POSE_EARLIER_BEHAVIOUR)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_cli_outputs_equal_the_pre_redesign_reference(results, reference, case):
    assert_same_outputs(case, results[case], reference[case])


def assert_same_outputs(case: str, got: dict, expected: dict) -> None:
    """``got`` (today's ``run_cases`` result for ``case``) matches the reference within what float maths allows."""
    assert sorted(got["arrays"]) == sorted(expected["arrays"]), case
    for what, ours in got["arrays"].items():
        theirs = expected["arrays"][what]
        if what == "keypoints":
            assert_keypoints_close(ours, theirs, f"{case}: keypoints")
        elif case == "pose":
            assert ours.shape == theirs.shape, f"{case}: {what} shape {ours.shape} != {theirs.shape}"
            for i, (frame, ref) in enumerate(zip(ours, theirs, strict=True)):
                assert_uint8_close(frame, ref, f"{case}: {what} frame {i}", **POSE_VIDEO)
        else:
            assert_uint8_close(ours, theirs, f"{case}: {what}")
    assert sorted(got["meta"]) == sorted(expected["meta"]), case
    for what, ours in got["meta"].items():
        theirs = normalise(expected["meta"][what], {}, CHANGED_ON_PURPOSE)
        ours = normalise(ours, {}, CHANGED_ON_PURPOSE)
        if what.startswith("sidecar"):
            for key in CHANGED_ON_PURPOSE_TOP.get(case, ()):
                theirs.pop(key, None)
                ours.pop(key, None)
        assert ours == theirs, f"{case}: {what} differs: {_debug_diff(ours, theirs)}"


def assert_keypoints_close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    xy, score = np.abs(ours[..., :2] - theirs[..., :2]).max(initial=0), np.abs(ours[..., 2] - theirs[..., 2]).max(initial=0)
    assert xy <= POSE_XY_PX and score <= POSE_SCORE, f"{what}: joints moved {xy:.3f} px ({POSE_XY_PX} allowed), scores {score:.4f}"


# ------------------------------------------------------------------ negative controls: the comparison can fail
def _reference_as_result(reference: dict, case: str) -> dict:
    return copy.deepcopy(reference[case])


def _bump(frames: np.ndarray, levels: int, fraction: float, seed: int = 0) -> np.ndarray:
    flat = frames.astype(np.int16).ravel()
    idx = np.random.default_rng(seed).choice(flat.size, max(1, round(fraction * flat.size)), replace=False)
    flat[idx] = np.where(flat[idx] + levels <= 255, flat[idx] + levels, flat[idx] - levels)
    return flat.reshape(frames.shape).astype(np.uint8)


@pytest.mark.parametrize("case", CASES)
def test_the_reference_matches_itself(reference, case):
    """Positive control for the negative ones below: the untouched reference passes."""
    assert_same_outputs(case, _reference_as_result(reference, case), reference[case])


@pytest.mark.parametrize(
    ("levels", "fraction", "fails"),
    [(1, 5e-4, False), (2, 1e-2, True), (1, 1e-2, True), (2, 1e-9, True)],  # a single value off by 2: caught
)
def test_negative_control_frames_off_by_levels(reference, levels, fraction, fails):
    got = _reference_as_result(reference, "generate_plain")
    got["arrays"]["frames"] = _bump(got["arrays"]["frames"], levels, fraction)
    if fails:
        with pytest.raises(AssertionError, match="generate_plain: frames"):
            assert_same_outputs("generate_plain", got, reference["generate_plain"])
    else:
        assert_same_outputs("generate_plain", got, reference["generate_plain"])


def test_negative_control_pose(reference):
    got = _reference_as_result(reference, "pose")
    got["arrays"]["keypoints"][3, 0, 9, 0] += 0.25  # one wrist, one frame, a quarter pixel
    with pytest.raises(AssertionError, match="joints moved 0.250 px"):
        assert_same_outputs("pose", got, reference["pose"])
    got = _reference_as_result(reference, "pose")
    got["arrays"]["skeleton"] = _bump(got["arrays"]["skeleton"], 200, 1e-2)
    with pytest.raises(AssertionError, match="pose: skeleton"):
        assert_same_outputs("pose", got, reference["pose"])


def test_negative_control_sidecar(reference):
    got = _reference_as_result(reference, "animate")
    got["meta"]["sidecar"]["settings"]["steps"] = 3
    with pytest.raises(AssertionError, match="animate: sidecar differs"):
        assert_same_outputs("animate", got, reference["animate"])


def _debug_diff(a, b, path=""):  # pragma: no cover - a helper for reading failures
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _debug_diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
