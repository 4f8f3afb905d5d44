"""DreamPose (image + DensePose -> video), registered as the ``dreampose`` backbone (the default: ``posevid animate``'s
behaviour before backbones existed, the same pixels and sidecar).

Its conditioning is a DensePose sequence: a folder of ``frame_N_densepose.npy`` (or UV/IUV images, or a detectron2
dump ``.pkl``) given with ``--densepose``, or extracted from ``--driving-video`` first (cached on disk). The reference
``test.py`` spellings (``--pose_folder``, ``--n_steps``, ``--j``/``--min_j``/``--max_j`` ...) are its flags too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from posevid.densepose.options import MIN_SHORT_SIDE, PERSON_RULES, DensePoseOptions  # torch-free
from posevid.errors import InputError
from posevid.pipelines.dreampose_defaults import DREAMPOSE_DEFAULTS as SAMPLING  # torch-free: the pipeline's own defaults
from posevid.pipelines.schedulers import DREAMPOSE_SCHEDULERS  # torch-free
from posevid.tasks.backbones import Backbone, Flag, Form, Generated, check_driving_video, option
from posevid.utils.devices import torch_dtype
from posevid.utils.sizes import parse_size

HOW_TO_GET_WEIGHTS = (
    "download the DreamPose demo checkpoints (demo/custom-chkpts: unet_epoch_499.pth, adapter_499.pth, checkpoint-499/, vae_1499.pth) "
    "and pass --model DIR; for a smoke test: posevid make-tiny --kind dreampose tiny_dp/"
)
DENSEPOSE_SECTION = "Advanced: DensePose extraction"
DENSEPOSE = DensePoseOptions()  # the driving video's extraction defaults, defined once there
WHEN = "with --driving-video: "  # starts the help of posevid densepose's model flags, here as --densepose-*


@dataclass
class DreamPoseOptions:
    """DreamPose's own settings; the defaults here are the only ones (flags, app and batch read them)."""

    densepose: str | None = option(
        None, "--densepose", "--pose_folder", type=str, metavar="DIR_OR_PKL",
        help="folder of frame_N_densepose.npy (reference format), UV/IUV images, or an apply_net dump .pkl",
        form=Form("DensePose poses: a zip of the folder, or frame_N_densepose.npy files", "files", name="DensePose poses", elem="poses",
                  upload="densepose", file_types=(".zip", ".npy")),
    )  # fmt: skip
    # posevid densepose's own --weights, --person and --short-side, as --densepose-* (shared="densepose": one definition)
    densepose_weights: str | None = option(None, "--densepose-weights", shared="densepose", help=WHEN, metavar="PATH",
                                           app="--densepose-weights")
    densepose_person: str = option(
        DENSEPOSE.person, "--densepose-person", shared="densepose", help=WHEN, choices=PERSON_RULES,
        form=Form("Person to follow in the driving video", "dropdown", elem="person",
                  info="top-score: the reference's choice; largest: the biggest box; track: one person followed across frames"),
    )  # fmt: skip
    densepose_short_side: int | None = option(
        DENSEPOSE.short_side, "--densepose-short-side", shared="densepose", help=WHEN,
        form=Form("DensePose short side (pixels)", "number", minimum=MIN_SHORT_SIDE, elem="short-side", section=DENSEPOSE_SECTION,
                  info="driving-video frames are resized to this short side; empty: the model's 800 (the reference). Smaller is "
                       "faster (about 3x at 512 on a CPU) and less exact"),
    )  # fmt: skip
    pose_format: str = option("auto", "--pose-format", choices=("auto", "npy", "uv", "iuv"), help="how to read the pose folder")
    allow_gaps: bool = option(False, "--allow-gaps", switch=True,
                              help="accept missing frame numbers (the window then uses the --window rule there)")
    window: str = option("reference", "--window", choices=("reference", "nearest"),
                         help="missing neighbour in the t-2..t+2 window: centre pose (reference) or nearest existing frame")
    frames: str | None = option(None, "--frames", type=str, metavar="A:B",
                                help="generate only these frames: a slice A:B[:S] of the sorted frame list, or one frame number")
    densepose_size: str | None = option(None, "--densepose-size", type=str, metavar="WxH",
                                        help="image size for a dump .pkl whose images are not at hand")
    densepose_images: str | None = option(None, "--densepose-images", type=str, metavar="DIR",
                                          help="folder of the images a dump .pkl was made from (their size sets the canvas)")
    densepose_empty: str = option("error", "--densepose-empty", choices=("error", "zeros"),
                                  help="frames with nobody: stop or use an empty pose")
    densepose_out: str | None = option(None, "--densepose-out", type=str, metavar="DIR",
                                       help="keep the .npy files converted from a dump .pkl in DIR")
    epoch: int | None = option(None, "--epoch", type=int, metavar="N", app="--dreampose-epoch",
                               help="checkpoint epoch N of unet_epoch_N.pth / adapter_N.pth / checkpoint-N (needed if several)")
    custom_vae: str | None = option(None, "--custom-vae", "--custom_vae", type=str, metavar="PATH", app="--dreampose-vae",
                                    help="finetuned VAE state dict (e.g. vae_1499.pth)")
    clip: str | None = option(None, "--clip", type=str, metavar="ID_OR_DIR",
                              help="CLIP ViT-B/32 image encoder, hub id or folder; unset: MODEL/clip if present, "
                                   "else openai/clip-vit-base-patch32")  # fmt: skip
    scheduler: str = option("pndm", "--scheduler", "--sampler", shared="scheduler", choices=DREAMPOSE_SCHEDULERS,
                            form=Form("Scheduler", "dropdown", elem="scheduler"))  # fmt: skip
    s1: float = option(SAMPLING.s1, "--s1", help="image guidance scale (README demo 8; test.py default 0.5)",
                       form=Form("s1 (image guidance)", "slider", 0, 20, 0.5, elem="s1"))
    s2: float = option(SAMPLING.s2, "--s2", help="pose guidance scale (README demo 3; test.py default 0.5)",
                       form=Form("s2 (pose guidance)", "slider", 0, 20, 0.5, elem="s2"))
    steps: int = option(SAMPLING.num_inference_steps, "--steps", "--n_steps", help="denoising steps",
                        form=Form("Steps", "slider", 1, 200, 1, elem="steps"))
    frame_batch: int = option(SAMPLING.frame_batch_size, "--frame-batch", metavar="K",
                              help="frames per UNet call (same frames with the deterministic schedulers; faster on GPUs, "
                                   "memory grows with K)")  # fmt: skip
    stretch: bool = option(True, "--no-stretch", switch=False,
                           help="write the decoder output as is, not the reference's per-frame min-max stretch")


