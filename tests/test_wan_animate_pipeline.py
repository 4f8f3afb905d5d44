"""Wan2.2-Animate generation (``posevid.pipelines.wan_animate``) on the tiny random model, CPU only.

The core proof: posevid's :func:`generate` on posevid-style inputs (uint8 arrays, 512x512 face crops, a seed)
gives the frames of a direct ``WanAnimatePipeline`` call (diffusers used straight: PIL lists, a seeded CPU
generator) in both modes, over two segments (9 frames, segment length 5). A different seed shows that the
tolerance is far below what a real difference makes. The rest: loading from a folder and from the hub cache,
one-line errors for everything a user can get wrong, the memory profiles, the ftfy install hint.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from posevid.errors import CheckpointError, InputError, PosevidError
from posevid.models.tiny_wan import tiny_wan_animate_components, write_tiny_wan_animate
from posevid.pipelines import wan_animate as wan
from posevid.utils.extras import MissingExtraError

FRAMES, SEGMENT, STEPS, SIZE, SEED = 9, 5, 2, 32, 7  # 9 frames in segments of 5 (1 conditioning frame): 2 segments
TOLERANCE = 1e-5  # same CPU, same code path below the conversions: differences are float rounding at most


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return write_tiny_wan_animate(tmp_path_factory.mktemp("wan") / "tiny", seed=0)


@pytest.fixture(scope="module")
def pipe(tiny_folder):
    return wan.load_wan_animate(tiny_folder)


@pytest.fixture(scope="module")
def inputs() -> dict:
    """posevid's preprocessed inputs as the preprocessing returns them: uint8 arrays, 512x512 faces, a 0/255 mask."""
    rng = np.random.default_rng(0)
    video = lambda h, w: [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(FRAMES)]  # noqa: E731
    mask = np.zeros((FRAMES, SIZE, SIZE), np.uint8)
    mask[:, 8:28, 10:24] = 255  # white = generate
    return dict(
        image=rng.integers(0, 256, (48, 40, 3), dtype=np.uint8),  # not the output size: resized by the pipeline ("fill")
        pose_frames=video(SIZE, SIZE),
        face_frames=video(wan.FACE_SIZE, wan.FACE_SIZE),
        background_frames=video(SIZE, SIZE),
        mask_frames=list(mask),
    )


def _direct(folder: Path, inputs: dict, mode: str, seed: int) -> np.ndarray:
    """diffusers' WanAnimatePipeline used straight: its own loader, PIL lists, a seeded CPU generator."""
    from diffusers import WanAnimatePipeline
    from PIL import Image

    pipe = WanAnimatePipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    rgb = lambda frames: [Image.fromarray(f) for f in frames]  # noqa: E731
    extra = {}
    if mode == "replace":
        extra = dict(background_video=rgb(inputs["background_frames"]), mask_video=[Image.fromarray(m, "L") for m in inputs["mask_frames"]])
    out = pipe(
        image=Image.fromarray(inputs["image"]), pose_video=rgb(inputs["pose_frames"]), face_video=rgb(inputs["face_frames"]),
        prompt="a person dancing", height=SIZE, width=SIZE, segment_frame_length=SEGMENT, num_inference_steps=STEPS, mode=mode,
        generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **extra,
    )  # fmt: skip
    return np.asarray(out.frames[0])


