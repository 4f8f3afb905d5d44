"""``posevid animate --backbone wan-animate`` on the tiny random Wan-Animate model, end to end, CPU only.

A real driving clip (a Charades excerpt, MediaPipe finds its person) and the DreamPose key frame go through posevid's
preprocessing (``tasks.wan_preprocess.wan_inputs``) at a small resolution area (64x64: 48x64 frames), 9 frames in
segments of 5 (two segments), 2 steps. In both modes the frames posevid writes equal a direct ``WanAnimatePipeline``
call on the same pose / face / background / mask videos and seed, through the CLI, the app's task and a batch job;
another seed (negative control) gives other frames. Bad input is one line, exit 2, and nothing is written.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plugins.tolerance import assert_uint8_close, uint8_difference
from posevid.cli import main
from posevid.tasks.wan_preprocess import WanPreprocessSettings, wan_inputs

CLIP = Path(__file__).parent / "fixtures" / "pose" / "wholebody" / "0RJKT.mp4"
REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "key_frame.png"
AREA, FRAMES, SEGMENT, STEPS, SEED = "64x64", 9, 5, 2, 3
MODES = ("animate", "replace")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """``make-tiny --kind wan-animate`` with every transformer and VAE weight perturbed (seeded N(0, 0.1)): as initialised,
    the tiny model's frames barely depend on its inputs (reversed pose frames, a black reference or the other mode
    change them by at most one level), so a comparison could not tell a wrong input; perturbed, each of them changes
    most of the values (the controls below)."""
    from safetensors.torch import load_file, save_file

    from posevid.models.tiny_wan import write_tiny_wan_animate

    folder = write_tiny_wan_animate(tmp_path_factory.mktemp("wan") / "tiny", seed=0)
    generator = torch.Generator().manual_seed(1)
    for component in ("transformer", "vae"):
        for path in sorted((folder / component).glob("*.safetensors")):
            state = load_file(path)
            save_file({k: v + 0.1 * torch.randn(v.shape, generator=generator).to(v.dtype) if v.is_floating_point() else v
                       for k, v in state.items()}, path, metadata={"format": "pt"})  # fmt: skip
    return folder


def _flags(tiny: Path, mode: str, seed: int = SEED) -> list[str]:
    return ["--backbone", "wan-animate", "--model", str(tiny), "--image", str(REFERENCE), "--driving-video", str(CLIP), "--mode", mode,
            "--area", AREA, "--max-frames", str(FRAMES), "--steps", str(STEPS), "--segment-length", str(SEGMENT), "--seed", str(seed),
            "--device", "cpu"]  # fmt: skip


def _pngs(folder: Path) -> np.ndarray:
    names = sorted(folder.glob("frame_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    return np.stack([np.asarray(Image.open(p)) for p in names])


@functools.cache
def _inputs(mode: str):
    """posevid's preprocessed videos, as the backbone gets them (the same function, deterministic)."""
    return wan_inputs(WanPreprocessSettings(video=str(CLIP), image=str(REFERENCE), mode=mode, area=AREA, max_frames=FRAMES, quiet=True))[0]