# test.py's frame selection (--j, --min_j, --max_j) and the flags it accepts and ignores
_IGNORED = ("strength", "iters", "batch_size", "test_poses", "pose_path")
EXTRA_FLAGS = (
    ("j", Flag(("--j",), type=int, hidden=True)),
    ("min_j", Flag(("--min_j",), type=int, help="first index into the sorted frame list (test.py)")),
    ("max_j", Flag(("--max_j",), type=int, help="end index into the sorted frame list (test.py; -1 = to the end)")),
    *((name, Flag((f"--{name}",), type=str, hidden=True)) for name in _IGNORED),
)


def from_flags(values: dict[str, Any]) -> dict[str, Any]:
    """test.py's ``--j`` / ``--min_j`` / ``--max_j`` as the ``frames`` slice (``--frames`` wins); its ignored flags dropped."""
    values = dict(values)
    j, min_j, max_j = (values.pop(k, None) for k in ("j", "min_j", "max_j"))
    for name in _IGNORED:
        values.pop(name, None)
    if not values.get("frames"):
        if j is not None and j >= 0:
            values["frames"] = f"{j}:{j + 1}"
        elif min_j is not None or (max_j is not None and max_j != -1):
            values["frames"] = f"{min_j or 0}:{'' if max_j in (None, -1) else max_j}"
    return values


def densepose_options(o: DreamPoseOptions) -> DensePoseOptions:
    """How a driving video's DensePose is extracted: the ``densepose_*`` options, the other model options' defaults."""
    return DensePoseOptions(weights=o.densepose_weights, person=o.densepose_person, short_side=o.densepose_short_side)


# ------------------------------------------------------------------------------------------------ hooks
def validate(settings) -> None:
    """DreamPose's cheap checks (no torch import); the task has checked that one pose input is given."""
    from posevid.pipelines.schedulers import canonical_name

    o: DreamPoseOptions = settings.options
    if o.densepose and not Path(o.densepose).exists():
        raise InputError(f"pose input not found: {o.densepose}", hint="check --densepose")
    check_driving_video(settings)
    densepose_options(o).validate(flag_prefix="--densepose-")
    if not settings.model:
        raise InputError("no model given", hint=HOW_TO_GET_WEIGHTS)
    if o.custom_vae and not Path(o.custom_vae).is_file():
        raise InputError(f"custom VAE not found: {o.custom_vae}", hint="check --custom-vae (e.g. demo/custom-chkpts/vae_1499.pth)")
    canonical_name(o.scheduler, DREAMPOSE_SCHEDULERS)
    if o.steps < 1:
        raise InputError(f"--steps {o.steps} must be at least 1")
    if not isinstance(o.frame_batch, int) or o.frame_batch < 1:
        raise InputError(f"--frame-batch must be an integer >= 1, got {o.frame_batch!r}")


