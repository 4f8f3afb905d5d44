"""Wan2.2-Animate generation: diffusers' ``WanAnimatePipeline`` fed with posevid's preprocessed frames.

posevid does not re-implement Wan-Animate: the model runs through diffusers' pipeline, unchanged. This module
is what surrounds it, the part diffusers leaves to the user:

* **loading** (:func:`load_wan_animate`): the hub id ``Wan-AI/Wan2.2-Animate-14B-Diffusers`` (hub cache first,
  offline-first) or a folder in the diffusers layout, checked before anything heavy is read, so a missing or
  incomplete folder is one line naming what is missing; weights are read from safetensors only;
* **memory** (:data:`MEMORY_PROFILES`, :func:`apply_memory_profile`): one setting that names a set of diffusers
  calls (model CPU offload, group offload, fp8 layerwise storage, VAE tiling), and a record of what was
  applied, for the sidecar (:func:`memory_record`);
* **the call** (:func:`generate`): posevid's inputs (reference image, pose frames, 512x512 face crops, and in
  replace mode background and mask frames, as uint8 arrays or PIL images) checked cheaply first
  (:func:`check_wan_inputs`), the noise drawn from a CPU generator seeded with ``seed`` (same seed, same
  video on CPU and GPU), any length through the pipeline's own segments (:func:`plan_segments`), progress
  reported as ``progress("denoise", done, total)`` over all segments, and uint8 frames back.

The memory profiles that move weights between the CPU and an accelerator (``model-offload``,
``group-offload`` and their fp8 variants) are refused on the CPU with a one-line :class:`InputError`, as
``posevid generate --offload`` is: on the CPU there is nothing to offload to. ``fp8`` and ``vae-tiling`` work on
every device (fp8 changes outputs slightly by design: weights are stored in float8 and cast per layer).

The tests (``tests/test_wan_animate_pipeline.py``) show, on a tiny random model, that :func:`generate` gives the
frames of a direct ``WanAnimatePipeline`` call on the same inputs and seed, in both modes and over two segments.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posevid.errors import CheckpointError, InputError, short_reason
from posevid.utils.extras import require
from posevid.utils.progress import Progress, no_progress

if TYPE_CHECKING:  # torch and diffusers are imported inside functions so that input checks stay instant
    import torch
    from diffusers import WanAnimatePipeline
    from PIL import Image

HUB_ID = "Wan-AI/Wan2.2-Animate-14B-Diffusers"
PIPELINE_CLASS = "WanAnimatePipeline"
MODES = ("animate", "replace")
PREV_SEGMENT_FRAMES = (1, 5)  # what diffusers accepts for prev_segment_conditioning_frames
SIZE_MULTIPLE = 16  # height and width (diffusers' check: VAE stride 8 x patch 2)
TEMPORAL_STRIDE = 4  # segment_frame_length must be 4k + 1 (the VAE's temporal compression)
FACE_SIZE = 512  # the release's motion_encoder_size: face crops are 512x512


@dataclass(frozen=True)
class WanAnimateDefaults:
    """The generation defaults, defined once and torch-free: :func:`generate`, :func:`check_wan_inputs`,
    :func:`load_wan_animate` take them as their parameters' defaults, and the ``wan-animate`` backbone's options
    (``tasks/backbones/wan_animate.py``, whose flags and app controls show them) read them."""

    num_inference_steps: int = 20  # the release's
    guidance_scale: float = 1.0  # 1: no classifier-free guidance, the release's setting
    segment_frame_length: int = 77  # the release's clip length (4k+1)
    prev_segment_conditioning_frames: int = 1
    memory: str = "none"  # memory profile (MEMORY_PROFILES)


WAN_ANIMATE_DEFAULTS = D = WanAnimateDefaults()


HOW_TO_GET = (
    f"download the hub repo {HUB_ID} on a machine with internet access and pass its folder with --model DIR, "
    "or put it in the hub cache; for a smoke test: posevid make-tiny --kind wan-animate tiny_wan/"
)
FEATURE = "Wan-Animate generation"
# Only what the pipeline loads: the seven component folders and the index (no README images, no original checkpoints).
ALLOW_PATTERNS = [
    "model_index.json", "tokenizer/*", "text_encoder/*", "image_encoder/*", "image_processor/*", "scheduler/*",
    "transformer/*", "vae/*",
]  # fmt: skip
# component -> (files of which one must exist, whether safetensors weights must be there)
LAYOUT: dict[str, tuple[tuple[str, ...], bool]] = {
    "tokenizer": (("tokenizer_config.json", "tokenizer.json", "spiece.model"), False),
    "text_encoder": (("config.json",), True),
    "image_encoder": (("config.json",), True),
    "image_processor": (("preprocessor_config.json",), False),
    "scheduler": (("scheduler_config.json",), False),
    "transformer": (("config.json",), True),
    "vae": (("config.json",), True),
}

# ------------------------------------------------------------------------------------------------ memory
# A profile is a list of steps; each step is one call of diffusers' own API (see _STEPS). Placement comes last:
# an offload step places the models itself, otherwise the whole pipeline is moved to the device.
MEMORY_PROFILES: dict[str, tuple[str, ...]] = {
    "none": (),
    "vae-tiling": ("vae_tiling",),
    "fp8": ("fp8_storage", "vae_tiling"),
    "model-offload": ("model_offload", "vae_tiling"),
    "group-offload": ("group_offload", "vae_tiling"),
    "fp8-model-offload": ("fp8_storage", "model_offload", "vae_tiling"),
    "fp8-group-offload": ("fp8_storage", "group_offload", "vae_tiling"),
}
MEMORY_HELP = {
    "none": "every model on the device (fastest; the 14B model in bf16 needs about 60 GB of GPU memory at 720p)",
    "vae-tiling": "as none, with the VAE encoding and decoding in tiles (lower peak at 720p)",
    "fp8": "transformer weights stored in float8 (e4m3) and cast per layer to the compute dtype; VAE tiling",
    "model-offload": "one model at a time on the GPU, the others in CPU memory (diffusers' model CPU offload); VAE tiling",
    "group-offload": "transformer blocks streamed to the GPU one at a time (diffusers' group offload, block level, CUDA "
    "streams; the text and image encoders have no top-level block list and move as one group each); the VAE stays on "
    "the GPU; VAE tiling",
    "fp8-model-offload": "fp8 storage + model CPU offload + VAE tiling",
    "fp8-group-offload": "fp8 storage + group offload + VAE tiling (the smallest GPU footprint)",
}
OFFLOAD_STEPS = frozenset({"model_offload", "group_offload"})


def check_memory_profile(profile: str, device: str | torch.device | None = None) -> tuple[str, ...]:
    """The steps of ``profile``; a one-line :class:`InputError` for an unknown name or an offload profile on the CPU
    (``device`` None: the name only, for a check before the device is chosen)."""
    if profile not in MEMORY_PROFILES:
        raise InputError(f"unknown memory profile {profile!r}", hint=f"choose one of {', '.join(MEMORY_PROFILES)}")
    steps = MEMORY_PROFILES[profile]
    if device is None:
        return steps
    device_type = str(device).split(":")[0]
    if device_type in ("cpu", "meta") and OFFLOAD_STEPS & set(steps):
        raise InputError(
            f"memory profile {profile!r} needs a GPU (it moves weights between CPU memory and the accelerator)",
            hint="on the CPU use none, vae-tiling or fp8",
        )
    return steps


def _fp8_storage(pipe, device, compute_dtype) -> str:
    import torch

    pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)
    return f"transformer.enable_layerwise_casting(storage_dtype=float8_e4m3fn, compute_dtype={_dtype_name(compute_dtype)})"


def _model_offload(pipe, device, compute_dtype) -> str:
    pipe.enable_model_cpu_offload(device=device)
    return f"enable_model_cpu_offload(device={device})"


def _group_offload(pipe, device, compute_dtype) -> str:
    import torch

    use_stream = torch.device(device).type == "cuda"
    pipe.enable_group_offload(
        onload_device=torch.device(device), offload_device=torch.device("cpu"), offload_type="block_level",
        num_blocks_per_group=1, use_stream=use_stream, exclude_modules=["vae"],
    )  # fmt: skip
    return (
        f"enable_group_offload(onload_device={device}, offload_device=cpu, offload_type=block_level, num_blocks_per_group=1, "
        f"use_stream={use_stream}, exclude_modules=['vae'])"
    )


def _vae_tiling(pipe, device, compute_dtype) -> str:
    pipe.vae.enable_tiling()
    return "vae.enable_tiling()"


_STEPS: dict[str, Callable[[Any, str, Any], str]] = {
    "fp8_storage": _fp8_storage,
    "model_offload": _model_offload,
    "group_offload": _group_offload,
    "vae_tiling": _vae_tiling,
}


def apply_memory_profile(
    pipe: WanAnimatePipeline, profile: str = D.memory, *, device: str | torch.device = "cpu", compute_dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """Configure ``pipe`` in place for ``profile`` and place it on ``device``; returns (and stores) :func:`memory_record`.

    Call once, on a freshly loaded pipeline. ``compute_dtype`` (fp8 profiles): the dtype layers compute in,
    by default the transformer's dtype when the profile is applied.
    """
    steps = check_memory_profile(profile, device)
    compute_dtype = compute_dtype or pipe.transformer.dtype
    calls = [_STEPS[step](pipe, str(device), compute_dtype) for step in steps]
    if not OFFLOAD_STEPS & set(steps):
        pipe.to(device)
        calls.append(f"to({device})")
    pipe._posevid_memory = {"profile": profile, "device": str(device), "calls": calls}
    return memory_record(pipe)


def memory_record(pipe) -> dict[str, Any]:
    """``{"profile", "device", "calls"}``: what :func:`apply_memory_profile` did to ``pipe`` (for sidecars)."""
    record = getattr(pipe, "_posevid_memory", None) or {"profile": None, "device": None, "calls": []}
    return {**record, "calls": list(record["calls"])}


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------------------------------------ loading
def require_ftfy() -> None:
    """diffusers' Wan prompt cleaner needs ``ftfy``: without it, the ``pip install "posevid[wan]"`` line."""
    require("ftfy", FEATURE)