def _direct(tiny: Path, mode: str, seed: int = SEED, change: str | None = None) -> np.ndarray:
    """diffusers' WanAnimatePipeline used straight on posevid's preprocessed videos (its loader, PIL lists, a seeded
    CPU generator), frames rounded to uint8 as diffusers' numpy_to_pil does. ``change``: one input altered (a control)."""
    from diffusers import WanAnimatePipeline

    x = _inputs(mode)
    pose, face, background, masks = x.pose_frames, x.face_frames, x.background_frames, x.masks
    pose = pose[::-1] if change == "pose reversed" else pose
    face = face[::-1] if change == "face reversed" else face
    if mode == "replace":
        background = background[::-1] if change == "background reversed" else background
        masks = 1 - masks if change == "mask inverted" else masks
    pipe = WanAnimatePipeline.from_pretrained(tiny, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    rgb = lambda frames: [Image.fromarray(f) for f in frames]  # noqa: E731
    extra = {}
    if mode == "replace":  # the preprocessing's masks are 0/1: Wan's mask video holds 0/255 (white = generate)
        extra = dict(background_video=rgb(background), mask_video=[Image.fromarray(m * 255, "L") for m in masks])
    h, w = pose.shape[1:3]
    out = pipe(image=Image.fromarray(x.reference_resized), pose_video=rgb(pose), face_video=rgb(face), prompt="", height=h, width=w,
               segment_frame_length=SEGMENT, num_inference_steps=STEPS, mode=mode, generator=torch.Generator("cpu").manual_seed(seed),
               output_type="np", **extra)  # fmt: skip
    return (np.clip(np.asarray(out.frames[0]), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def cli_runs(tiny, tmp_path_factory) -> dict:
    """``posevid animate --backbone wan-animate`` in both modes: the PNG frames and the sidecar."""
    runs = {}
    for mode in MODES:
        out = tmp_path_factory.mktemp(mode) / "wan.mp4"
        assert main(["animate", *_flags(tiny, mode), "--out", str(out), "--quiet"]) == 0
        runs[mode] = {"frames": _pngs(out.with_name("wan_frames")), "sidecar": json.loads(out.with_suffix(".json").read_text())}
    return runs


CONTROLS = {"animate": ("another seed", "pose reversed", "face reversed"),
            "replace": ("another seed", "pose reversed", "background reversed", "mask inverted")}  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_cli_frames_equal_a_direct_diffusers_call_over_two_segments(tiny, cli_runs, mode):
    ours = cli_runs[mode]["frames"]
    direct = _direct(tiny, mode)
    assert ours.shape == direct.shape == (FRAMES, 64, 48, 3)
    level, fraction = uint8_difference(ours, direct)
    print(f"{mode}: posevid vs a direct diffusers call: max {level} levels, {fraction:.4%} of the values differ")
    assert_uint8_close(ours, direct, f"{mode}: posevid vs diffusers")
    for change in CONTROLS[mode]:  # negative controls: one input (or the seed) changed fails the same comparison
        other = _direct(tiny, mode, SEED + 1) if change == "another seed" else _direct(tiny, mode, change=change)
        level, fraction = uint8_difference(ours, other)
        print(f"{mode}, {change}: max {level} levels, {fraction:.2%} of the values differ")
        assert fraction > 0.2, (change, level, fraction)
    side = cli_runs[mode]["sidecar"]["settings"]
    assert side["method"] == "wan-animate" and side["mode"] == mode and side["frames"] == list(range(FRAMES))
    assert side["segments"] == {"frames": FRAMES, "segment_frame_length": SEGMENT, "prev": 1, "segments": 2, "padding": 0}
    assert side["memory"] == {"profile": "none", "device": "cpu", "calls": ["to(cpu)"]} and side["model"]["folder"] == str(tiny)
    assert side["preprocessing"]["report"]["mode"] == mode and len(side["preprocessing"]["frame_indices"]) == FRAMES


def test_replace_mode_differs_from_animate_mode(cli_runs):
    assert uint8_difference(cli_runs["animate"]["frames"], cli_runs["replace"]["frames"])[1] > 0.2


@pytest.mark.parametrize("mode", MODES)
def test_the_app_task_gives_the_cli_frames(tiny, cli_runs, mode, tmp_path):
    from posevid.app import backend
    from posevid.tasks.common import ModelCache

    res = backend.run_image_to_video(ModelCache(), out_dir=tmp_path, backbone="wan-animate", model=str(tiny), image=REFERENCE,
                                     driving_video=CLIP, mode=mode, area=AREA, max_frames=FRAMES, steps=STEPS, segment_length=SEGMENT,
                                     seed=SEED, device="cpu")  # fmt: skip
    assert res["num_frames"] == FRAMES and res["mp4"].is_file() and res["gif"].is_file()
    assert_uint8_close(_pngs(tmp_path / "result_frames"), cli_runs[mode]["frames"], f"{mode}: app vs CLI")


def test_the_app_tab_shows_the_wan_controls_and_its_handler_gives_the_cli_frames(tiny, cli_runs, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    import asyncio

    from posevid.app.server import AppConfig, prepare_environment
    from posevid.app.ui import build_app
    from posevid.tasks.backbones.wan_animate import WanAnimateOptions

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.setenv(name, "")
    config = AppConfig(output_dir=str(tmp_path / "app"), animate_models={"wan-animate": str(tiny)})
    prepare_environment(config)
    demo = build_app(config)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    defaults = WanAnimateOptions()
    assert by_id["i2v-wan-animate-steps"].value == defaults.steps and by_id["i2v-wan-animate-mode"].value == defaults.mode
    assert by_id["i2v-wan-animate-segment-length"].value == defaults.segment_length
    assert "i2v-wan-animate-memory" not in by_id  # set when the app starts (--wan-animate-memory)
    handler = next(f.fn for f in demo.fns.values() if f.api_name == "image_to_video")
    out = asyncio.run(handler(str(REFERENCE), None, seed=SEED, driving=str(CLIP), backbone="wan-animate", wan_animate_mode="replace",
                              wan_animate_area=AREA, wan_animate_max_frames=FRAMES, wan_animate_steps=STEPS,
                              wan_animate_segment_length=SEGMENT, hist=[], request=None, progress=lambda *a, **k: None))  # fmt: skip
    assert f"{FRAMES} frames with Wan2.2-Animate" in out[1]
    assert_uint8_close(_pngs(Path(out[0]).with_name("result_frames")), cli_runs["replace"]["frames"], "replace: app tab vs CLI")


def test_a_batch_job_gives_the_cli_frames(tiny, cli_runs, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    fields = lambda mode: {"task": "animate", "id": mode, "backbone": "wan-animate", "model": str(tiny), "image": str(REFERENCE),  # noqa: E731
                           "driving-video": str(CLIP), "mode": mode, "area": AREA, "max-frames": FRAMES, "steps": STEPS,
                           "segment-length": SEGMENT, "seed": SEED, "device": "cpu"}  # fmt: skip
    jobs.write_text("".join(json.dumps(fields(m)) + "\n" for m in MODES))
    assert main(["batch", str(jobs), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "_summary.json").read_text())
    assert summary["counts"]["done"] == 2 and summary["model_loads"] == {"0": 1}  # one load: the jobs share the pipeline
    for mode in MODES:
        assert_uint8_close(_pngs(tmp_path / "out" / f"{mode}_frames"), cli_runs[mode]["frames"], f"{mode}: batch vs CLI")


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backbone", "wan-animat"], "unknown backbone 'wan-animat' (choose one of dreampose, wan-animate)"),
        (["--s1", "8"], "--s1 is an option of --backbone dreampose, not of --backbone wan-animate"),
        (["--segment-length", "6"], "--segment-length must be 4k+1 frames"),
        (["--mode", "replace", "--retarget"], "retargeting works in animate mode only"),
        (["--memory", "model-offload"], "memory profile 'model-offload' needs a GPU"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["animate", *_flags(tiny, "animate"), *extra, "--out", str(out / "x.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"posevid animate: error: {message}") and err.count("\n") == 1, err
    assert not out.exists()


def test_a_missing_driving_video_names_the_animate_flag(tmp_path, capsys):
    """The preprocessing's own check words it for posevid wan-preprocess (VIDEO); animate names --driving-video."""
    flags = ["--driving-video" if f == "--driving-video" else str(tmp_path / "gone.mp4") if f == str(CLIP) else f
             for f in _flags(Path("unused"), "animate")]  # fmt: skip
    assert main(["animate", *flags, "--out", str(tmp_path / "out" / "x.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"posevid animate: error: driving video not found: {tmp_path / 'gone.mp4'} (check --driving-video)\n", err
    assert not (tmp_path / "out").exists()


def test_missing_weights_offline_is_one_line_naming_them_before_any_decoding(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    import posevid.tasks.wan_preprocess as pre
    from posevid.pipelines.wan_animate import HUB_ID

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(pre, "wan_inputs", lambda *a, **k: pytest.fail("the video was preprocessed before the weights were found"))
    out = tmp_path / "out"
    flags = [f for f in _flags(Path("unused"), "animate") if f not in ("--model", "unused")]
    assert main(["animate", *flags, "--out", str(out / "x.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and HUB_ID in err and "make-tiny --kind wan-animate" in err, err
    assert not out.exists()