def loader(settings, device: str, dtype: str):
    """``(key, load)`` of the DreamPose pipeline: the ModelCache key and the loader (a caller can preload it)."""
    o: DreamPoseOptions = settings.options
    key = ("dreampose", str(settings.model), o.epoch, o.custom_vae, o.clip, device, dtype)

    def load():
        from posevid.pipelines.dreampose import DreamPosePipeline

        return DreamPosePipeline.from_pretrained(settings.model, epoch=o.epoch, custom_vae=o.custom_vae, clip=o.clip, device=device,
                                                 dtype=torch_dtype(dtype))  # fmt: skip

    return key, load


@dataclass
class DensePoseInput:
    sequence: Any  # posevid.data.dreampose_poses.DensePoseSequence
    frames: list[int] | None  # the selected frame numbers (None: all)


def prepare(settings, *, device: str, work: Path, progress, note) -> DensePoseInput:
    """The DensePose sequence: read from ``--densepose`` (converted into ``work`` or ``--densepose-out``), or extracted
    from ``--driving-video`` once per video and cached (the pipeline resizes it to the image size)."""
    from posevid.data.dreampose_poses import DensePoseSequence, resolve_pose_source

    o: DreamPoseOptions = settings.options
    if settings.driving_video:
        from posevid.densepose.extract import densepose_folder_for
        from posevid.densepose.weights import resolve_weights

        weights = resolve_weights(o.densepose_weights, flag="--densepose-weights")  # hints name animate's (and app's) flag
        options = replace(densepose_options(o), weights=weights, device=device)
        pose_dir = densepose_folder_for(settings.driving_video, options, progress=not settings.quiet, report=progress)
    else:
        wh = parse_size(o.densepose_size, flag="--densepose-size")
        size = (wh.height, wh.width) if wh else None  # the pose canvas is (H, W)
        out = Path(o.densepose_out) if o.densepose_out else work / "poses"
        pose_dir = resolve_pose_source(o.densepose, out, image_size=size, image_root=o.densepose_images, empty=o.densepose_empty)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = DensePoseSequence.from_folder(pose_dir, pose_format=o.pose_format, window=o.window, allow_gaps=o.allow_gaps)
    for w in caught:
        note(str(w.message))
    return DensePoseInput(seq, seq.select(o.frames))


def run(pipe, settings, cond: DensePoseInput, *, on_frame, progress, note) -> Generated:
    """One frame per pose, each handed to ``on_frame`` as it is decoded (min-max stretched unless ``--no-stretch``)."""
    from posevid.pipelines.dreampose import SCHEDULERS
    from posevid.pipelines.schedulers import swap_scheduler

    o: DreamPoseOptions = settings.options
    swap_scheduler(pipe, o.scheduler, SCHEDULERS, pin_defaults=True)
    image, notes = pipe.prepare_image(settings.image)
    for n in notes:
        note(n)
    total = len(cond.frames) if cond.frames is not None else len(cond.sequence.frames)
    done = 0

    def frame_callback(i: int, number: int, raw, stretched) -> None:
        nonlocal done
        on_frame(number, stretched if o.stretch else raw)
        done += 1
        progress("frames", done, total)

    result = pipe(image, cond.sequence, frame_batch_size=o.frame_batch, frames=cond.frames, s1=o.s1, s2=o.s2,
                  num_inference_steps=o.steps, seed=settings.seed, return_frames=False, frame_callback=frame_callback,
                  show_progress=not settings.quiet)  # fmt: skip
    seq = cond.sequence
    record = {
        "densepose": str(o.densepose) if o.densepose else None,
        "densepose_person": o.densepose_person if settings.driving_video else None,
        "densepose_short_side": o.densepose_short_side if settings.driving_video else None,
        "pose_format": seq.pose_format,
        "window": o.window,
        "windows": {str(n): seq.window_of(n) for n in result.frame_numbers},
        "model": pipe.source or {"folder": str(settings.model)},
        "scheduler": o.scheduler,
        "frame_batch": o.frame_batch,
        "steps": o.steps,
        "s1_image_guidance": o.s1,
        "s2_pose_guidance": o.s2,
        "minmax_stretch": o.stretch,
    }
    return Generated(list(result.frame_numbers), tuple(pipe.image_size), record, notes)


BACKBONE = Backbone(
    name="dreampose",
    title="DreamPose",
    summary="image + DensePose -> video (DreamPose, 2023); pose from --densepose or extracted from --driving-video",
    options=DreamPoseOptions,
    validate=validate,
    loader=loader,
    prepare=prepare,
    run=run,
    model_help="DreamPose release folder (unet_epoch_N.pth ...) or posevid folder",
    pose_inputs=("densepose", "driving_video"),
    extra_flags=EXTRA_FLAGS,
    from_flags=from_flags,
)
