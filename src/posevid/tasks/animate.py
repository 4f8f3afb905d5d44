"""Image + pose -> video, as a library call: :func:`animate` with :class:`AnimateSettings`, for every backbone.

The backbone (``settings.backbone``: DreamPose by default; the registry is :mod:`posevid.tasks.backbones`) turns the
reference image and the pose input into frames; this module is what every backbone shares: the common settings,
checks before anything heavy is imported, the device and dtype, the model cache, and ONE output writer: ``OUT.mp4``,
``OUT.gif``, ``OUT.json`` (sidecar) and ``OUT_frames/frame_N.png`` (or the reference ``test.py`` layout
``DIR/pred_#N.png`` + ``DIR/<backbone>.mp4`` with ``output_dir``), all appearing together and replacing a previous
run's whole set.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from posevid.errors import InputError
from posevid.tasks.backbones import DEFAULT, Backbone, check_driving_video, check_options, check_pose_inputs, get_backbone
from posevid.tasks.common import FrameFiles
from posevid.utils.devices import dtype_for_device, dtype_name, pick_device
from posevid.utils.outputs import OutputSet
from posevid.utils.progress import Progress, no_progress


@dataclass
class AnimateSettings:
    """Everything ``posevid animate`` can be told; the defaults here and in the backbone's options are the only ones.

    ``options``: the backbone's own settings (``DreamPoseOptions``, ...; None: its defaults). Build settings from
    flat values (flags, form fields, job fields) with :func:`settings_from_values`.
    """

    backbone: str = DEFAULT
    image: str | None = None
    driving_video: str | None = None  # a video of someone moving (DreamPose: instead of --densepose, DensePose extracted first)
    model: str | None = None
    out: str | None = None
    output_dir: str | None = None  # the reference test.py layout
    default_dir: str = "outputs"  # where OUT goes when neither out nor output_dir is given
    device: str = "auto"
    dtype: str = "auto"  # auto: fp16 on a GPU (or the backbone's accelerator dtype), fp32 on the CPU
    seed: int = 0
    fps: float = 30.0
    gif: bool = True
    quiet: bool = False
    options: Any = None
    notes: list[str] = field(default_factory=list)  # filled by the run: what was converted

    def __post_init__(self) -> None:
        if self.options is None:
            self.options = get_backbone(self.backbone).options()


COMMON = tuple(f.name for f in fields(AnimateSettings) if f.name not in ("backbone", "options", "notes"))


def settings_from_values(values: Mapping[str, Any], *, spell=None) -> AnimateSettings:
    """Settings from flat values (``{"backbone": ..., "image": ..., "steps": 2, ...}``: flags, form fields, job fields).

    Common fields go to :class:`AnimateSettings`, the rest to the backbone's options; a value the chosen backbone does
    not take is a one-line InputError naming the backbone that does (``spell(backbone, name)``: how the caller's
    user spells that option, by default its flag), and an unknown backbone one listing the known ones.
    """
    values = dict(values)
    backbone = get_backbone(values.pop("backbone", DEFAULT))
    common = {name: values.pop(name) for name in COMMON if name in values}
    check_options(backbone, list(values), spell=spell)
    return AnimateSettings(backbone=backbone.name, **common, options=backbone.make_options(values))


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
        return {"video": d / f"{settings.backbone}.mp4", "frames_dir": d, "png": "pred_#{n}.png", "whole_dir": False}
    else:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(settings.image or "video").stem).strip("_").lower() or "video"
        out = Path(settings.default_dir) / f"{stem}.mp4"
    return {"video": out, "frames_dir": out.with_name(out.stem + "_frames"), "png": "frame_{n}.png", "whole_dir": True}


def validate(settings: AnimateSettings) -> dict[str, Any]:
    """Cheap checks (no torch import): a mistake costs no model time. Returns the output layout."""
    backbone = get_backbone(settings.backbone)
    if not isinstance(settings.options, backbone.options):
        raise InputError(f"--backbone {backbone.name} takes {backbone.options.__name__}, not {type(settings.options).__name__}")
    if not settings.image:
        raise InputError("no reference image given", hint="pass --image IMG (or --key_frame_path)")
    if not Path(settings.image).is_file():
        raise InputError(f"reference image not found: {settings.image}", hint="check --image")
    given = {n for n in backbone.pose_inputs if (settings.driving_video if n == "driving_video" else getattr(settings.options, n))}
    check_pose_inputs(backbone, given, lambda n: "--driving-video" if n == "driving_video" else backbone.flag(n).names[0])
    check_driving_video(settings)  # before the backbone's checks, which may word it for another command (wan-preprocess's VIDEO)
    backbone.validate(settings)
    if settings.dtype != "auto":
        dtype_name(settings.dtype)
    return output_layout(settings)


def _device_dtype(settings: AnimateSettings, backbone: Backbone) -> tuple[str, str]:
    device = pick_device(settings.device)
    return device, dtype_for_device(settings.dtype, device, accelerator=backbone.accelerator_dtype)


def model_key(settings: AnimateSettings) -> tuple:
    """The :class:`~posevid.tasks.common.ModelCache` key :func:`animate` uses for ``settings``, without loading anything:
    jobs with equal keys share one loaded pipeline (a batch runner groups its jobs by it)."""
    backbone = get_backbone(settings.backbone)
    return backbone.loader(settings, *_device_dtype(settings, backbone))[0]


def preload(settings: AnimateSettings, models) -> None:
    """Load the pipeline that :func:`animate` would use for ``settings`` into ``models`` now (the app's ``--preload``)."""
    backbone = get_backbone(settings.backbone)
    models.get(*backbone.loader(settings, *_device_dtype(settings, backbone)))


def animate(settings: AnimateSettings, *, models=None, progress: Progress = no_progress, note=None) -> AnimateResult:
    """Run one ``posevid animate`` job. ``models``: a ModelCache to reuse loaded pipelines across calls."""
    layout = validate(settings)
    backbone = get_backbone(settings.backbone)
    device, dtype = _device_dtype(settings, backbone)
    if device == "cpu" and dtype == "fp16":
        raise InputError("--dtype fp16 is not supported on CPU", hint="use --dtype fp32 or bf16 on CPU")
    note = note or (lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="posevid-animate-") as tmp:
        cond = backbone.prepare(settings, device=device, work=Path(tmp), progress=progress, note=note)
        key, load = backbone.loader(settings, device, dtype)
        t_load = time.time()
        if models is None:
            return _write(backbone, load(), settings, layout, cond, device, dtype, t_load, progress, note)
        with models.use(key, load) as pipe:
            return _write(backbone, pipe, settings, layout, cond, device, dtype, t_load, progress, note)


def _write(backbone: Backbone, pipe, settings, layout, cond, device, dtype, t_load, progress, note) -> AnimateResult:
    """The backbone's frames into one output set: mp4 (streamed), gif, PNG frames and the sidecar."""
    from posevid.utils.outputs import sidecar_payload

    video_path, frames_dir = Path(layout["video"]), Path(layout["frames_dir"])
    gif_path = video_path.with_suffix(".gif") if settings.gif else None
    sidecar = video_path.with_suffix(".json")
    pngs: list[str] = []
    with OutputSet(video_path) as outputs:
        stage_dir = outputs.path(frames_dir) if layout["whole_dir"] else None
        if stage_dir is not None:
            stage_dir.mkdir()

        def png(number: int) -> Path:
            name = layout["png"].format(n=number)
            pngs.append(name)
            return stage_dir / name if stage_dir is not None else outputs.path(frames_dir / name)

        load_s = time.time() - t_load
        t_gen = time.time()
        with FrameFiles(outputs, video=video_path, gif=gif_path, png=png, fps=settings.fps) as sink:
            made = backbone.run(pipe, settings, cond, on_frame=lambda number, frame: sink.write(frame, number), progress=progress,
                                note=note)  # fmt: skip
        gen_s = time.time() - t_gen
        files = [str(video_path)] + ([str(gif_path)] if gif_path else []) + [str(sidecar)]
        files += [str(frames_dir)] if layout["whole_dir"] else [str(frames_dir / n) for n in pngs]
        record = {
            "method": backbone.name,
            "image": str(settings.image),
            "driving_video": str(settings.driving_video) if settings.driving_video else None,
            "frames": made.frame_numbers,
            "model": str(settings.model) if settings.model else None,
            **made.record,
            "seed": settings.seed,
            "device": device,
            "dtype": dtype,
            "size_hw": list(made.size_hw),
            "fps": settings.fps,
            "video": video_path.name,
            "gif": gif_path.name if gif_path else None,
            "frames_dir": str(frames_dir),
            "frame_files": pngs,
            "notes": made.notes,
            "files": files,
            "seconds": {"load": round(load_s, 3), "generate": round(gen_s, 3), "per_frame": round(gen_s / max(1, len(pngs)), 3)},
        }
        outputs.path(sidecar).write_text(json.dumps(sidecar_payload(video_path, record, kind="animate"), indent=2) + "\n")
        outputs.commit(previous_sidecar=sidecar)
    return AnimateResult(video_path, gif_path, sidecar, frames_dir, pngs, list(made.frame_numbers), made.notes,
                         tuple(made.size_hw), {"load": load_s, "generate": gen_s})  # fmt: skip
