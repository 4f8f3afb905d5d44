"""Outputs of the use-case layer (issue 12 item 8, issue 13): real output folder recorded, every written file
listed, a re-run replaces the whole output set, bad input fails before heavy imports, ``animate`` has a default --out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from plugins.dreampose import write_synthetic_densepose
from posevid.cli import main


def _animate_args(rel, poses, key):
    return ["animate", "--image", str(key), "--densepose", str(poses), "--model", str(rel), "--steps", "1", "--quiet"]


def test_animate_rerun_replaces_the_whole_output_set_and_lists_every_file(tmp_path, tiny_dreampose_release, examples_dir, capsys):
    poses = write_synthetic_densepose(tmp_path / "poses", range(3))
    out = tmp_path / "res" / "v.mp4"
    args = _animate_args(tiny_dreampose_release, poses, examples_dir / "key_frame.png")
    assert main([*args, "--out", str(out)]) == 0
    closing = capsys.readouterr().out
    for name in ("v.mp4", "v.gif", "v.json"):
        assert name in closing, closing  # the closing line names every file written
    assert sorted(p.name for p in (tmp_path / "res" / "v_frames").iterdir()) == ["frame_0.png", "frame_1.png", "frame_2.png"]
    sidecar = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert str(out.with_suffix(".gif")) in sidecar["files"]

    assert main([*args, "--out", str(out), "--no-gif", "--frames", "0:2"]) == 0  # fewer frames, no gif
    assert not out.with_suffix(".gif").exists()  # the earlier run's gif is gone
    assert sorted(p.name for p in (tmp_path / "res" / "v_frames").iterdir()) == ["frame_0.png", "frame_1.png"]
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["v.json", "v.mp4", "v_frames"]  # no staging left


def test_animate_without_out_picks_a_default_like_generate(tmp_path, tiny_dreampose_release, examples_dir, monkeypatch, capsys):
    poses = write_synthetic_densepose(tmp_path / "poses", range(2))
    monkeypatch.chdir(tmp_path)
    assert main(_animate_args(tiny_dreampose_release, poses, examples_dir / "key_frame.png")) == 0
    assert (tmp_path / "outputs" / "key_frame.mp4").is_file() and (tmp_path / "outputs" / "key_frame.json").is_file()


def test_animate_input_errors_come_before_heavy_imports(tmp_path):
    code = (
        "import sys\nfrom posevid.cli import main\n"
        f"rc = main(['animate', '--image', {str(tmp_path / 'nope.png')!r}, '--densepose', 'x', '--model', 'm'])\n"
        "assert rc == 2, rc\nheavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "reference image not found" in proc.stderr


def test_generate_sidecar_records_the_real_output_folder(tmp_path, tiny_fyp_release, examples_dir):
    out = tmp_path / "elsewhere" / "v.mp4"
    args = ["generate", "--model", str(tiny_fyp_release), "--pose", str(examples_dir / "dance_skeleton.mp4"), "--prompt", "x",
            "--frames", "2", "--stride", "2", "--height", "64", "--width", "64", "--steps", "1", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(out), "--gif"]) == 0
    settings = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert settings["output_dir"] == str(out.parent)
    assert main([*args, "--out", str(out)]) == 0  # again without --gif: the old gif goes
    assert sorted(p.name for p in out.parent.iterdir()) == ["v.json", "v.mp4"]


def test_animate_driving_video_errors_come_before_heavy_imports(tmp_path):
    image = tmp_path / "k.png"
    image.write_bytes(b"not read before the checks")
    code = (
        "import sys\nfrom posevid.cli import main\n"
        f"both = main(['animate', '--image', {str(image)!r}, '--densepose', {str(tmp_path)!r}, '--driving-video', 'v.mp4',"
        " '--model', 'm'])\n"
        f"missing = main(['animate', '--image', {str(image)!r}, '--driving-video', {str(tmp_path / 'nope.mp4')!r}, '--model', 'm'])\n"
        "assert both == missing == 2, (both, missing)\nheavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "either --densepose or --driving-video" in proc.stderr and "driving video not found" in proc.stderr


def test_pose_rerun_replaces_the_whole_set_and_a_failed_run_keeps_the_previous_one(tmp_path, fixtures_dir, monkeypatch):
    import pytest

    import posevid.pose.outputs
    from posevid.tasks.pose import PoseSettings, pose

    video, out = fixtures_dir / "pose" / "charades_3IPI3_cut.mp4", tmp_path / "out"
    settings = dict(video=str(video), out=str(out), max_frames=6, workers=1, quiet=True)
    pose(PoseSettings(**settings, overlay=True, npz=True))
    names = {p.name for p in out.iterdir()}
    assert names == {"keypoints.json", "keypoints.npz", "skeleton.mp4", "overlay.mp4", "pose.json"}
    assert sorted(json.loads((out / "pose.json").read_text())["settings"]["files"]) == sorted(str(out / n) for n in names)

    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(posevid.pose.outputs, "write_pose_videos", broken)
        with pytest.raises(RuntimeError):
            pose(PoseSettings(**settings))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing of the failed run, nothing lost
    assert not list(tmp_path.rglob(".posevid-stage-*"))

    pose(PoseSettings(**settings))  # no overlay, no npz: the previous run's are removed with the set
    assert {p.name for p in out.iterdir()} == {"keypoints.json", "skeleton.mp4", "pose.json"}