def _posevid(pipe, inputs: dict, mode: str, **kwargs) -> wan.WanAnimateOutput:
    extra = {k: inputs[k] for k in ("background_frames", "mask_frames")} if mode == "replace" else {}
    return wan.generate(
        pipe, image=inputs["image"], pose_frames=inputs["pose_frames"], face_frames=inputs["face_frames"], mode=mode,
        prompt="a person dancing", segment_frame_length=SEGMENT, num_inference_steps=STEPS, seed=SEED, return_video=True,
        **extra, **kwargs,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("mode", wan.MODES)
def test_generate_equals_a_direct_diffusers_call_over_two_segments(pipe, tiny_folder, inputs, mode):
    calls = []
    out = _posevid(pipe, inputs, mode, progress=lambda *a: calls.append(a))
    direct = _direct(tiny_folder, inputs, mode, SEED)

    assert out.plan.segments == 2 and out.plan.padding == 0 and len(out.frames) == FRAMES == direct.shape[0]
    assert calls == [("denoise", i, 2 * STEPS) for i in range(1, 2 * STEPS + 1)]  # both segments reported
    diff = float(np.abs(out.video - direct).max())
    print(f"{mode}: max abs diff vs direct WanAnimatePipeline call = {diff:.3g}")
    assert diff <= TOLERANCE
    frames = np.stack(out.frames)
    assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert np.abs(frames.astype(int) - np.round(direct * 255).astype(int)).max() <= 1

    # negative control: another seed is a real difference, two orders of magnitude above the tolerance
    other = _direct(tiny_folder, inputs, mode, SEED + 1)
    assert float(np.abs(out.video - other).max()) > 100 * TOLERANCE


def test_replace_mode_uses_background_and_mask(pipe, inputs):
    animate = _posevid(pipe, inputs, "animate").video
    replace = _posevid(pipe, inputs, "replace").video
    other_bg = dict(inputs, background_frames=[255 - f for f in inputs["background_frames"]])
    replace_other_bg = _posevid(pipe, other_bg, "replace").video
    assert np.abs(animate - replace).max() > 1e-3
    assert np.abs(replace - replace_other_bg).max() > 1e-3
    # posevid's preprocessing returns 0/1 masks (posevid.wan.WanInputs.masks): read as 0/255, as Wan's mask video holds
    zero_one = _posevid(pipe, dict(inputs, mask_frames=[(m > 0).astype(np.uint8) for m in inputs["mask_frames"]]), "replace")
    assert np.array_equal(zero_one.video, replace) and any("scaled to 0/255" in n for n in zero_one.notes)
    keep_all = _posevid(pipe, dict(inputs, mask_frames=[np.zeros_like(m) for m in inputs["mask_frames"]]), "replace").video
    assert np.abs(keep_all - replace).max() > 1e-3  # what an unscaled 0/1 mask (= 1/255) would come close to


def test_same_seed_same_video_and_notes(pipe, inputs):
    a, b = _posevid(pipe, inputs, "animate"), _posevid(pipe, inputs, "animate")
    assert np.array_equal(np.stack(a.frames), np.stack(b.frames))
    assert any("reference image resized from 40x48 to 32x32" in n for n in a.notes)
    assert any("face frames resized from 512x512 to 16x16" in n for n in a.notes)


def test_plan_segments_pads_like_diffusers():
    assert wan.plan_segments(9, 5, 1) == wan.SegmentPlan(9, 5, 1, 2, 0)
    assert wan.plan_segments(10, 5, 1) == wan.SegmentPlan(10, 5, 1, 3, 3)  # 10 -> 13 = 5 + 4 + 4
    assert wan.plan_segments(77, 77, 1).segments == 1
    assert wan.plan_segments(100, 77, 5) == wan.SegmentPlan(100, 77, 5, 2, 49)  # 100 + 49 = 149 = 5 + 72 * 2


def test_generate_over_padded_segments(pipe, inputs):
    """A length that does not fill the last segment: diffusers mirrors the inputs, posevid returns one frame per pose."""
    short = {k: v[:7] if isinstance(v, list) else v for k, v in inputs.items()}
    out = _posevid(pipe, short, "animate")
    assert out.plan == wan.SegmentPlan(7, SEGMENT, 1, 2, 2) and len(out.frames) == 7
    assert any("mirrored padding" in n for n in out.notes)


# ---------------------------------------------------------------------------------------------- loading
def test_tiny_folder_loads_and_is_the_seeded_model(tiny_folder, pipe):
    from diffusers import WanAnimatePipeline

    assert isinstance(pipe, WanAnimatePipeline)
    assert wan.memory_record(pipe) == {"profile": "none", "device": "cpu", "calls": ["to(cpu)"]}
    assert pipe._posevid_source["folder"] == str(tiny_folder)
    index = json.loads((tiny_folder / "model_index.json").read_text())
    assert index["_class_name"] == "WanAnimatePipeline" and set(wan.LAYOUT) <= set(index)
    for name in ("transformer", "vae", "text_encoder", "image_encoder"):
        assert list((tiny_folder / name).glob("*.safetensors")), name
    assert not list(tiny_folder.rglob("*.bin"))
    fresh = tiny_wan_animate_components(seed=0)["transformer"].state_dict()
    loaded = pipe.transformer.state_dict()
    assert fresh.keys() == loaded.keys() and all(torch.equal(fresh[k], loaded[k]) for k in fresh)
    other = tiny_wan_animate_components(seed=1)["transformer"].state_dict()
    assert not all(torch.equal(other[k], loaded[k]) for k in other)


def test_make_tiny_cli_writes_a_loadable_folder(tmp_path, capsys):
    from posevid.cli import main

    assert main(["make-tiny", "--kind", "wan-animate", str(tmp_path / "t")]) == 0
    wan.check_wan_animate_folder(tmp_path / "t")
    assert "load_wan_animate" in capsys.readouterr().out
    assert main(["make-tiny", "--kind", "wan-animate", str(tmp_path / "t")]) == 2  # not empty, no --overwrite
    assert main(["make-tiny", "--kind", "wan-animate", str(tmp_path / "t"), "--overwrite"]) == 0


def _use_hub_cache(monkeypatch, cache: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_release_from_the_hub_cache_offline(monkeypatch, tmp_path, tiny_folder):
    cache = tmp_path / "hub"
    repo = cache / ("models--" + wan.HUB_ID.replace("/", "--"))
    commit = "0" * 40
    shutil.copytree(tiny_folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    _use_hub_cache(monkeypatch, cache)
    pipe = wan.load_wan_animate(None)
    assert pipe._posevid_source["model"] == wan.HUB_ID and commit in pipe._posevid_source["folder"]


def test_release_missing_offline_is_one_line(monkeypatch, tmp_path):
    _use_hub_cache(monkeypatch, tmp_path / "empty-cache")
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(None)
    msg = _one_line(exc)
    assert wan.HUB_ID in msg and "--model" in msg and "make-tiny --kind wan-animate" in msg


def test_missing_folder_is_one_line(tmp_path):
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(tmp_path / "nowhere")
    assert "not found" in _one_line(exc) and wan.HUB_ID in str(exc.value)


def test_incomplete_or_foreign_folder_names_what_is_missing(tmp_path, tiny_folder):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    for f in (broken / "transformer").glob("*.safetensors"):
        f.unlink()
    (broken / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(broken)
    assert "missing scheduler/scheduler_config.json, transformer/*.safetensors" in _one_line(exc)

    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(tmp_path / "empty")
    assert "no model_index.json" in _one_line(exc)

    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(tmp_path / "sd")
    assert "holds a StableDiffusionPipeline, not a WanAnimatePipeline" in _one_line(exc)


def test_corrupt_weights_are_one_line(tmp_path, tiny_folder):
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_folder, broken)
    (broken / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError) as exc:
        wan.load_wan_animate(broken)
    assert "cannot load the Wan-Animate model" in _one_line(exc)


# ---------------------------------------------------------------------------------------------- bad input
class _Untouchable:
    """A pipeline stand-in that fails on any use: the checks must reject the input before the model is touched."""

    def __getattr__(self, name):
        raise AssertionError(f"the pipeline was used ({name}) before the inputs were checked")


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(segment_frame_length=6), "segment length must be 4k+1 frames"),
        (dict(segment_frame_length=1), "segment length must be 4k+1 frames"),
        (dict(prev_segment_conditioning_frames=3), "must be 1 or 5"),
        (dict(height=30), "multiples of 16, got 32x30"),
        (dict(mode="swap"), "unknown Wan-Animate mode"),
        (dict(face_frames=8), "the face video has 8 frames but the pose video has 9"),
        (dict(pose_frames=1, face_frames=1), "the pose video has 1 frame(s)"),
        (dict(mode="replace", background_frames=None), "replace mode needs the background and mask videos"),
        (dict(mode="replace", mask_frames=8), "the mask video has 8 frames"),
        (dict(num_inference_steps=0), "steps must be at least 1"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_before_the_model_runs(inputs, change, expected):
    kwargs = dict(
        image=inputs["image"], pose_frames=inputs["pose_frames"], face_frames=inputs["face_frames"],
        background_frames=inputs["background_frames"], mask_frames=inputs["mask_frames"], segment_frame_length=SEGMENT,
    )  # fmt: skip
    for key, value in change.items():
        kwargs[key] = kwargs[key][:value] if key.endswith("_frames") and key in kwargs and isinstance(value, int) else value
    with pytest.raises(InputError) as exc:
        wan.generate(_Untouchable(), **kwargs)
    assert expected in _one_line(exc)


def test_wrong_segment_length_hints_the_nearest_valid_one():
    with pytest.raises(InputError) as exc:
        wan.check_wan_inputs(frames=20, face_frames=20, height=32, width=32, segment_frame_length=80)
    assert "try 81" in _one_line(exc)
    with pytest.raises(InputError) as exc:
        wan.check_wan_inputs(frames=20, face_frames=20, height=32, width=32, segment_frame_length=5, prev_segment_conditioning_frames=5)
    assert "try 9" in _one_line(exc)


def test_a_non_image_frame_is_one_line(pipe, inputs):
    with pytest.raises(InputError) as exc:
        wan.generate(pipe, image=inputs["image"], pose_frames=[np.zeros((32, 32, 3), np.float32)] * 9, face_frames=inputs["face_frames"])
    assert "pose frame must be a uint8 image" in _one_line(exc)
    with pytest.raises(InputError) as exc:
        wan.generate(pipe, image="ref.png", pose_frames=inputs["pose_frames"], face_frames=inputs["face_frames"], segment_frame_length=5)
    assert "reference image must be a uint8 image" in _one_line(exc)


# ---------------------------------------------------------------------------------------------- memory
@pytest.mark.parametrize("profile", [p for p, steps in wan.MEMORY_PROFILES.items() if wan.OFFLOAD_STEPS & set(steps)])
def test_offload_profiles_need_a_gpu(profile, tmp_path):
    with pytest.raises(InputError) as exc:
        wan.load_wan_animate(tmp_path / "never-read", memory=profile)  # refused before the folder is even looked at
    assert "needs a GPU" in _one_line(exc) and "none, vae-tiling or fp8" in str(exc.value)


def test_unknown_profile_lists_the_choices():
    with pytest.raises(InputError) as exc:
        wan.check_memory_profile("tiny", "cpu")
    assert all(name in _one_line(exc) for name in wan.MEMORY_PROFILES)


def test_fp8_profile_is_applied_on_cpu_and_reported(tiny_folder, pipe, inputs):
    fp8 = wan.load_wan_animate(tiny_folder, memory="fp8")
    record = wan.memory_record(fp8)
    assert record["profile"] == "fp8" and record["calls"] == [
        "transformer.enable_layerwise_casting(storage_dtype=float8_e4m3fn, compute_dtype=float32)",
        "vae.enable_tiling()",
        "to(cpu)",
    ]
    assert fp8.transformer.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn  # stored in fp8 ...
    assert fp8.transformer.patch_embedding.weight.dtype == torch.float32  # ... except diffusers' precision-critical layers
    assert fp8.vae.use_tiling and not pipe.vae.use_tiling
    exact, stored_fp8 = _posevid(pipe, inputs, "animate").video, _posevid(fp8, inputs, "animate").video
    diff = float(np.abs(exact - stored_fp8).max())
    assert 1e-4 < diff < 0.25, diff  # fp8 storage changes numbers a little, by design


def test_gpu_profiles_map_to_diffusers_calls(monkeypatch):
    """Without a GPU: each offload profile makes exactly its diffusers calls, in order, and skips the plain move."""
    from posevid.models.tiny_wan import tiny_wan_animate_pipeline

    seen: list[tuple[str, dict]] = []

    def recording(pipe):
        for name in ("enable_model_cpu_offload", "enable_group_offload", "to"):
            monkeypatch.setattr(pipe, name, lambda *a, _name=name, **kw: seen.append((_name, kw)), raising=False)
        return pipe

    record = wan.apply_memory_profile(
        recording(tiny_wan_animate_pipeline()), "fp8-group-offload", device="cuda", compute_dtype=torch.bfloat16
    )
    assert [name for name, _ in seen] == ["enable_group_offload"]
    group = seen[0][1]
    assert group["offload_type"] == "block_level" and group["num_blocks_per_group"] == 1 and group["exclude_modules"] == ["vae"]
    assert str(group["onload_device"]) == "cuda" and group["use_stream"] is True
    assert record["calls"][0].startswith("transformer.enable_layerwise_casting(storage_dtype=float8_e4m3fn, compute_dtype=bfloat16)")
    assert record["calls"][1].startswith("enable_group_offload(") and record["calls"][-1] == "vae.enable_tiling()"

    seen.clear()
    record = wan.apply_memory_profile(recording(tiny_wan_animate_pipeline()), "model-offload", device="cuda")
    assert seen == [("enable_model_cpu_offload", {"device": "cuda"})]
    assert record == {
        "profile": "model-offload",
        "device": "cuda",
        "calls": ["enable_model_cpu_offload(device=cuda)", "vae.enable_tiling()"],
    }


# ---------------------------------------------------------------------------------------------- ftfy
def test_missing_ftfy_is_the_install_hint(monkeypatch, tiny_folder, pipe, inputs):
    monkeypatch.setitem(sys.modules, "ftfy", None)  # what Python does for a package that is not installed
    for call in (
        lambda: wan.load_wan_animate(tiny_folder),
        lambda: wan.generate(pipe, image=inputs["image"], pose_frames=inputs["pose_frames"], face_frames=inputs["face_frames"],
                             segment_frame_length=SEGMENT, num_inference_steps=1),
    ):  # fmt: skip
        with pytest.raises(MissingExtraError) as exc:
            call()
        msg = _one_line(exc)
        assert 'pip install "posevid[wan]"' in msg and "ftfy" in msg
        assert isinstance(exc.value, PosevidError) and exc.value.exit_code == 2


# ---------------------------------------------------------------------------------------------- benchmark script
def _benchmark_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "wan_animate_memory.py"
    spec = importlib.util.spec_from_file_location("wan_animate_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_memory_benchmark_refuses_without_a_gpu_and_its_configs_build(monkeypatch, capsys):
    bench = _benchmark_module()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--profiles", "none,fp8-group-offload", "--sizes", "720p"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a CUDA GPU" in err[0]
    with pytest.raises(SystemExit):
        bench.parse_args(["--profiles", "turbo"])
    report = bench.dry_run()  # the full-size configs, built on the meta device
    params = {name: c["params_b"] for name, c in report["components"].items()}
    assert 17.0 < params["transformer"] < 17.5 and 5.6 < params["text_encoder"] < 5.8 and 0.6 < params["image_encoder"] < 0.65
