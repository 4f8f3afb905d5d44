"""``posevid generate`` end to end, as a user runs it: a subprocess on a tiny model and a real skeleton video.

Every bad input must end in exactly one ``posevid generate: error: ...`` line, a non-zero exit code and
no output file.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posevid.video import probe_video, read_frames

SMALL = ["--frames", "4", "--stride", "2", "--height", "64", "--width", "64", "--steps", "2"]


@pytest.fixture(scope="module")
def skeleton(examples_dir) -> Path:
    return examples_dir / "dance_skeleton.mp4"  # official FYP skeleton example, 256x256, 137 frames


def run_generate(*args, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "posevid", "generate", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("posevid generate: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def generate_in_process(capfd, *args) -> subprocess.CompletedProcess:
    """``posevid generate`` through the console-script entry point in this process (fds captured).

    Same code path as the subprocess runs, without paying for another torch import; used where the
    subprocess itself is not what is being tested."""
    from posevid.cli import main

    capfd.readouterr()
    code = main(["generate", *map(str, args)])
    captured = capfd.readouterr()
    return subprocess.CompletedProcess([], code, captured.out, captured.err)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------------------------------- success
def test_generate_writes_mp4_gif_frames_and_sidecar(tiny_fyp_release, skeleton, tmp_path):
    out = tmp_path / "out" / "dance.mp4"
    proc = run_generate(
        "--model", tiny_fyp_release, "--prompt", "a robot dancing", "--pose", skeleton, "--out", out,
        "--gif", "--frames-dir", tmp_path / "frames", "--seed", "7", "--fps", "10", *SMALL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    info = probe_video(out)
    assert (info.width, info.height) == (64, 64)
    frames = read_frames(out)
    assert frames.shape == (4, 64, 64, 3)
    assert frames.std() > 1  # an actual picture, not a constant frame
    gif = out.with_suffix(".gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.size == (64, 64) and im.n_frames == 4
    assert listing(tmp_path / "frames") == [f"dance_{t:04d}.png" for t in range(4)]
    meta = json.loads(out.with_suffix(".json").read_text())
    s = meta["settings"]
    assert meta["kind"] == "generate" and meta["output"] == "dance.mp4"
    assert s["prompt"] == "a robot dancing" and s["seed"] == 7 and s["steps"] == 2 and s["video_length"] == 4 and s["stride"] == 2
    assert (s["height"], s["width"], s["guidance"], s["scheduler"], s["fps"]) == (64, 64, 12.5, "ddim", 10.0)
    assert s["model"] == str(tiny_fyp_release) and s["pose"] == str(skeleton)
    assert s["outputs"][:2] == ["dance.mp4", "dance.gif"] and len(s["outputs"]) == 6
    assert "torch" in meta["environment"] and "diffusers" in meta["environment"]
    ckpts = tiny_fyp_release / "checkpoints"
    assert s["weights_read"][0] == str(ckpts / "followyourpose_checkpoint-1000" / "pytorch_model.bin") and len(s["weights_read"]) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["dance.gif", "dance.json", "dance.mp4"]  # no temp files left


def test_side_by_side_gif_and_numbered_outputs(tiny_fyp_release, skeleton, tmp_path, capfd):
    out = tmp_path / "sbs.gif"
    proc = generate_in_process(
        capfd,
        "--model", tiny_fyp_release, "--prompt", "a dancer", "--pose", skeleton, "--out", out,
        "--side-by-side", "--num-videos-per-prompt", "2", "--guidance", "1", *SMALL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sbs-0.gif", "sbs-0.json", "sbs-1.gif", "sbs-1.json"]
    from PIL import Image

    with Image.open(tmp_path / "sbs-0.gif") as im:
        assert im.size == (128, 64) and im.n_frames == 4  # skeleton | result: width doubled
        im.seek(0)
        first = im.convert("RGB")
    import numpy as np

    left = np.asarray(first)[:, :64]
    assert (left.max(axis=2) < 30).mean() > 0.5  # the skeleton half is mostly black background
    meta = json.loads((tmp_path / "sbs-1.json").read_text())["settings"]
    assert meta["index"] == 1 and meta["side_by_side"] is True and meta["num_videos_per_prompt"] == 2


def test_reference_config_and_skeleton_path_spelling(tiny_fyp_release, skeleton, tmp_path, capfd):
    ckpt = tiny_fyp_release / "checkpoints"
    config = tmp_path / "pose_sample.yaml"
    config.write_text(
        f"""pretrained_model_path: "{ckpt / "stable-diffusion-v1-4"}"
