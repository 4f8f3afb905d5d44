"""Wan2.2-Animate (image + driving video -> video), registered as the ``wan-animate`` backbone.

The driving video and the reference image go through posevid's own preprocessing
(:func:`posevid.tasks.wan_preprocess.wan_inputs`: whole-body keypoints offline, Wan's pose and face videos, and in
replace mode the background and mask videos), in memory; diffusers' ``WanAnimatePipeline`` then runs on them
unchanged (:mod:`posevid.pipelines.wan_animate`: loading, memory profiles, segments for any length). The output
frames have the preprocessing's frame rate, ``--fps`` (30 by default, Wan's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from posevid.pipelines.wan_animate import HUB_ID, MEMORY_PROFILES, MODES, PREV_SEGMENT_FRAMES  # torch-free
from posevid.pipelines.wan_animate import WAN_ANIMATE_DEFAULTS as GEN  # the generation's defaults, defined there once
from posevid.tasks.backbones import Backbone, Form, Generated, option
from posevid.tasks.wan_preprocess import WanPreprocessSettings
from posevid.utils.devices import torch_dtype

PRE = WanPreprocessSettings()  # the preprocessing's defaults, defined once there (posevid wan-preprocess shows the same)
NAME = "wan-animate"


@dataclass
class WanAnimateOptions:
    """Wan-Animate's own settings; their defaults are read from where the library defines them: the generation's from
    :data:`posevid.pipelines.wan_animate.WAN_ANIMATE_DEFAULTS`, the preprocessing's from WanPreprocessSettings."""

    mode: str = option(PRE.mode, "--mode", choices=MODES,
                       help="animate: the character moves like the video; replace: the character replaces the person in the video",
                       form=Form("Mode", "dropdown"))  # fmt: skip
    retarget: bool = option(PRE.retarget, "--retarget", switch=True,
                            help="animate mode: rescale the driving poses to the reference's body proportions",
                            form=Form("Retarget the pose to the reference's body (animate mode)", "checkbox"))  # fmt: skip
    prompt: str = option("", "--prompt", metavar="TEXT", help="text prompt (the release is driven by the image and poses; "
                         "a short description helps)", form=Form("Prompt", "text"))  # fmt: skip
    negative_prompt: str | None = option(None, "--negative-prompt", type=str, metavar="TEXT",
                                         help="negative prompt (used with --guidance above 1)",
                                         form=Form("Negative prompt", "text"))  # fmt: skip
    steps: int = option(GEN.num_inference_steps, "--steps", help="denoising steps", form=Form("Steps", "slider", 1, 100, 1))
    guidance: float = option(GEN.guidance_scale, "--guidance", help="classifier-free guidance scale (1: none, the release's)",
                             form=Form("Guidance scale", "slider", 1, 10, 0.5))  # fmt: skip
    segment_length: int = option(GEN.segment_frame_length, "--segment-length", metavar="4K+1",
                                 help="frames per segment; longer videos run as overlapping segments",
                                 form=Form("Segment length (4k+1 frames)", "number", minimum=5, section="Advanced: Wan-Animate"))
    prev_frames: int = option(GEN.prev_segment_conditioning_frames, "--prev-frames", choices=PREV_SEGMENT_FRAMES,
                              help="frames of the previous segment each segment is conditioned on",
                              form=Form("Frames carried between segments", "dropdown", section="Advanced: Wan-Animate"))  # fmt: skip
    area: str = option(PRE.area, "--area", metavar="WxH", help="Wan's resolution area: the pixel budget of the video",
                       form=Form("Resolution area (WxH)", "text", section="Advanced: Wan-Animate"))  # fmt: skip
    max_frames: int | None = option(PRE.max_frames, "--max-frames", type=int, metavar="N",
                                    help="animate only the first N frames (at --fps)",
                                    form=Form("At most this many frames (empty: all)", "number", minimum=1,
                                              section="Advanced: Wan-Animate"))  # fmt: skip
    memory: str = option(GEN.memory, "--memory", choices=tuple(MEMORY_PROFILES), app="--wan-animate-memory",
                         help="memory profile: none, vae-tiling, fp8 (any device); model-offload, group-offload and their "
                              "fp8- variants (GPU)")  # fmt: skip
    estimator: str = option(PRE.estimator, "--estimator", help="whole-body keypoints: mediapipe (Holistic, bundled), or dwpose / "
                            "rtmpose with --det-model and --pose-model (ONNX files)")  # fmt: skip
    det_model: str | None = option(PRE.det_model, "--det-model", type=str, metavar="ONNX", help="YOLOX detector .onnx for dwpose/rtmpose")
    pose_model: str | None = option(PRE.pose_model, "--pose-model", type=str, metavar="ONNX",
                                    help="whole-body DWPose/RTMW .onnx for dwpose/rtmpose")
    body_only: bool = option(PRE.body_only, "--body-only", switch=True,
                             help="body keypoints only (faster): no hands in the pose video, face boxes from the head points")


FLAG_NAMES = {"segment_frame_length": "--segment-length", "prev_segment_conditioning_frames": "--prev-frames",
              "num_inference_steps": "--steps", "guidance_scale": "--guidance"}  # the pipeline's arguments as this backbone's flags


