"""``posevid animate --driving-video``: DensePose extracted on the fly (cached) and fed to DreamPose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from _densepose_golden import FIXTURE, IMAGES, rgb
from posevid.cli import main
from posevid.video import probe_video, write_video

pytestmark = pytest.mark.slow  # two tiny DreamPose runs


def test_animate_from_a_driving_video_is_cached(tmp_path, tiny_dreampose_release, examples_dir, monkeypatch, capsys):
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    video = tmp_path / "dance.mp4"
    frames = [np.asarray(Image.fromarray(rgb(IMAGES[i % len(IMAGES)])).resize((96, 120))) for i in range(2)]
    write_video(video, frames, fps=4)
    rel = tiny_dreampose_release
    args = ["animate", "--image", str(examples_dir / "key_frame.png"), "--driving-video", str(video),
            "--densepose-weights", str(FIXTURE / "weights.safetensors"), "--model", str(rel),
            "--custom-vae", str(rel / "vae_1499.pth"), "--steps", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a.mp4")]) == 0, capsys.readouterr().err
    assert probe_video(tmp_path / "a.mp4").num_frames == 2
    cached = list((tmp_path / "cache" / "densepose").iterdir())
    assert len(cached) == 1 and sorted(p.name for p in cached[0].glob("*.npy")) == [f"frame_{i}_densepose.npy" for i in range(2)]
    stamp = (cached[0] / "densepose.json").stat().st_mtime_ns
    assert main([*args, "--out", str(tmp_path / "b.mp4")]) == 0  # second run: the cached poses, not a new extraction
    assert (cached[0] / "densepose.json").stat().st_mtime_ns == stamp
    side = json.loads((tmp_path / "b.json").read_text())["settings"]
    assert side["driving_video"] == str(video) and side["densepose"] is None
    # both pose inputs at once is a one-line error
    assert main([*args, "--densepose", str(cached[0]), "--out", str(tmp_path / "c.mp4")]) == 2
    assert "not both" in capsys.readouterr().err and not (tmp_path / "c.mp4").exists()


def test_animate_densepose_short_side_reaches_the_extraction(tmp_path, tiny_dreampose_release, examples_dir, monkeypatch, capsys):
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    video = tmp_path / "dance.mp4"
    write_video(video, [np.asarray(Image.fromarray(rgb(IMAGES[i % len(IMAGES)])).resize((96, 120))) for i in range(2)], fps=4)
    rel = tiny_dreampose_release
    args = ["animate", "--image", str(examples_dir / "key_frame.png"), "--driving-video", str(video),
            "--densepose-weights", str(FIXTURE / "weights.safetensors"), "--model", str(rel),
            "--custom-vae", str(rel / "vae_1499.pth"), "--steps", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    # too small: one line naming the flag, before any model is loaded, nothing written
    assert main([*args, "--densepose-short-side", "16", "--out", str(tmp_path / "bad.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "posevid animate: error: --densepose-short-side must be at least 32, got 16", err
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "cache").exists()
    assert main([*args, "--densepose-short-side", "64", "--out", str(tmp_path / "a.mp4")]) == 0, capsys.readouterr().err
    (entry,) = (tmp_path / "cache" / "densepose").iterdir()
    assert json.loads((entry / "densepose.json").read_text())["config"]["min_size"] == 64
    assert json.loads((tmp_path / "a.json").read_text())["settings"]["densepose_short_side"] == 64