output_dir: "{tmp_path / "outputs"}"
validation_data:
  prompts:
    - "Iron man on the beach"
    - "Stormtrooper on the sea"
  video_length: 3
  width: 64
  height: 64
  num_inference_steps: 1
  guidance_scale: 12.5
  use_inv_latent: False
  num_inv_steps: 50
  dataset_set: "val"
train_batch_size: 1
validation_steps: 100
resume_from_checkpoint: "{ckpt / "followyourpose_checkpoint-1000"}"
seed: 33
mixed_precision: 'no'
gradient_checkpointing: False
enable_xformers_memory_efficient_attention: True
some_fork_option: 3
"""
    )
    proc = generate_in_process(capfd, "--config", config, "--skeleton_path", skeleton, "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "unknown key 'some_fork_option' ignored" in proc.stderr
    outs = tmp_path / "outputs"
    assert sorted(p.name for p in outs.iterdir()) == [
        "iron_man_on_the_beach.json", "iron_man_on_the_beach.mp4", "stormtrooper_on_the_sea.json", "stormtrooper_on_the_sea.mp4",
    ]  # fmt: skip
    meta = json.loads((outs / "stormtrooper_on_the_sea.json").read_text())["settings"]
    assert meta["prompt"] == "Stormtrooper on the sea" and meta["steps"] == 2 and meta["seed"] == 33  # flag overrides config
    assert "stable-diffusion-v1-4" in meta["model"] and "followyourpose_checkpoint-1000" in meta["model"]
    assert read_frames(outs / "iron_man_on_the_beach.mp4").shape == (3, 64, 64, 3)


@pytest.mark.parametrize("extra", [[], ["--frames", "8", "--window", "4", "--overlap", "2"]], ids=["plain", "streamed"])
def test_the_skeleton_video_is_opened_twice(tiny_fyp_release, skeleton, tmp_path, capfd, monkeypatch, extra):
    """Classify + probe in one open, then the pose read; the probe goes along (it was 5 opens before issue 13's follow-up:
    skeleton check, style check, length probe, the pipeline's probe, the read)."""
    import av

    real_open, opened = av.open, []

    def counting_open(file, *args, **kwargs):
        if str(file) == str(skeleton):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    proc = generate_in_process(capfd, "--model", tiny_fyp_release, "--prompt", "x", "--pose", skeleton, "--out", tmp_path / "x.mp4",
                               "--quiet", *SMALL, *extra)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(opened) == 2
    assert json.loads((tmp_path / "x.json").read_text())["settings"]["skeleton_video"] == str(skeleton)


def test_probe_and_sample_is_probe_video_plus_iter_frames(skeleton):
    from posevid.video import iter_frames, probe_and_sample

    info, frames = probe_and_sample(skeleton, [3, 0, 9, 500])
    assert info == probe_video(skeleton)
    expected = list(iter_frames(skeleton, indices=[0, 3, 9, 500]))
    assert len(frames) == 3 and all((a == b).all() for a, b in zip(frames, expected, strict=True))
    info, frames = probe_and_sample(skeleton, [5])  # frame 0 is decoded for the probe, not returned
    assert info == probe_video(skeleton) and len(frames) == 1 and (frames[0] == next(iter_frames(skeleton, indices=[5]))).all()


def test_shipped_config_reads_without_warnings(examples_dir):
    import warnings

    from posevid.tasks.fyp_config import read_sample_config

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = read_sample_config(examples_dir.parent / "configs" / "pose_sample.yaml")
    assert cfg["prompts"][0] == "Iron man on the beach" and cfg["video_length"] == 24 and cfg["stride"] == 5
    assert cfg["steps"] == 50 and cfg["guidance"] == 12.5 and cfg["seed"] == 33 and cfg["dtype"] == "fp32"
    assert Path(cfg["pretrained_model_path"]).name == "stable-diffusion-v1-4"
    assert Path(cfg["resume_from_checkpoint"]).name == "followyourpose_checkpoint-1000"
    assert (cfg["video_length"] - 1) * cfg["stride"] + 1 <= probe_video(examples_dir / "dance_skeleton.mp4").num_frames


# ------------------------------------------------------------------------------------------- bad input
def _copy_release(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", ["pose file not found"]),
        ("empty", ["empty (0 bytes)"]),
        ("text_mp4", ["not_a_video.mp4"]),
        ("size", ["multiples of 64", "100x64"]),
        ("num_videos", ["--num-videos-per-prompt must be an integer >= 1"]),
        ("too_short", ["137 frame(s)", "maximum video_length at stride 5 is 28", "maximum stride for 40 frames is 3"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_fyp_release, skeleton, tmp_path, case, words):
    pose = {"missing": tmp_path / "nope.mp4", "empty": tmp_path / "empty.mp4", "text_mp4": tmp_path / "not_a_video.mp4"}.get(case, skeleton)
    if case == "empty":
        pose.touch()
    if case == "text_mp4":
        pose.write_text("this is not a video\n")
    extra = {
        "size": ["--height", "100"],
        "num_videos": ["--num-videos-per-prompt", "0"],
        "too_short": ["--frames", "40", "--stride", "5"],
    }.get(case, [])
    out_dir = tmp_path / "out"
    proc = run_generate("--model", tiny_fyp_release, "--prompt", "x", "--pose", pose, "--out", out_dir / "x.mp4", *SMALL, *extra)
    assert_one_line_error(proc, *words)
    assert not out_dir.exists() or listing(out_dir) == []


def _break_checkpoint(release: Path, how: str) -> None:
    import torch

    ckpt = release / "checkpoints" / "followyourpose_checkpoint-1000"
    files = sorted(p for p in ckpt.iterdir() if p.suffix in (".bin", ".safetensors"))
    assert files, f"no weight file in {ckpt}"
    target = files[0]
    if how == "missing_keys":
        from posevid.utils.checkpoint import load_state_dict_file

        state = load_state_dict_file(target)
        dropped = [k for k in state if "attn_temp" in k][:2]
        for k in dropped:
            del state[k]
        if target.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(target))
        else:
            torch.save(state, target)
    elif how == "truncated_safetensors":
        from safetensors.torch import save_file

        from posevid.utils.checkpoint import load_state_dict_file

        state = load_state_dict_file(target)
        target.unlink()
        target = target.parent / "model.safetensors"  # accelerate's current save_state name
        save_file(state, str(target))
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif how == "damaged":  # bytes that are neither a zip archive nor a pickle (a broken download)
        target.write_bytes(bytes(range(7, 250)) * 40)
    elif how == "truncated_torch":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif how == "no_checkpoint":
        shutil.rmtree(ckpt)
    elif how == "pickle_payload":
        target.unlink()

        class Payload:
            def __reduce__(self):
                return (print, ("pwned",))

        with open(ckpt / "pytorch_model.bin", "wb") as fh:
            pickle.dump({"weight": Payload()}, fh)


@pytest.mark.parametrize(
    "how, words",
    [
        ("missing_keys", ["missing key"]),
        ("truncated_safetensors", ["safetensors"]),
        ("pickle_payload", ["refusing to load"]),
        ("damaged", ["damaged", "re-download it"]),
        ("truncated_torch", ["damaged", "failed finding central directory)", "re-download it"]),  # torch's text, whole words
        ("no_checkpoint", ["followyourpose_checkpoint-1000/pytorch_model.bin is missing", "--allow-untrained-temporal"]),
    ],
)
def test_broken_checkpoint_is_one_line(tiny_fyp_release, skeleton, tmp_path, capfd, how, words):
    # In-process through the console-script entry point (posevid.cli.main), file descriptors captured:
    # the same code path as the subprocess tests above, without paying the torch import three more times.
    release = _copy_release(tiny_fyp_release, tmp_path / "release")
    _break_checkpoint(release, how)
    out_dir = tmp_path / "out"
    proc = generate_in_process(capfd, "--model", release, "--prompt", "x", "--pose", skeleton, "--out", out_dir / "x.mp4", *SMALL)
    assert_one_line_error(proc, *words)
    assert "pwned" not in proc.stdout + proc.stderr
    assert "contains Python objects" not in proc.stderr or how == "pickle_payload"
    assert not out_dir.exists() or listing(out_dir) == []


def test_allow_untrained_temporal_runs_without_the_checkpoint(tiny_fyp_release, skeleton, tmp_path, capfd):
    release = _copy_release(tiny_fyp_release, tmp_path / "release")
    _break_checkpoint(release, "no_checkpoint")
    out = tmp_path / "out" / "x.mp4"
    proc = generate_in_process(
        capfd, "--model", release, "--prompt", "x", "--pose", skeleton, "--out", out, "--allow-untrained-temporal", *SMALL
    )
    assert proc.returncode == 0, proc.stderr
    read = json.loads(out.with_suffix(".json").read_text())["settings"]["weights_read"]
    assert str(release / "checkpoints" / "pose_encoder.pth") in read
    assert not any("followyourpose_checkpoint" in p for p in read)


@pytest.mark.parametrize("key", ["pretrained_model_path", "resume_from_checkpoint"])
def test_config_pointing_at_a_missing_folder_says_not_found(tiny_fyp_release, skeleton, tmp_path, capfd, key):
    ckpt = tiny_fyp_release / "checkpoints"
    paths = {"pretrained_model_path": ckpt / "stable-diffusion-v1-4", "resume_from_checkpoint": ckpt / "followyourpose_checkpoint-1000"}
    paths[key] = tmp_path / "nowhere" / "checkpoints"
    config = tmp_path / "c.yaml"
    config.write_text("".join(f'{k}: "{v}"\n' for k, v in paths.items()) + "validation_data:\n  prompts: ['x']\n")
    proc = generate_in_process(capfd, "--config", config, "--skeleton_path", skeleton, "--out", tmp_path / "x.mp4", *SMALL)
    line = assert_one_line_error(proc, f"{key} {paths[key]} not found")
    assert "is not a Stable Diffusion" not in line


def test_readme_command_without_weights_says_how_to_get_them(skeleton, tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HUGGINGFACE_HUB_CACHE": str(tmp_path / "hf" / "hub"), "POSEVID_CACHE": str(tmp_path / "cache")}
    proc = run_generate(
        "--prompt", "an astronaut dancing on the moon", "--pose", skeleton, "--out", tmp_path / "astronaut.mp4", env_extra=env, cwd=tmp_path
    )  # fmt: skip
    line = assert_one_line_error(proc, "make-tiny", "--model")
    assert len(line) < 700
    assert not (tmp_path / "astronaut.mp4").exists()


def test_missing_weights_are_found_before_the_pipeline_or_the_pose_video_is_touched(skeleton, tmp_path):
    """The weights are located first (milliseconds): no torch, diffusers or video decoding before the one-line error."""
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HUGGINGFACE_HUB_CACHE=str(tmp_path / "hf" / "hub"), HF_HUB_OFFLINE="1")
    code = (
        "import sys\n"
        "from posevid.errors import CheckpointError\n"
        "from posevid.tasks.generate import GenerateSettings, generate\n"
        f"settings = GenerateSettings(prompts=['a dancer'], pose={str(skeleton)!r}, out={str(tmp_path / 'a.mp4')!r})\n"
        "try:\n    generate(settings)\nexcept CheckpointError as exc:\n    print('error:', exc)\n"
        "print('loaded:', sorted(m for m in ('torch', 'diffusers', 'av', 'posevid.pipelines.followyourpose') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "error: no Follow-Your-Pose weights found" in proc.stdout, proc.stdout + proc.stderr
    assert "loaded: []" in proc.stdout, proc.stdout


def test_fast_preset_leaves_the_callers_settings_alone(tiny_fyp_release, skeleton, tmp_path):
    """``fast=True`` runs 20-step DPM-Solver++ without changing the caller's settings object (an app or batch runner
    reuses it), and an explicit scheduler or step count still wins over the preset."""
    from dataclasses import replace

    from posevid.pipelines.memory import FAST_SCHEDULER, FAST_STEPS
    from posevid.tasks.generate import GenerateSettings, generate

    settings = GenerateSettings(model=str(tiny_fyp_release), prompts=["a dancer"], pose=str(skeleton), video_length=2, stride=2,
                                height=64, width=64, device="cpu", fast=True, out=str(tmp_path / "a.mp4"), quiet=True)  # fmt: skip
    before = replace(settings)
    generate(settings)
    assert settings == before  # not mutated
    record = json.loads((tmp_path / "a.json").read_text())["settings"]
    assert (record["scheduler"], record["steps"]) == (FAST_SCHEDULER, FAST_STEPS)  # the preset applied to the run
    generate(replace(settings, steps=1, out=str(tmp_path / "b.mp4")))
    assert json.loads((tmp_path / "b.json").read_text())["settings"]["steps"] == 1
