"""The image -> video tab from a driving video: DensePose extracted (cached) by the animate task, then DreamPose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from _densepose_golden import FIXTURE, IMAGES, rgb
from posevid.app import backend
from posevid.app.jobs import JobCancelled, JobQueue
from posevid.densepose.extract import densepose_folder_for
from posevid.densepose.options import DensePoseOptions
from posevid.densepose.predictor import DensePosePredictor
from posevid.errors import PosevidError
from posevid.tasks.common import ModelCache
from posevid.video import probe_video, write_video


def _video(path, frames: int):
    """``frames`` frames of the DensePose golden's people (the tiny random weights find someone there), 96x120."""
    write_video(path, [np.asarray(Image.fromarray(rgb(IMAGES[i % len(IMAGES)])).resize((96, 120))) for i in range(frames)], fps=4)
    return path


@pytest.fixture
def driving_video(tmp_path, monkeypatch):
    """Two frames; the DensePose cache in tmp_path."""
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    return _video(tmp_path / "dance.mp4", 2)


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
               progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert res["mp4"] == out / "result.mp4" and probe_video(res["mp4"]).num_frames == 2 == res["num_frames"]
    assert res["gif"].is_file() and seen[-1] == ("frames", 2, 2)
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


def test_the_short_side_setting_reaches_the_extractor_and_the_cache_key(tmp_path, tiny_dreampose_release, examples_dir, driving_video):
    out = tmp_path / "job"
    out.mkdir()
    weights = str(FIXTURE / "weights.safetensors")
    seen = []
    res = _run(tiny_dreampose_release, examples_dir, out, driving_video=driving_video, densepose_weights=weights, densepose_short_side=64,
               progress=lambda stage, done, total: seen.append((stage, done, total)))
    (entry,) = (tmp_path / "cache" / "densepose").iterdir()
    side = json.loads((entry / "densepose.json").read_text())
    assert side["settings"]["short_side"] == 64 and side["config"]["min_size"] == 64  # the model really ran at 64 pixels
    assert json.loads(res["sidecar"].read_text())["settings"]["densepose_short_side"] == 64
    assert [(done, total) for stage, done, total in seen if stage == "densepose"] == [(0, 2), (2, 2)]  # one batch of 2 frames
    # the size is part of the cache key: the same size finds this entry, another size makes a new one
    assert densepose_folder_for(driving_video, DensePoseOptions(weights=weights, short_side=64), progress=False) == entry
    other = densepose_folder_for(driving_video, DensePoseOptions(weights=weights, short_side=96), progress=False)
    assert other != entry and json.loads((other / "densepose.json").read_text())["config"]["min_size"] == 96


def test_cancel_during_densepose_extraction_stops_within_one_batch_and_leaves_nothing(tmp_path, tiny_dreampose_release, examples_dir,
                                                                                     monkeypatch):
    """The app's Cancel during extraction: the job stops after the batch it is in, not when frame generation starts."""
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    video = _video(tmp_path / "dance.mp4", DensePoseOptions.batch_size + 1)  # two batches
    batches = []
    original = DensePosePredictor.__call__

    def predict(self, frames, **kw):
        batches.append(len(frames))
        result = original(self, frames, **kw)
        jobs.cancel_owner("user")  # the user presses Cancel while the first batch runs
        return result

    monkeypatch.setattr(DensePosePredictor, "__call__", predict)
    jobs = JobQueue(tmp_path / "app")
    try:
        job = jobs.submit("i2v", lambda job: _run(tiny_dreampose_release, examples_dir, job.folder, driving_video=video,
                                                  densepose_weights=str(FIXTURE / "weights.safetensors"), densepose_short_side=64,
                                                  progress=job.progress), owner="user")  # fmt: skip
        assert job.wait(120)
    finally:
        jobs.shutdown()
    assert isinstance(job.error, JobCancelled) and job.cancelled
    assert batches == [DensePoseOptions.batch_size]  # the second batch never ran
    assert (job.step, job.total) == (DensePoseOptions.batch_size, DensePoseOptions.batch_size + 1) and "DensePose" in job.desc
    cache = tmp_path / "cache" / "densepose"
    assert not cache.exists() or list(cache.iterdir()) == []  # no cache entry, not even a half-written one
    assert list(job.folder.iterdir()) == []  # no output
