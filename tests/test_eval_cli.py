"""``posevid eval`` from the command line: outputs, metric selection and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from posevid.cli import main
from posevid.eval.runner import EvalConfig, resolve_metrics


def test_cli_subprocess_paired_report_markdown_and_plot(eval_videos, tmp_path):
    out, md, plot = tmp_path / "report.json", tmp_path / "report.md", tmp_path / "frames.png"
    cmd = [sys.executable, "-m", "posevid", "eval", str(eval_videos["clean"]), str(eval_videos["degraded"]),
           "--reference", str(eval_videos["reference"]), "--metrics", "psnr,ssim,l1,psnr_uint8_overflow_buggy", "--max-frames", "8",
           "--out", str(out), "--markdown", str(md), "--plot", str(plot), "--no-progress"]  # fmt: skip
    del cmd[5]  # one generated video: clean/clip.mp4 and degraded/clip.mp4 share a name (refused, see below)
    cmd[4] = str(eval_videos["degraded"] / "clip.mp4")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    video = report["videos"][0]
    assert video["name"] == "clip" and video["frames"] == 8 and len(video["per_frame"]["psnr"]) == 8
    m = video["metrics"]
    assert 10 < m["psnr"] < 30 and m["psnr_uint8_overflow_buggy"] > m["psnr"] + 5 and 0 < m["ssim"] < 0.9 and m["l1"] > 0.01
    assert report["aggregate"]["psnr"] == pytest.approx(m["psnr"])
    table = md.read_text()
    assert "| clip | 8 |" in table and "psnr ↑" in table and "**all**" in table
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "psnr" in proc.stdout  # the table is printed too


def _run(capsys, *argv):
    code = main(["eval", *map(str, argv), "--no-progress"])
    return code, capsys.readouterr().err


def test_missing_weights_name_the_flag(eval_videos, capsys):
    clip = eval_videos["clean"] / "clip.mp4"
    for metric, flag in (("lpips", "--lpips-weights"), ("fid", "--inception-weights"), ("fvd", "--i3d-weights")):
        code, err = _run(capsys, clip, "--reference", clip, "--metrics", metric)
        assert code == 2 and flag in err and err.count("\n") == 1, err
    code, err = _run(capsys, clip, "--metrics", "psnr")
    assert code == 2 and "--reference" in err
    code, err = _run(capsys, clip, "--metrics", "pose")
    assert code == 2 and "--pose" in err
    code, err = _run(capsys, clip, "--metrics", "clip_text_alignment")
    assert code == 2 and "--prompt" in err
    code, err = _run(capsys, clip, "--metrics", "nonsense")
    assert code == 2 and "unknown metric 'nonsense'" in err


def test_offline_default_clip_is_a_one_line_error(eval_videos, capsys):
    code, err = _run(capsys, eval_videos["clean"] / "clip.mp4", "--metrics", "clip_consistency")
    assert code == 2 and "openai/clip-vit-base-patch32" in err and "--clip" in err and err.count("\n") == 1, err


def test_user_mistakes_are_one_line_errors(eval_videos, tmp_path, capsys):
    clip = eval_videos["clean"] / "clip.mp4"
    code, err = _run(capsys, eval_videos["clean"], eval_videos["degraded"], "--reference", eval_videos["reference"])
    assert code == 2 and "share the name 'clip'" in err and err.count("\n") == 1
    code, err = _run(capsys, tmp_path / "nope.mp4", "--reference", clip)
    assert code == 2 and "not found" in err
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "a.mp4").write_bytes(clip.read_bytes())
    (tmp_path / "gen" / "b.mp4").write_bytes(clip.read_bytes())
    code, err = _run(capsys, tmp_path / "gen", "--reference", eval_videos["reference"])
    assert code == 2 and "no reference video named 'a'" in err and "file name" in err
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    code, err = _run(capsys, tmp_path / "bad.mp4", "--reference", clip)
    assert code == 2 and "cannot read video" in err
    code, err = _run(capsys, clip, "--reference", clip, "--inception-weights", tmp_path / "none.pth", "--metrics", "fid")
    assert code == 2 and "--inception-weights" in err
    code, err = _run(capsys, clip, "--reference", clip, "--fvd-clip-length", "0")
    assert code == 2 and "--fvd-clip-length" in err


def test_metric_selection_auto_and_all():
    paired = EvalConfig(videos=["x"], reference=["y"], inception_weights="inc.pth")
    assert resolve_metrics(paired) == ["l1", "psnr", "ssim", "fid"]
    unpaired = EvalConfig(videos=["x"], prompt="a dancer", pose="kp.json")
    assert resolve_metrics(unpaired) == ["pose", "clip_consistency", "clip_text_alignment"]
    everything = EvalConfig(videos=["x"], reference=["y"], metrics="all")
    chosen = resolve_metrics(everything)
    assert chosen == ["clip_consistency", "l1", "psnr", "psnr_uint8_overflow_buggy", "ssim"]
    assert any("lpips skipped" in n and "--lpips-weights" in n for n in everything.notes)
    assert any("pose skipped" in n for n in everything.notes)
    assert resolve_metrics(EvalConfig(videos=["x"], reference=["y"], metrics="PSNR, ssim,psnr")) == ["psnr", "ssim"]


def test_markdown_without_out_gets_a_settings_sidecar(eval_videos, tmp_path, capsys):
    clip = eval_videos["clean"] / "clip.mp4"
    md = tmp_path / "table.md"
    code, err = _run(capsys, clip, "--reference", clip, "--metrics", "psnr", "--max-frames", "2", "--markdown", md)
    assert code == 0, err
    side = json.loads((tmp_path / "table.json").read_text())
    assert side["kind"] == "eval" and side["settings"]["metrics"] == "psnr" and side["settings"]["aggregate"]["psnr"] == 100.0
    assert "| clip | 2 | 100.00 |" in md.read_text()


def test_pose_frame_mapping_errors(eval_videos, eval_keypoints, capsys):
    clip = eval_videos["clean"] / "clip.mp4"
    code, err = _run(capsys, clip, "--metrics", "pose", "--pose", eval_keypoints, "--pose-start", "30", "--max-frames", "4")
    assert code == 2 and "--pose-start/--pose-stride" in err and "32 frames" in err, err
    code, err = _run(capsys, clip, "--metrics", "pose", "--pose", eval_keypoints, "--pose-start", "-1")
    assert code == 2 and "--pose-start" in err
    code, err = _run(capsys, clip, "--metrics", "pose", "--pose", eval_videos["clean"])
    assert code == 2 and "no keypoints for 'clip'" in err


def test_frame_folders_pair_with_videos_and_sizes_are_matched(eval_videos, tmp_path):
    import cv2
    from PIL import Image

    from posevid.eval import evaluate

    frames = eval_videos["frames"][:5]
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(cv2.resize(f, (72, 128), interpolation=cv2.INTER_AREA)).save(folder / f"{i:04d}.png")
    report = evaluate(
        EvalConfig(videos=[str(folder)], reference=[str(eval_videos["reference"])], metrics="psnr,ssim", max_frames=5, quiet=True)
    )
    video = report["videos"][0]
    assert video["name"] == "clip" and video["frames"] == 5 and video["size"] == [72, 128]
    assert any("reference resized from 144x256 to 72x128" in n for n in video["notes"])
    assert video["metrics"]["psnr"] == 100.0  # the same decoded frames, resized with the same filter: identical


def test_vision_only_clip_folder_is_one_line_without_the_load_report(eval_videos, tmp_path, capfd):
    """A CLIPVisionModel folder (e.g. DreamPose's image encoder) used to print transformers' ~50-line load report first."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    CLIPVisionModel(config).save_pretrained(tmp_path / "vision_only")
    capfd.readouterr()
    code = main(["eval", str(eval_videos["clean"] / "clip.mp4"), "--clip", str(tmp_path / "vision_only"), "--prompt", "a man",
                 "--metrics", "clip_text_alignment", "--no-progress"])  # fmt: skip
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "clip_vision_model, not a full CLIP model" in err and "--clip" in err


def test_full_clip_loads_without_library_bars_or_reports(eval_videos, eval_weights, tmp_path, capfd):
    capfd.readouterr()
    code = main(["eval", str(eval_videos["clean"] / "clip.mp4"), "--clip", str(eval_weights["clip"]), "--prompt", "a man",
                 "--metrics", "clip_consistency", "--no-progress", "--out", str(tmp_path / "r.json")])  # fmt: skip
    captured = capfd.readouterr()
    assert code == 0, captured.err
    for noise in ("Loading weights", "LOAD REPORT", "[transformers]"):
        assert noise not in captured.err, captured.err