def preprocess_settings(settings) -> WanPreprocessSettings:
    """The preprocessing of this run: the driving video and the image, at the output rate ``--fps``."""
    o: WanAnimateOptions = settings.options
    return WanPreprocessSettings(video=settings.driving_video, image=settings.image, mode=o.mode, retarget=o.retarget, fps=settings.fps,
                                 area=o.area, max_frames=o.max_frames, estimator=o.estimator, det_model=o.det_model,
                                 pose_model=o.pose_model, body_only=o.body_only, quiet=settings.quiet)  # fmt: skip


# ------------------------------------------------------------------------------------------------ hooks
def validate(settings) -> None:
    """Cheap checks (no torch, no decoding): the preprocessing's own, then the generation's."""
    from posevid.pipelines.wan_animate import check_generation_settings, check_memory_profile, require_ftfy
    from posevid.tasks.wan_preprocess import validate as validate_preprocessing

    o: WanAnimateOptions = settings.options
    validate_preprocessing(preprocess_settings(settings))
    check_generation_settings(segment_frame_length=o.segment_length, prev_segment_conditioning_frames=o.prev_frames,
                              num_inference_steps=o.steps, guidance_scale=o.guidance, names=FLAG_NAMES)  # fmt: skip
    check_memory_profile(o.memory)  # the name; the device is checked once chosen (prepare)
    require_ftfy()


def loader(settings, device: str, dtype: str):
    """``(key, load)``: diffusers' ``WanAnimatePipeline`` from ``--model`` (a folder or hub id; none: the release from
    the hub cache), in ``dtype`` on ``device`` with the memory profile applied (part of the key: it changes the pipeline)."""
    o: WanAnimateOptions = settings.options
    model = settings.model or HUB_ID
    key = (NAME, str(model), device, dtype, o.memory)

    def load():
        from posevid.pipelines.wan_animate import load_wan_animate

        return load_wan_animate(model, device=device, torch_dtype=torch_dtype(dtype), memory=o.memory)

    return key, load


def prepare(settings, *, device: str, work, progress, note):
    """The weights located first (offline without them: one line naming what to get, before any decoding), then Wan's
    inputs from the driving video and the image: ``(WanInputs, WanPreprocessInfo)``."""
    from posevid.pipelines.wan_animate import check_memory_profile, locate_wan_animate
    from posevid.tasks.wan_preprocess import wan_inputs

    check_memory_profile(settings.options.memory, device)
    locate_wan_animate(settings.model)
    inputs, info = wan_inputs(preprocess_settings(settings), progress=progress)
    for n in info.notes:
        note(n)
    return inputs, info


def run(pipe, settings, prepared, *, on_frame, progress, note) -> Generated:
    """``WanAnimatePipeline`` on the preprocessed frames (one output frame per pose frame), then each frame to ``on_frame``."""
    from posevid.pipelines.wan_animate import generate, memory_record

    o: WanAnimateOptions = settings.options
    inputs, info = prepared
    replace = o.mode == "replace"
    out = generate(
        pipe, image=inputs.reference_resized, pose_frames=inputs.pose_frames, face_frames=inputs.face_frames, mode=o.mode,
        background_frames=inputs.background_frames if replace else None, mask_frames=inputs.masks if replace else None,
        prompt=o.prompt, negative_prompt=o.negative_prompt, num_inference_steps=o.steps, guidance_scale=o.guidance,
        segment_frame_length=o.segment_length, prev_segment_conditioning_frames=o.prev_frames, seed=settings.seed,
        progress=progress, show_progress=not settings.quiet,
    )  # fmt: skip
    for n in out.notes:
        note(n)
    for number, frame in enumerate(out.frames):
        on_frame(number, frame)
    record = {
        "model": getattr(pipe, "_posevid_source", None) or {"model": str(settings.model or HUB_ID)},
        "mode": o.mode,
        "retarget": o.retarget,
        "prompt": o.prompt,
        "negative_prompt": o.negative_prompt,
        "steps": o.steps,
        "guidance": o.guidance,
        "segment_length": o.segment_length,
        "prev_frames": o.prev_frames,
        "segments": asdict(out.plan),
        "memory": memory_record(pipe),
        "preprocessing": {"area": o.area, "estimator": o.estimator, "body_only": o.body_only, "report": inputs.report.as_dict(),
                          **info.record()},  # fmt: skip
    }
    return Generated(list(range(len(out.frames))), tuple(out.size_hw), record, [*info.notes, *out.notes])


BACKBONE = Backbone(
    name=NAME,
    title="Wan2.2-Animate",
    summary="image + driving video -> video (Wan2.2-Animate-14B through diffusers, on posevid's preprocessing; animate or replace mode)",
    options=WanAnimateOptions,
    validate=validate,
    loader=loader,
    prepare=prepare,
    run=run,
    model_help="Wan-Animate diffusers folder or hub id",
    default_model=HUB_ID,
    accelerator_dtype="bf16",  # the release's dtype
)
