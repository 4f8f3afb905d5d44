"""End to end on a real Charades clip: itself vs a degraded copy (blur + noise + jitter), every metric."""

from __future__ import annotations

import json
import math

import pytest

from plugins.eval import EVAL_PROMPT

HIGHER = ("pck@0.05", "pck@0.1", "pck@0.2", "oks", "oks_ap", "detection_rate", "clip_consistency", "clip_text_alignment",
          "clip_image_alignment", "psnr", "ssim")  # fmt: skip
LOWER = ("l1", "lpips", "fid", "fvd")


def _cfg(videos, eval_videos, eval_weights, eval_keypoints, tmp_path):
    from posevid.eval import EvalConfig

    return EvalConfig(
        videos=[str(videos)], reference=[str(eval_videos["reference"])], metrics="all", pose=str(eval_keypoints),
        prompt=EVAL_PROMPT, reference_image=str(tmp_path / "ref.png"), clip=str(eval_weights["clip"]),
        lpips_weights=str(eval_weights["lpips"]), lpips_backbone=str(eval_weights["lpips_backbone"]),
        inception_weights=str(eval_weights["inception"]), i3d_weights=str(eval_weights["i3d"]), fvd_size=112,
        fvd_clip_length=8, max_frames=16, quiet=True,
    )  # fmt: skip


def test_degraded_copy_scores_worse_on_every_metric(eval_videos, eval_weights, eval_keypoints, tmp_path):
    from PIL import Image

    from posevid.eval import evaluate

    frames = eval_videos["frames"]
    Image.fromarray(frames[len(frames) // 2]).save(tmp_path / "ref.png")  # the "input photo" (DreamPose image alignment)
    clean = evaluate(_cfg(eval_videos["clean"], eval_videos, eval_weights, eval_keypoints, tmp_path))
    bad = evaluate(_cfg(eval_videos["degraded"], eval_videos, eval_weights, eval_keypoints, tmp_path))
    a, b = clean["aggregate"], bad["aggregate"]
    print(json.dumps({"clean": a, "degraded": b}, indent=1))
    assert set(HIGHER + LOWER) <= set(a), sorted(set(HIGHER + LOWER) - set(a))
    # the clip against itself: exact values
    assert a["psnr"] == 100.0 and a["ssim"] == pytest.approx(1.0) and a["l1"] == 0.0 and a["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert a["fid"] == pytest.approx(0.0, abs=1e-6) and a["fvd"] == pytest.approx(0.0, abs=1e-6)
    for key in HIGHER:
        assert b[key] < a[key], (key, a[key], b[key])
    for key in LOWER:
        assert b[key] > a[key], (key, a[key], b[key])
    assert all(math.isfinite(b[k]) for k in HIGHER + LOWER)
    assert clean["set_sizes"] == {"fid": 16, "fvd": 2}
