"""Extraction on real footage, agreement with MMPose, the `posevid pose` CLI, skeleton_video_for, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from posevid.cli import main
from posevid.errors import InputError, NoPersonError
from posevid.pose import KeypointSequence, extract_keypoints, extract_keypoints_from_frames, is_skeleton_video, skeleton_video_for
from posevid.pose.agreement import agreement
from posevid.video import iter_frames, probe_video, read_frames, write_video


def test_real_clip_detection_rate_and_layout(charades_cut_keypoints):
    seq = charades_cut_keypoints
    assert seq.format == "blazepose33" and seq.keypoints.shape == (60, 1, 33, 3)
    assert (seq.width, seq.height) == (406, 720) and seq.fps == pytest.approx(16.646, abs=0.01)
    assert seq.meta["detection_rate"] >= 0.95  # measured 1.0 on this cut
    assert seq.frame_indices.tolist() == list(range(60)) and seq.meta["smoothing"]["method"] == "zero-phase"
    xy = seq.keypoints[..., :2]
    assert (xy[..., 0] > 0).all() and (xy[..., 0] < 406).all() and (xy[..., 1] < 720).all()


def test_agreement_with_mmpose_renders(charades_cut_keypoints, charades_cut_mmpose):
    """PCK of our COCO-17 joints vs joints recovered from team13's MMPose (HRNet) renders of the same frames.

    Measured on this cut: PCK@0.1 torso 0.52, PCK@0.2 torso 0.83 (docs/pose.md has all four clips).
    """
    ours = charades_cut_keypoints.to_format("coco17").keypoints[:45, 0]
    from posevid.pose.agreement import recover_mmpose_joints

    renders = [recover_mmpose_joints(f) for f in iter_frames(charades_cut_mmpose)]
    at01, at02 = agreement(ours, renders, alpha=0.1), agreement(ours, renders, alpha=0.2)
    assert at01.frames == 45 and at01.skipped_frames == 0 and at01.evaluated > 500
    assert at01.pck >= 0.40 and at02.pck >= 0.70
    shifted = ours.copy()
    shifted[..., 0] += 60  # a torso-sized shift must be caught
    assert agreement(shifted, renders, alpha=0.1).pck < 0.1


def test_stride_fps_max_frames_and_frames_api(charades_cut):
    seq = extract_keypoints(charades_cut, stride=3, max_frames=6, smoothing=False, progress=False)
    assert len(seq) == 6 and seq.frame_indices.tolist() == [0, 3, 6, 9, 12, 15]
    assert seq.fps == pytest.approx(16.646 / 3, abs=0.01) and seq.meta["smoothing"] is None
    by_fps = extract_keypoints(charades_cut, target_fps=8, max_frames=2, progress=False, keypoint_format="coco17")
    assert by_fps.meta["stride"] == 2 and by_fps.format == "coco17"
    frames = list(iter_frames(charades_cut, max_frames=4))
    from_frames = extract_keypoints_from_frames(frames, 406, 720, fps=16.646, keypoint_format="openpose18")
    assert from_frames.keypoints.shape == (4, 1, 18, 3) and from_frames.meta["detected_frames"] == 4
    with pytest.raises(InputError, match="frame of size"):
        extract_keypoints_from_frames(frames, 100, 100)


@pytest.fixture(scope="module")
def pose_cli_out(tmp_path_factory, charades_cut):
    """One real end-to-end run of the installed CLI in a subprocess."""
    out = tmp_path_factory.mktemp("cli") / "pose"
    cmd = [
        sys.executable,
        "-m",
        "posevid",
        "pose",
        str(charades_cut),
        "--out",
        str(out),
        "--size",
        "256x256",
        "--npz",
        "--quiet",
        "--max-frames",
        "24",
        "--overlay",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_cli_end_to_end_outputs(pose_cli_out):
    out, proc = pose_cli_out
    assert sorted(p.name for p in out.iterdir()) == ["keypoints.json", "keypoints.npz", "overlay.mp4", "pose.json", "skeleton.mp4"]
    seq = KeypointSequence.load(out / "keypoints.json")
    assert seq.format == "coco17" and len(seq) == 24 and (seq.width, seq.height) == (256, 256)
    np.testing.assert_allclose(KeypointSequence.load(out / "keypoints.npz").keypoints, seq.keypoints, atol=0.006)
    for name in ("skeleton.mp4", "overlay.mp4"):
        info = probe_video(out / name)
        assert (info.width, info.height, info.num_frames) == (256, 256, 24) and info.fps == pytest.approx(16.646, abs=0.01)
    assert is_skeleton_video(out / "skeleton.mp4") and not is_skeleton_video(out / "overlay.mp4")
    sidecar = json.loads((out / "pose.json").read_text())
    assert sidecar["kind"] == "pose" and sidecar["settings"]["detection_rate"] >= 0.95
    assert sidecar["settings"]["empty_frames"] == 0 and sidecar["settings"]["style"] == "fyp"
    # the skeleton drawn on the overlay sits where the person is: overlay pixels differ from the raw video there
    skel = read_frames(out / "skeleton.mp4", indices=[12])[0]
    assert (skel.max(-1) > 100).mean() > 0.01
    assert "Traceback" not in proc.stderr and "W0000" not in proc.stderr


def test_cli_retarget_to_keypoints_file(pose_cli_out, charades_cut, tmp_path, capsys):
    from posevid.pose.retargeting import bone_lengths

    out, _ = pose_cli_out
    ref = KeypointSequence.load(out / "keypoints.json")
    ref.keypoints[..., :2] = ref.keypoints[..., :2] * 0.5 + 20  # a smaller body at another place
    ref.width, ref.height = 300, 200
    ref.save(tmp_path / "ref.json")
    args = ["pose", str(charades_cut), "--out", str(tmp_path / "r"), "--quiet", "--retarget-to", str(tmp_path / "ref.json")]
    assert main([*args, "--no-overlay", "--max-frames", "3", "--format", "openpose18"]) == 0
    got = KeypointSequence.load(tmp_path / "r" / "keypoints.json")
    assert got.format == "openpose18" and (got.width, got.height) == (300, 200) and len(got) == 3
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["keypoints.json", "pose.json", "skeleton.mp4"]
    want, have = bone_lengths(ref.keypoints[0, 0]), bone_lengths(got.to_format("coco17").keypoints[0, 0])
    common = set(want) & set(have)
    assert len(common) >= 10 and all(abs(want[b] - have[b]) < 0.05 for b in common)
    # a skeleton video has no person for mediapipe: the command must refuse cleanly and write nothing
    code = main(["pose", str(out / "skeleton.mp4"), "--out", str(tmp_path / "s"), "--quiet", "--max-frames", "2"])
    assert code == 2 and "no person found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _black_clip(path, n=6):
    write_video(path, [np.zeros((64, 64, 3), np.uint8)] * n, fps=8)
    return path


@pytest.mark.parametrize("case", ["corrupt", "empty", "image", "nobody", "missing"])
def test_cli_bad_inputs_one_line_error_no_output(case, tmp_path, capsys, examples_dir):
    video = tmp_path / "in.mp4"
    if case == "corrupt":
        video.write_bytes(os.urandom(2048))
    elif case == "empty":
        video.write_bytes(b"")
    elif case == "image":
        video = examples_dir / "key_frame.png"
    elif case == "nobody":
        _black_clip(video)
    out = tmp_path / "out"
    code = main(["pose", str(video), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("posevid pose: error: ") and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_empty_frames_are_filled_and_counted(charades_cut, tmp_path):
    frames = list(iter_frames(charades_cut, max_frames=8))
    frames[3] = np.zeros_like(frames[3])
    frames[4] = np.zeros_like(frames[4])
    seq = extract_keypoints_from_frames(frames, 406, 720, fps=16.0, estimator_options={"static_image_mode": True})
    assert seq.meta["empty_frames"] == 2 and seq.meta["filled_frames"] == 2
    assert seq.present().all()  # interpolated
    held = extract_keypoints_from_frames(frames, 406, 720, fill="none", estimator_options={"static_image_mode": True})
    assert held.present().tolist() == [True] * 3 + [False] * 2 + [True] * 3
    with pytest.raises(NoPersonError, match="no person found in any of the 2 frames"):
        extract_keypoints_from_frames(frames[3:5], 406, 720)


def test_skeleton_video_for(tmp_path, monkeypatch, examples_dir, charades_cut_keypoints, charades_cut, charades_cut_mmpose):
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    skeleton = examples_dir / "dance_skeleton.mp4"
    assert is_skeleton_video(skeleton) and skeleton_video_for(skeleton) == skeleton
    assert not is_skeleton_video(charades_cut)
    from posevid.pose import skeleton_style_of

    assert skeleton_style_of(skeleton) == "fyp" and skeleton_style_of(charades_cut_mmpose) == "mmpose"
    with pytest.warns(UserWarning, match="MMPose-1.x style"):
        assert skeleton_video_for(charades_cut_mmpose) == charades_cut_mmpose  # used as is, with a warning
    short = KeypointSequence(charades_cut_keypoints.keypoints[:10], "blazepose33", 406, 720, 16.0)
    kp_file = short.save(tmp_path / "k.npz")
    rendered = skeleton_video_for(kp_file, progress=False)
    assert rendered.parent == tmp_path / "cache" / "pose" and is_skeleton_video(rendered)
    assert probe_video(rendered).num_frames == 10
    mtime = rendered.stat().st_mtime_ns
    assert skeleton_video_for(kp_file) == rendered and rendered.stat().st_mtime_ns == mtime  # cached
    assert skeleton_video_for(kp_file, style="mmpose") != rendered
    raw = write_video(tmp_path / "raw.mp4", iter_frames(charades_cut, max_frames=6), fps=16)
    calls = []
    from_raw = skeleton_video_for(raw, progress=False, size=(128, 128), on_extract=lambda: calls.append("extract"))
    assert is_skeleton_video(from_raw) and probe_video(from_raw).width == 128
    assert skeleton_video_for(raw, size=(128, 128), on_extract=lambda: calls.append("extract")) == from_raw  # cached
    assert skeleton_video_for(skeleton, on_extract=lambda: calls.append("extract")) == skeleton
    assert calls == ["extract"]  # once: before the one real extraction, not on a cache hit or a skeleton video
    with pytest.raises(NoPersonError):
        skeleton_video_for(_black_clip(tmp_path / "black.mp4"), progress=False)
    with pytest.raises(InputError, match="not found"):
        skeleton_video_for(tmp_path / "nothing.mp4")


def test_generate_skeleton_is_the_posevid_pose_skeleton(tmp_path, monkeypatch, charades_cut):
    """``generate --pose RAW`` (skeleton_video_for) draws what ``posevid pose`` draws by default (issue 14: smoothing,
    limb rule, joint correction), not the earlier One-Euro namesake-joint skeleton."""
    from posevid.pose.chamfer import video_chamfer
    from posevid.pose.render import render_sequence

    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    raw = write_video(tmp_path / "raw.mp4", iter_frames(charades_cut, max_frames=24), fps=16)
    assert main(["pose", str(raw), "--out", str(tmp_path / "pose"), "--quiet"]) == 0
    from_pose = read_frames(tmp_path / "pose" / "skeleton.mp4")
    from_generate = read_frames(skeleton_video_for(raw, progress=False))
    same = video_chamfer(from_generate, from_pose)
    old_seq = extract_keypoints(raw, smoothing="one-euro", progress=False)  # the earlier drawing: One-Euro, 0.3, no correction
    old = video_chamfer(render_sequence(old_seq, style="fyp"), from_pose)
    assert same.compared == old.compared == 24
    # same renders up to encoding noise (measured 0.009 px); the earlier drawing is farther (measured 0.36 px)
    assert same.median_px < 0.05 and old.median_px > 0.2, (same.summary(), old.summary())


def test_library_default_smoothing_is_posevid_pose_default(charades_cut, tmp_path):
    """Issue 20: ``extract_keypoints`` smoothed with One-Euro by default while ``posevid pose`` used zero-phase. One default
    now (``posevid.pose.options.DEFAULT_SMOOTH``): the library's keypoints are the command's raw landmarks, bit for bit."""
    import inspect

    from posevid.pose.extract import smoothing_settings
    from posevid.pose.options import options_from_flags
    from posevid.tasks.pose import PoseSettings

    command = smoothing_settings(options_from_flags(smooth=PoseSettings().smooth).smoothing)
    for fn in (extract_keypoints, extract_keypoints_from_frames):
        assert smoothing_settings(inspect.signature(fn).parameters["smoothing"].default) == command
    assert smoothing_settings(True) == command and command["method"] == "zero-phase"  # True: smoothing on, the default kind
    lib = extract_keypoints(charades_cut, max_frames=20, progress=False)
    # --format blazepose33 keeps the uncorrected landmarks, as the library gives them; --npz keeps the exact floats
    args = ["pose", str(charades_cut), "--out", str(tmp_path), "--quiet", "--max-frames", "20", "--format", "blazepose33", "--npz"]
    assert main(args) == 0
    cli = KeypointSequence.load(tmp_path / "keypoints.npz")
    assert cli.meta["smoothing"] == lib.meta["smoothing"] == command
    np.testing.assert_array_equal(cli.keypoints, lib.keypoints)


def test_cli_warns_with_the_count_of_empty_frames(charades_cut, tmp_path, capsys):
    frames = list(iter_frames(charades_cut, max_frames=8))
    frames[4] = frames[5] = np.zeros_like(frames[4])
    clip = write_video(tmp_path / "gap.mp4", frames, fps=16)
    assert main(["pose", str(clip), "--out", str(tmp_path / "o"), "--quiet", "--no-overlay"]) == 0
    err = capsys.readouterr().err
    assert "warning: no person found in 2 of 8 frames (filled by interpolate)" in err
    settings = json.loads((tmp_path / "o" / "pose.json").read_text())["settings"]
    assert settings["empty_frames"] == 2 and settings["filled_frames"] == 2


def test_reference_pose_from_image(examples_dir, tmp_path):
    from PIL import Image

    from posevid.pose import reference_pose

    kp, size = reference_pose(examples_dir / "key_frame.png")  # the DreamPose demo image: a standing woman
    assert size == (576, 720) and kp.shape == (17, 3) and (kp[:, 2] > 0.5).all()
    head, shoulders, hips, ankles = kp[0, 1], kp[[5, 6], 1].mean(), kp[[11, 12], 1].mean(), kp[[15, 16], 1].mean()
    assert head < shoulders < hips < ankles and ankles > 0.7 * 720
    assert kp[5, 0] > kp[6, 0]  # facing the camera: her left shoulder is on the image's right
    Image.new("RGB", (64, 64)).save(tmp_path / "black.png")
    with pytest.raises(NoPersonError, match="no person found in the reference image"):
        reference_pose(tmp_path / "black.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="cannot read the reference image"):
        reference_pose(tmp_path / "broken.png")


def test_prefetch_keeps_order_raises_and_stops():
    import threading

    from posevid.pose.extract import prefetch

    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise InputError("cannot decode video x.mp4")

    it = prefetch(broken())
    assert next(it) == 1
    with pytest.raises(InputError, match="cannot decode"):
        next(it)
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # the consumer stops early: the producer stops and closes its source
    assert closed.wait(5)