def locate_wan_animate(model: str | os.PathLike | None = None) -> Path:
    """The folder of a Wan-Animate diffusers model: ``model`` (a folder or a hub id), or the release (:data:`HUB_ID`).

    Hub ids are looked up in the local cache first (offline-first); without a copy the error is one line
    naming what to download and where to put it. The folder is checked with :func:`check_wan_animate_folder`.
    """
    from posevid.utils.hub import resolve_model_path

    spec = HUB_ID if model is None else model
    what = "Wan2.2-Animate weights" if model is None else "Wan-Animate model"
    folder = resolve_model_path(spec, what=what, allow_patterns=ALLOW_PATTERNS, how_to_get=HOW_TO_GET)
    check_wan_animate_folder(folder)
    return folder


def check_wan_animate_folder(folder: str | os.PathLike) -> None:
    """One-line :class:`CheckpointError` unless ``folder`` holds a complete ``WanAnimatePipeline`` in the diffusers layout."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"--model must be a Wan-Animate diffusers folder, got the file {root}", hint=HOW_TO_GET)
    index = root / "model_index.json"
    if not index.is_file():
        raise CheckpointError(f"{root} is not a Wan-Animate diffusers folder: it has no model_index.json", hint=HOW_TO_GET)
    try:
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"cannot read {index}: {short_reason(exc)}", hint=HOW_TO_GET) from None
    if class_name != PIPELINE_CLASS:
        raise CheckpointError(f"{root} holds a {class_name or 'pipeline of unknown class'}, not a {PIPELINE_CLASS}", hint=HOW_TO_GET)
    missing = []
    for name, (files, weighted) in LAYOUT.items():
        sub = root / name
        if not any((sub / f).is_file() for f in files):
            missing.append(f"{name}/{files[0]}")
        if weighted and not any(sub.glob("*.safetensors")):
            missing.append(f"{name}/*.safetensors")
    if missing:
        raise CheckpointError(f"{root} is not a complete Wan-Animate diffusers folder: missing {', '.join(missing)}", hint=HOW_TO_GET)


def load_wan_animate(
    model: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    torch_dtype: torch.dtype | None = None,
    memory: str = D.memory,
) -> WanAnimatePipeline:
    """Load diffusers' ``WanAnimatePipeline`` from :func:`locate_wan_animate` and apply the memory profile ``memory``.

    ``device`` and ``torch_dtype`` are plain arguments (the task picks them): every component is loaded in
    ``torch_dtype`` (default float32; bf16 is the release's dtype on a GPU). Cheap checks (memory profile
    against the device, ``ftfy``, the folder's layout) come before any weight is read. Weights are read from
    safetensors only. The applied profile is in :func:`memory_record`, the folder in ``pipe._posevid_source``.
    """
    import torch

    check_memory_profile(memory, device)
    require_ftfy()
    folder = locate_wan_animate(model)
    dtype = torch_dtype or torch.float32
    try:
        with _quiet_libraries():
            pipe = _pipeline_class().from_pretrained(folder, torch_dtype=dtype, use_safetensors=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot load the Wan-Animate model from {folder}: {short_reason(exc)}", hint=HOW_TO_GET) from None
    pipe._posevid_source = {"model": str(model) if model is not None else HUB_ID, "folder": str(folder), "dtype": _dtype_name(dtype)}
    apply_memory_profile(pipe, memory, device=device, compute_dtype=dtype)
    return pipe


def _pipeline_class():
    """diffusers' class; the import happens inside :func:`_quiet_libraries` (it imports transformers' CLIP processor,
    which complains when torchvision is missing although its PIL twin does the same work)."""
    try:
        from diffusers import WanAnimatePipeline
    except ImportError:
        import diffusers

        raise InputError(
            f"{FEATURE} needs diffusers >= 0.36 (WanAnimatePipeline); this is diffusers {diffusers.__version__}",
            hint='pip install "posevid[wan]"',
        ) from None
    return WanAnimatePipeline


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hide diffusers' per-call resize warnings and the loaders' bars (posevid reports resizes as notes).

    Only the loading bars: the denoising bar is the pipeline's own, set with ``set_progress_bar_config``."""
    from diffusers.utils import logging as diffusers_logging

    from posevid.utils.progress import quiet_transformers

    level, bars = diffusers_logging.get_verbosity(), diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    try:
        with quiet_transformers(), warnings.catch_warnings():
            # diffusers 0.42 renamed from_pretrained's torch_dtype to dtype; older releases know only torch_dtype
            warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
            yield
    finally:
        diffusers_logging.set_verbosity(level)
        if bars:
            diffusers_logging.enable_progress_bar()


