"""The image -> video tab from a driving video: DensePose extracted (cached) by the animate task, then DreamPose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from _densepose_golden import FIXTURE, IMAGES, rgb
from posevid.app import backend
from posevid.errors import PosevidError
from posevid.tasks.common import ModelCache
from posevid.video import probe_video, write_video


@pytest.fixture
def driving_video(tmp_path, monkeypatch):
    """Two frames of the DensePose golden's people (the tiny random weights find someone there), 96x120."""
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    video = tmp_path / "dance.mp4"
    write_video(video, [np.asarray(Image.fromarray(rgb(IMAGES[i % len(IMAGES)])).resize((96, 120))) for i in range(2)], fps=4)
    return video


def _run(rel, examples_dir, out, **kw):
    return backend.run_image_to_video(ModelCache(), image=examples_dir / "key_frame.png", out_dir=out, s1=8, s2=3, steps=1, seed=0,
                                      model=str(rel), custom_vae=str(rel / "vae_1499.pth"), **kw)


@pytest.mark.slow  # one DensePose extraction (2 frames at the reference's 800-pixel short side) and 2 tiny DreamPose frames
def test_backend_animates_from_a_driving_video_with_the_tiny_models(tmp_path, tiny_dreampose_release, examples_dir, driving_video):
    out = tmp_path / "job"
    out.mkdir()
    seen = []
    res = _run(tiny_dreampose_release, examples_dir, out, driving_video=driving_video,
               densepose_weights=str(FIXTURE / "weights.safetensors"), densepose_person="track",
               progress=lambda step, total, desc: seen.append((step, total)))
    assert res["mp4"] == out / "result.mp4" and probe_video(res["mp4"]).num_frames == 2 == res["num_frames"]
    assert res["gif"].is_file() and seen[-1] == (2, 2)
    side = json.loads(res["sidecar"].read_text())["settings"]
    assert side["driving_video"] == str(driving_video) and side["densepose"] is None
    cached = list((tmp_path / "cache" / "densepose").iterdir())  # the animate task's DensePose cache, not a copy of it
    assert len(cached) == 1 and json.loads((cached[0] / "densepose.json").read_text())["settings"]["person"] == "track"


def test_a_missing_densepose_weights_file_is_one_line_and_writes_nothing(tmp_path, tiny_dreampose_release, examples_dir, driving_video):
    out = tmp_path / "job"
    out.mkdir()
    with pytest.raises(PosevidError) as err:
        _run(tiny_dreampose_release, examples_dir, out, driving_video=driving_video, densepose_weights=str(tmp_path / "nope.safetensors"))
    assert "nope.safetensors" in str(err.value) and "\n" not in str(err.value)
    assert list(out.iterdir()) == []
