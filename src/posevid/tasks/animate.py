"""Image + DensePose -> video with DreamPose, as a library call: :func:`animate` with :class:`AnimateSettings`.

Writes ``OUT.mp4``, ``OUT.gif``, ``OUT.json`` (sidecar) and ``OUT_frames/frame_N.png`` (or the reference
``test.py`` layout ``DIR/pred_#N.png`` + ``DIR/dreampose.mp4`` with ``output_dir``). Inputs are checked before
anything heavy is imported; all files appear together, replacing a previous run's whole set.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posevid.densepose.options import DensePoseOptions  # torch-free
from posevid.errors import InputError
from posevid.utils.devices import dtype_for_device, dtype_name, pick_device, torch_dtype
from posevid.utils.outputs import OutputSet
from posevid.utils.progress import Progress, no_progress

_DENSEPOSE = DensePoseOptions()  # the driving video's extraction defaults, defined once there

HOW_TO_GET_WEIGHTS = (
    "download the DreamPose demo checkpoints (demo/custom-chkpts: unet_epoch_499.pth, adapter_499.pth, checkpoint-499/, vae_1499.pth) "
    "and pass --model DIR; for a smoke test: posevid make-tiny --kind dreampose tiny_dp/"
)


@dataclass
class AnimateSettings:
    """Everything ``posevid animate`` can be told; the defaults here are the only ones."""

    image: str | None = None
    densepose: str | None = None
    driving_video: str | None = None  # instead of densepose: DensePose extracted from it first (cached on disk)
    densepose_weights: str | None = None  # with driving_video: DensePose R-CNN weights (.pkl or .safetensors)
    densepose_person: str = _DENSEPOSE.person  # with driving_video: top-score | largest | track
    densepose_short_side: int | None = _DENSEPOSE.short_side  # with driving_video: None = the model's 800 (the reference)
    model: str | None = None
    out: str | None = None
    output_dir: str | None = None  # the reference test.py layout
    default_dir: str = "outputs"  # where OUT goes when neither out nor output_dir is given
    pose_format: str = "auto"
    allow_gaps: bool = False
    window: str = "reference"
    frames: str | None = None
    densepose_size: str | None = None
    densepose_images: str | None = None
    densepose_empty: str = "error"
    densepose_out: str | None = None
    epoch: int | None = None
    custom_vae: str | None = None
    clip: str | None = None
    scheduler: str = "pndm"
    device: str = "auto"
    dtype: str = "auto"  # auto: fp16 on a GPU, fp32 on the CPU
    s1: float = 8.0
    s2: float = 3.0
    steps: int = 100
    seed: int = 0
    frame_batch: int = 1
    fps: float = 30.0
    stretch: bool = True
    gif: bool = True
    quiet: bool = False
    notes: list[str] = field(default_factory=list)  # filled by the run: what was converted

    def densepose_options(self) -> DensePoseOptions:
        """How a driving video's DensePose is extracted: these ``densepose_*`` fields, the other options' defaults."""
        return DensePoseOptions(weights=self.densepose_weights, person=self.densepose_person, short_side=self.densepose_short_side)


@dataclass
class AnimateResult:
    video: Path
    gif: Path | None
    sidecar: Path
    frames_dir: Path
    frame_files: list[str]
    frames: list[int]
    notes: list[str]
    size_hw: tuple[int, int]
    seconds: dict[str, float]

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.video, self.gif, self.sidecar) if p is not None]


def output_layout(settings: AnimateSettings) -> dict[str, Any]:
    """Where the video, frames and sidecar go; without ``out`` or ``output_dir``: ``outputs/<image stem>.mp4``."""
    if settings.out:
        out = Path(settings.out)
        if out.suffix.lower() != ".mp4":
            raise InputError(f"--out {out} must end in .mp4", hint="e.g. --out result.mp4")
    elif settings.output_dir:
        d = Path(settings.output_dir)
        return {"video": d / "dreampose.mp4", "frames_dir": d, "png": "pred_#{n}.png", "whole_dir": False}
    else:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(settings.image or "video").stem).strip("_").lower() or "video"
        out = Path(settings.default_dir) / f"{stem}.mp4"
    return {"video": out, "frames_dir": out.with_name(out.stem + "_frames"), "png": "frame_{n}.png", "whole_dir": True}


def validate(settings: AnimateSettings) -> dict[str, Any]:
    """Cheap checks (no torch import): a mistake costs no model time."""
    from posevid.pipelines.schedulers import DREAMPOSE_SCHEDULERS, canonical_name

    if not settings.image:
        raise InputError("no reference image given", hint="pass --image IMG (or --key_frame_path)")
    if not Path(settings.image).is_file():
        raise InputError(f"reference image not found: {settings.image}", hint="check --image")
    if settings.densepose and settings.driving_video:
        raise InputError("give either --densepose or --driving-video, not both")
    if not settings.densepose and not settings.driving_video:
        raise InputError("no pose input given", hint="pass --densepose DIR_OR_PKL (or --pose_folder) or --driving-video VIDEO")
    if settings.densepose and not Path(settings.densepose).exists():
        raise InputError(f"pose input not found: {settings.densepose}", hint="check --densepose")
    if settings.driving_video and not Path(settings.driving_video).is_file():
        raise InputError(f"driving video not found: {settings.driving_video}", hint="check --driving-video")
    settings.densepose_options().validate(flag_prefix="--densepose-")
    if not settings.model:
        raise InputError("no model given", hint=HOW_TO_GET_WEIGHTS)
    if settings.custom_vae and not Path(settings.custom_vae).is_file():
        raise InputError(f"custom VAE not found: {settings.custom_vae}", hint="check --custom-vae (e.g. demo/custom-chkpts/vae_1499.pth)")
    canonical_name(settings.scheduler, DREAMPOSE_SCHEDULERS)
    if settings.steps < 1:
        raise InputError(f"--steps {settings.steps} must be at least 1")
    if not isinstance(settings.frame_batch, int) or settings.frame_batch < 1:
        raise InputError(f"--frame-batch must be an integer >= 1, got {settings.frame_batch!r}")
    if settings.dtype != "auto":
        dtype_name(settings.dtype)
    return output_layout(settings)


def animate(settings: AnimateSettings, *, models=None, progress: Progress = no_progress, note=None) -> AnimateResult:
    """Run one ``posevid animate`` job. ``models``: a ModelCache to reuse loaded pipelines across calls."""
    layout = validate(settings)
    device = pick_device(settings.device)
    dtype = dtype_for_device(settings.dtype, device)
    if device == "cpu" and dtype == "fp16":
        raise InputError("--dtype fp16 is not supported on CPU", hint="use --dtype fp32 or bf16 on CPU")
    note = note or (lambda msg: None)

    import tempfile

    from posevid.data.dreampose_poses import DensePoseSequence, resolve_pose_source
    from posevid.utils.sizes import parse_size

    with tempfile.TemporaryDirectory(prefix="posevid-dp-") as tmp:
        work = Path(settings.densepose_out) if settings.densepose_out else Path(tmp) / "poses"
        wh = parse_size(settings.densepose_size, flag="--densepose-size")
        size = (wh.height, wh.width) if wh else None  # the pose canvas is (H, W)
        if settings.driving_video:  # DensePose extracted once per video and cached; the pipeline resizes it to the image size
            from dataclasses import replace

            from posevid.densepose.extract import densepose_folder_for
            from posevid.densepose.weights import resolve_weights

            weights = resolve_weights(settings.densepose_weights, flag="--densepose-weights")  # hints name animate's (and app's) flag
            options = replace(settings.densepose_options(), weights=weights, device=device)
            pose_dir = densepose_folder_for(settings.driving_video, options, progress=not settings.quiet, report=progress)
        else:
            pose_dir = resolve_pose_source(
                settings.densepose, work, image_size=size, image_root=settings.densepose_images, empty=settings.densepose_empty
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seq = DensePoseSequence.from_folder(pose_dir, pose_format=settings.pose_format, window=settings.window,
                                                allow_gaps=settings.allow_gaps)  # fmt: skip
        for w in caught:
            note(str(w.message))
        frames = seq.select(settings.frames)

        key, load = pipeline_loader(settings, device, dtype)
        t_load = time.time()
        if models is None:
            return _run(load(), settings, layout, seq, frames, device, dtype, t_load, progress, note)
        with models.use(key, load) as pipe:
            return _run(pipe, settings, layout, seq, frames, device, dtype, t_load, progress, note)


def model_key(settings: AnimateSettings) -> tuple:
    """The :class:`~posevid.tasks.common.ModelCache` key :func:`animate` uses for ``settings``, without loading anything:
    jobs with equal keys share one loaded pipeline (a batch runner groups its jobs by it)."""
    device = pick_device(settings.device)
    return pipeline_loader(settings, device, dtype_for_device(settings.dtype, device))[0]


def pipeline_loader(settings: AnimateSettings, device: str, dtype: str):
    """``(key, load)`` of the DreamPose pipeline for ``settings``: the ModelCache key and the loader (a caller can preload it)."""
    key = ("dreampose", str(settings.model), settings.epoch, settings.custom_vae, settings.clip, device, dtype)

    def load():
        from posevid.pipelines.dreampose import DreamPosePipeline

        return DreamPosePipeline.from_pretrained(
            settings.model, epoch=settings.epoch, custom_vae=settings.custom_vae, clip=settings.clip, device=device,
            dtype=torch_dtype(dtype),
        )  # fmt: skip

    return key, load


def _run(pipe, settings, layout, seq, frames, device, dtype, t_load, progress, note) -> AnimateResult:
    from PIL import Image

    from posevid.pipelines.dreampose import SCHEDULERS
    from posevid.pipelines.schedulers import swap_scheduler
    from posevid.utils.outputs import sidecar_payload
    from posevid.video import VideoWriter, write_gif

    swap_scheduler(pipe, settings.scheduler, SCHEDULERS, pin_defaults=True)
    pil, notes = pipe.prepare_image(settings.image)
    for n in notes:
        note(n)
    load_s = time.time() - t_load
    video_path, frames_dir = Path(layout["video"]), Path(layout["frames_dir"])
    gif_path = video_path.with_suffix(".gif") if settings.gif else None
    sidecar = video_path.with_suffix(".json")
    total = len(frames) if frames is not None else len(seq.frames)
    kept: list = []
    pngs: list[str] = []
    with OutputSet(video_path) as outputs:
        stage_dir = outputs.path(frames_dir) if layout["whole_dir"] else None
        if stage_dir is not None:
            stage_dir.mkdir()
        video = VideoWriter(outputs.path(video_path), fps=settings.fps)

        def on_frame(i: int, number: int, raw, stretched) -> None:
            frame = stretched if settings.stretch else raw
            name = layout["png"].format(n=number)
            target = stage_dir / name if stage_dir is not None else outputs.path(frames_dir / name)
            Image.fromarray(frame).save(target)
            pngs.append(name)
            video.write(frame)
            if settings.gif:
                kept.append(frame)
            progress("frames", len(pngs), total)

        t_gen = time.time()
        try:
            result = pipe(
                pil, seq, frame_batch_size=settings.frame_batch, frames=frames, s1=settings.s1, s2=settings.s2,
                num_inference_steps=settings.steps, seed=settings.seed, return_frames=False, frame_callback=on_frame,
                show_progress=not settings.quiet,
            )  # fmt: skip
            video.close()
        except BaseException:
            video.abort()
            raise
        gen_s = time.time() - t_gen
        if gif_path is not None:
            write_gif(outputs.path(gif_path), kept, fps=settings.fps)
        files = [str(video_path)] + ([str(gif_path)] if gif_path else []) + [str(sidecar)]
        files += [str(frames_dir)] if layout["whole_dir"] else [str(frames_dir / n) for n in pngs]
        record = {
            "method": "dreampose",
            "image": str(settings.image),
            "densepose": str(settings.densepose) if settings.densepose else None,
            "driving_video": str(settings.driving_video) if settings.driving_video else None,
            "densepose_person": settings.densepose_person if settings.driving_video else None,
            "densepose_short_side": settings.densepose_short_side if settings.driving_video else None,
            "pose_format": seq.pose_format,
            "window": settings.window,
            "frames": result.frame_numbers,
            "windows": {str(n): seq.window_of(n) for n in result.frame_numbers},
            "model": pipe.source or {"folder": str(settings.model)},
            "scheduler": settings.scheduler,
            "frame_batch": settings.frame_batch,
            "steps": settings.steps,
            "s1_image_guidance": settings.s1,
            "s2_pose_guidance": settings.s2,
            "seed": settings.seed,
            "device": device,
            "dtype": dtype,
            "size_hw": list(pipe.image_size),
            "minmax_stretch": settings.stretch,
            "fps": settings.fps,
            "video": video_path.name,
            "gif": gif_path.name if gif_path else None,
            "frames_dir": str(frames_dir),
            "frame_files": pngs,
            "notes": notes,
            "files": files,
            "seconds": {"load": round(load_s, 3), "generate": round(gen_s, 3), "per_frame": round(gen_s / max(1, len(pngs)), 3)},
        }
        outputs.path(sidecar).write_text(json.dumps(sidecar_payload(video_path, record, kind="animate"), indent=2) + "\n")
        outputs.commit(previous_sidecar=sidecar)
    return AnimateResult(video_path, gif_path, sidecar, frames_dir, pngs, list(result.frame_numbers), notes,
                         tuple(pipe.image_size), {"load": load_s, "generate": gen_s})  # fmt: skip