# ------------------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class SegmentPlan:
    """How diffusers splits ``frames`` into segments: each after the first re-uses ``prev`` frames of the previous one."""

    frames: int
    segment_frame_length: int
    prev: int
    segments: int
    padding: int  # frames added at the end (the pose and face videos are mirrored to this length, then cut off)


def plan_segments(frames: int, segment_frame_length: int, prev: int) -> SegmentPlan:
    """diffusers' segment arithmetic: segments of ``segment_frame_length`` that advance by ``segment_frame_length - prev``."""
    step = segment_frame_length - prev
    rest = (frames - prev) % step
    padding = 0 if rest == 0 else step - rest
    return SegmentPlan(frames, segment_frame_length, prev, (frames + padding) // step, padding)


def check_wan_inputs(
    *,
    frames: int,
    face_frames: int,
    mode: str = "animate",
    background_frames: int | None = None,
    mask_frames: int | None = None,
    height: int,
    width: int,
    segment_frame_length: int = D.segment_frame_length,
    prev_segment_conditioning_frames: int = D.prev_segment_conditioning_frames,
    num_inference_steps: int = D.num_inference_steps,
    guidance_scale: float = D.guidance_scale,
) -> SegmentPlan:
    """Torch-free checks of everything the model would reject late or crash on; each failure is one line."""
    if mode not in MODES:
        raise InputError(f"unknown Wan-Animate mode {mode!r}", hint=f"choose one of {', '.join(MODES)}")
    check_generation_settings(segment_frame_length=segment_frame_length, prev_segment_conditioning_frames=prev_segment_conditioning_frames,
                              num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)  # fmt: skip
    n, L, prev = int(frames), int(segment_frame_length), int(prev_segment_conditioning_frames)
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise InputError(
            f"Wan-Animate needs a height and width that are multiples of {SIZE_MULTIPLE}, got {width}x{height}",
            hint=f"e.g. {_round16(width)}x{_round16(height)}",
        )
    if n <= prev:
        raise InputError(f"the pose video has {n} frame(s); Wan-Animate needs more than {prev} (the conditioning frames)")
    if face_frames != n:
        raise InputError(f"the face video has {face_frames} frames but the pose video has {n}", hint="preprocess both from the same video")
    if mode == "replace":
        if background_frames is None or mask_frames is None:
            raise InputError("replace mode needs the background and mask videos", hint="preprocess the driving video in replace mode")
        for what, count in (("background", background_frames), ("mask", mask_frames)):
            if count != n:
                raise InputError(
                    f"the {what} video has {count} frames but the pose video has {n}", hint="preprocess all from the same video"
                )
    return plan_segments(n, L, prev)


SETTING_NAMES = {
    "segment_frame_length": "segment length", "prev_segment_conditioning_frames": "prev_segment_conditioning_frames",
    "num_inference_steps": "steps", "guidance_scale": "guidance scale",
}  # fmt: skip


def check_generation_settings(
    *,
    segment_frame_length: int = D.segment_frame_length,
    prev_segment_conditioning_frames: int = D.prev_segment_conditioning_frames,
    num_inference_steps: int = D.num_inference_steps,
    guidance_scale: float = D.guidance_scale,
    names: dict[str, str] | None = None,
) -> None:
    """The checks of the settings that need no frames (part of :func:`check_wan_inputs`, and what a front end checks
    before any decoding); each failure is one line. ``names``: how the caller's user spells each argument (e.g. its
    flags), by default :data:`SETTING_NAMES`."""
    name = {**SETTING_NAMES, **(names or {})}
    L, prev = int(segment_frame_length), int(prev_segment_conditioning_frames)
    if prev not in PREV_SEGMENT_FRAMES:
        raise InputError(f"{name['prev_segment_conditioning_frames']} must be 1 or 5, got {prev}")
    if L % TEMPORAL_STRIDE != 1 or prev >= L:
        nearest = TEMPORAL_STRIDE * max(round((L - 1) / TEMPORAL_STRIDE), prev // TEMPORAL_STRIDE + 1) + 1
        raise InputError(
            f"{name['segment_frame_length']} must be 4k+1 frames and more than the {prev} conditioning frame(s) "
            f"({name['prev_segment_conditioning_frames']}), got {L}",
            hint=f"try {nearest} (default {D.segment_frame_length})",
        )
    if int(num_inference_steps) < 1:
        raise InputError(f"{name['num_inference_steps']} must be at least 1, got {num_inference_steps}")
    if guidance_scale < 0:
        raise InputError(f"{name['guidance_scale']} must be >= 0, got {guidance_scale}")


def _round16(x: int) -> int:
    return max(SIZE_MULTIPLE, int(round(x / SIZE_MULTIPLE)) * SIZE_MULTIPLE)


def as_pil(frame, mode: str = "RGB", what: str = "frame") -> Image.Image:
    """A PIL image in ``mode`` from a PIL image or a uint8 array (HxW, HxWx1, HxWx3 or HxWx4; bool masks too).

    Files are read by the caller (the task): this layer takes frames in memory, as the preprocessing returns them.
    """
    from PIL import Image

    if isinstance(frame, Image.Image):
        image = frame
    else:
        array = np.asarray(frame)
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise InputError(f"{what} must be a uint8 image (HxW or HxWx3), got {array.dtype} {array.shape}")
        image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    return image if image.mode == mode else image.convert(mode)


# ------------------------------------------------------------------------------------------------ the call
@dataclass
class WanAnimateOutput:
    """``frames``: uint8 (H, W, 3) per input pose frame; ``video``: the float frames in [0, 1] when asked for."""

    frames: list[np.ndarray]
    plan: SegmentPlan
    size_hw: tuple[int, int]
    video: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def cpu_generator(seed: int):
    """The run's noise source: a CPU generator (posevid's convention: the same seed gives the same video on every device)."""
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


def generate(
    pipe: WanAnimatePipeline,
    *,
    image,
    pose_frames: Sequence,
    face_frames: Sequence,
    mode: str = "animate",
    background_frames: Sequence | None = None,
    mask_frames: Sequence | None = None,
    prompt: str = "",
    negative_prompt: str | None = None,
    num_inference_steps: int = D.num_inference_steps,
    guidance_scale: float = D.guidance_scale,
    segment_frame_length: int = D.segment_frame_length,
    prev_segment_conditioning_frames: int = D.prev_segment_conditioning_frames,
    height: int | None = None,
    width: int | None = None,
    seed: int = 0,
    progress: Progress = no_progress,
    return_video: bool = False,
    show_progress: bool = True,
) -> WanAnimateOutput:
    """Generate one frame per pose frame with ``pipe`` (any length: diffusers' segments).

    ``image``: the reference (PIL or uint8 array). ``pose_frames`` / ``face_frames`` (512x512 crops) and,
    in replace mode, ``background_frames`` / ``mask_frames`` (white = generate, black = keep): uint8 arrays or
    PIL images, one per frame (a 0/1 uint8 mask is read as 0/255: :func:`mask_255`). ``height``/``width``
    default to the pose frames' size. ``progress("denoise", done, total)`` is called after every denoising
    step of every segment (an exception raised there stops the run: that is how a Cancel button works).
    ``negative_prompt`` matters only with ``guidance_scale > 1``.
    """
    from posevid.utils.progress import hide_inner_bar

    if not len(pose_frames):
        raise InputError("the pose video has no frames")
    first = as_pil(pose_frames[0], what="pose frame")
    height = int(height or first.height)
    width = int(width or first.width)
    plan = check_wan_inputs(
        frames=len(pose_frames), face_frames=len(face_frames), mode=mode,
        background_frames=None if background_frames is None else len(background_frames),
        mask_frames=None if mask_frames is None else len(mask_frames), height=height, width=width,
        segment_frame_length=segment_frame_length, prev_segment_conditioning_frames=prev_segment_conditioning_frames,
        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
    )  # fmt: skip
    require_ftfy()
    reference = as_pil(image, what="reference image")
    poses = [as_pil(f, what="pose frame") for f in pose_frames]
    faces = [as_pil(f, what="face frame") for f in face_frames]
    extra: dict[str, Any] = {}
    if mode == "replace":
        extra["background_video"] = [as_pil(f, what="background frame") for f in background_frames]
        masks = [mask_255(f) for f in mask_frames]
        extra["mask_video"] = [as_pil(m, "L", what="mask frame") for m in masks]
    notes = _input_notes(reference, poses, faces, height, width, plan, pipe.transformer.config.motion_encoder_size)
    if mode == "replace" and any(m is not f for m, f in zip(masks, mask_frames, strict=True)):
        notes.append("mask frames given as 0/1 were scaled to 0/255 (white = generate)")

    total = plan.segments * int(num_inference_steps)
    done = 0

    def on_step(_pipe, i, t, callback_kwargs):
        nonlocal done
        done += 1
        progress("denoise", done, total)
        return {}

    pipe.set_progress_bar_config(disable=hide_inner_bar(show_progress), leave=False)
    with _quiet_libraries():
        result = pipe(
            image=reference, pose_video=poses, face_video=faces, prompt=prompt, negative_prompt=negative_prompt,
            height=height, width=width, segment_frame_length=int(segment_frame_length), num_inference_steps=int(num_inference_steps),
            mode=mode, prev_segment_conditioning_frames=int(prev_segment_conditioning_frames), guidance_scale=float(guidance_scale),
            generator=cpu_generator(seed), output_type="np", callback_on_step_end=on_step, **extra,
        )  # fmt: skip
    video = np.asarray(result.frames[0], dtype=np.float32)  # (T, H, W, 3) in [0, 1]
    frames = list(to_uint8(video))
    return WanAnimateOutput(frames=frames, plan=plan, size_hw=(height, width), video=video if return_video else None, notes=notes)


def mask_255(mask):
    """A 0/1 mask array (posevid's preprocessing) as 0/255, the values Wan's mask video holds; anything else unchanged.

    diffusers reads mask pixels as value / 255, so a 0/1 mask would silently mean "keep everything"."""
    array = mask if isinstance(mask, np.ndarray) else None
    if array is not None and array.dtype == np.uint8 and array.size and array.max() == 1:
        return array * np.uint8(255)
    return mask


def to_uint8(video: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] -> uint8, rounded as diffusers' ``numpy_to_pil`` does."""
    return (np.clip(video, 0.0, 1.0) * 255).round().astype(np.uint8)


def _input_notes(reference, poses, faces, height, width, plan: SegmentPlan, face_size: int) -> list[str]:
    """What the pipeline will resize or pad, said once (diffusers logs these as warnings per call)."""
    notes = []
    if reference.size != (width, height):
        notes.append(f"reference image resized from {reference.width}x{reference.height} to {width}x{height} (fill)")
    if poses[0].size != (width, height):
        notes.append(f"pose frames resized from {poses[0].width}x{poses[0].height} to {width}x{height}")
    if faces[0].size != (face_size, face_size):
        notes.append(f"face frames resized from {faces[0].width}x{faces[0].height} to {face_size}x{face_size}")
    if plan.padding:
        notes.append(
            f"{plan.frames} frames run as {plan.segments} segments of {plan.segment_frame_length} "
            f"with {plan.padding} mirrored padding frame(s)"
        )
    return notes


__all__ = [
    "FACE_SIZE",
    "HOW_TO_GET",
    "HUB_ID",
    "MEMORY_HELP",
    "MEMORY_PROFILES",
    "MODES",
    "WAN_ANIMATE_DEFAULTS",
    "SegmentPlan",
    "WanAnimateDefaults",
    "WanAnimateOutput",
    "apply_memory_profile",
    "as_pil",
    "check_generation_settings",
    "check_memory_profile",
    "check_wan_animate_folder",
    "check_wan_inputs",
    "cpu_generator",
    "generate",
    "load_wan_animate",
    "mask_255",
    "locate_wan_animate",
    "memory_record",
    "plan_segments",
    "require_ftfy",
    "to_uint8",
]
