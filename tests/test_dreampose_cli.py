"""``posevid animate`` end to end on the tiny random release with the real DreamPose key frame."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plugins.dreampose import write_synthetic_densepose
from posevid.cli import main
from posevid.video import probe_video, read_frames


def _animate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "posevid", "animate", *args], capture_output=True, text=True, env=env, timeout=600)


def test_animate_end_to_end_and_seed_spelling(tmp_path, tiny_dreampose_release, examples_dir, capsys):
    rel = tiny_dreampose_release
    poses = write_synthetic_densepose(tmp_path / "poses", range(3))
    key = examples_dir / "key_frame.png"
    out = tmp_path / "res" / "dance.mp4"
    proc = _animate(
        "--image", str(key), "--densepose", str(poses), "--out", str(out), "--model", str(rel),
        "--custom-vae", str(rel / "vae_1499.pth"), "--s1", "8", "--s2", "3", "--steps", "1", "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "resized from 576x720 to 128x160" in proc.stderr
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (128, 160, 3)
    pngs = sorted((tmp_path / "res" / "dance_frames").glob("*.png"))
    assert [p.name for p in pngs] == ["frame_0.png", "frame_1.png", "frame_2.png"]
    frames = [np.asarray(Image.open(p)) for p in pngs]
    assert all(f.shape == (160, 128, 3) for f in frames)
    assert all(f.min() == 0 and f.max() == 255 for f in frames)  # reference min-max stretch is on by default
    assert not np.array_equal(frames[0], frames[1])  # the pose drives the output
    decoded = read_frames(out)
    assert decoded.shape == (3, 160, 128, 3)
    dist = [[np.abs(d.astype(int) - f.astype(int)).mean() for f in frames] for d in decoded]
    assert [int(np.argmin(row)) for row in dist] == [0, 1, 2], dist  # lossy H.264 of noise: check the order, not pixels
    assert (tmp_path / "res" / "dance.gif").is_file()
    side = json.loads((tmp_path / "res" / "dance.json").read_text())["settings"]
    assert side["frames"] == [0, 1, 2] and side["windows"]["1"] == [1, 0, 1, 2, 1]
    assert side["s1_image_guidance"] == 8 and side["s2_pose_guidance"] == 3 and side["model"]["epoch"] == "499"
    assert side["model"]["custom_vae"].endswith("vae_1499.pth") and side["minmax_stretch"] is True

    # the reference test.py spelling, in-process, frames 1..2 only: same pixels, reference file names
    code = main(
        ["animate", "--epoch", "499", "--folder", str(rel), "--pose_folder", str(poses), "--key_frame_path", str(key),
         "--s1", "8", "--s2", "3", "--n_steps", "1", "--output_dir", str(tmp_path / "results"),
         "--custom_vae", str(rel / "vae_1499.pth"), "--min_j", "1", "--max_j", "3", "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "results").glob("*.png")) == ["pred_#1.png", "pred_#2.png"]  # --min_j/--max_j slice
    for n in (1, 2):  # same windows and the same shared start noise as in the full run -> same pixels
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "results" / f"pred_#{n}.png")), frames[n])
    assert probe_video(tmp_path / "results" / "dreampose.mp4").num_frames == 2


def test_animate_frame_batch_gives_the_same_frames(tmp_path, tiny_dreampose_release, examples_dir, capsys):
    """--frame-batch K puts K frames in one UNet call; with PNDM (deterministic) the PNGs are unchanged."""
    rel = tiny_dreampose_release
    poses = write_synthetic_densepose(tmp_path / "poses", range(3))
    common = ["animate", "--image", str(examples_dir / "key_frame.png"), "--densepose", str(poses), "--model", str(rel),
              "--s1", "8", "--s2", "3", "--steps", "1", "--no-gif", "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "a" / "v.mp4")]) == 0, capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "b" / "v.mp4"), "--frame-batch", "3"]) == 0, capsys.readouterr().err
    for n in range(3):
        a = np.asarray(Image.open(tmp_path / "a" / "v_frames" / f"frame_{n}.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "b" / "v_frames" / f"frame_{n}.png")).astype(int)
        assert np.abs(a - b).max() <= 1, n
    assert json.loads((tmp_path / "b" / "v.json").read_text())["settings"]["frame_batch"] == 3


def _expect_error(args, capsys, pattern: str, out_dir: Path):
    code = main(["animate", *args, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("posevid animate: error:")]
    assert len(lines) == 1 and pattern in lines[0], err
    assert not out_dir.exists() or not any(p for p in out_dir.rglob("*") if p.is_file()), list(out_dir.rglob("*"))


def test_bad_inputs_give_one_line_errors_and_no_outputs(tmp_path, tiny_dreampose_release, examples_dir, capsys):
    rel = tiny_dreampose_release
    key = str(examples_dir / "key_frame.png")
    out_dir = tmp_path / "out"
    out = str(out_dir / "v.mp4")
    gappy = write_synthetic_densepose(tmp_path / "gappy", [0, 1, 3])
    _expect_error(["--image", key, "--densepose", str(gappy), "--model", str(rel), "--out", out], capsys, "have gaps", out_dir)
    poses = write_synthetic_densepose(tmp_path / "poses", range(2))
    missing_vae = str(rel / "vae_9.pth")
    _expect_error(
        ["--image", key, "--densepose", str(poses), "--model", str(rel), "--custom-vae", missing_vae, "--out", out],
        capsys, "custom VAE not found", out_dir,
    )  # fmt: skip
    # mismatched epochs: unet_epoch_499 present, adapter only for 498
    bad = tmp_path / "bad_release"
    shutil.copytree(rel, bad)
    (bad / "adapter_499.pth").rename(bad / "adapter_498.pth")
    _expect_error(
        ["--image", key, "--densepose", str(poses), "--model", str(bad), "--epoch", "499", "--out", out],
        capsys, "no matching adapter_499.pth", out_dir,
    )  # fmt: skip
    _expect_error(
        ["--image", key, "--densepose", str(poses), "--model", str(bad), "--epoch", "7", "--out", out], capsys, "unet_epoch_7", out_dir
    )
    _expect_error(
        ["--image", str(tmp_path / "nope.png"), "--densepose", str(poses), "--model", str(rel), "--out", out], capsys, "not found", out_dir
    )


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_rgba_and_grey_images_are_converted_with_a_note(tmp_path, tiny_dreampose_release, mode, capsys):
    img = Image.fromarray((np.random.default_rng(0).random((40, 32, 3)) * 255).astype(np.uint8)).convert(mode)
    img.save(tmp_path / "key.png")
    poses = write_synthetic_densepose(tmp_path / "poses", [0])
    out = tmp_path / "o.mp4"
    code = main(
        ["animate", "--image", str(tmp_path / "key.png"), "--densepose", str(poses), "--model", str(tiny_dreampose_release),
         "--steps", "1", "--out", str(out), "--no-gif", "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"reference image mode {mode} converted to RGB" in err
    assert probe_video(out).num_frames == 1 and not (tmp_path / "o.gif").exists()


@pytest.mark.parametrize("canvas", ["--densepose-images", "--densepose-size"])  # --densepose-size 36x45: width first, as written
def test_animate_from_a_densepose_dump(tmp_path, tiny_dreampose_release, examples_dir, fake_densepose_modules, capsys, canvas):
    import pickle

    import torch

    cls = fake_densepose_modules
    images = tmp_path / "frames"
    images.mkdir()
    entries = []
    for n in (3, 4):
        Image.new("RGB", (36, 45)).save(images / f"frame_{n}.png")
        box = torch.tensor([[4.6 + n, 5.2, 30.0, 40.0]])
        entries.append({"file_name": f"/elsewhere/frame_{n}.png", "pred_boxes_XYXY": box,
                        "pred_densepose": [cls(torch.ones(30, 20, dtype=torch.uint8), torch.rand(2, 30, 20))]})  # fmt: skip
    dump = tmp_path / "dump.pkl"
    dump.write_bytes(pickle.dumps(entries))
    value = str(images) if canvas == "--densepose-images" else "36x45"
    code = main(
        ["animate", "--image", str(examples_dir / "key_frame.png"), "--densepose", str(dump), canvas, value,
         "--densepose-out", str(tmp_path / "npy"), "--model", str(tiny_dreampose_release), "--steps", "1", "--out", str(tmp_path / "d.mp4"),
         "--no-gif", "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "npy").iterdir()) == ["frame_3_densepose.npy", "frame_4_densepose.npy"]
    assert np.load(tmp_path / "npy" / "frame_3_densepose.npy").shape == (2, 45, 36)
    assert probe_video(tmp_path / "d.mp4").num_frames == 2
    assert sorted(p.name for p in (tmp_path / "d_frames").iterdir()) == ["frame_3.png", "frame_4.png"]
