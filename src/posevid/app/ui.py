"""The Gradio Blocks of ``posevid app``: Pose, Text -> video, Image -> video and History tabs.

The UI only collects form values, checks uploads and shows results; the work goes through the job
queue (:mod:`posevid.app.jobs`) to the back-end functions (:mod:`posevid.app.backend`). Every control
the form shows reaches the pipeline (the original demo silently dropped frames/stride/crop), and every
result records the settings that made it, so the History tab can load them back into the form.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from posevid.app import backend
from posevid.app.jobs import Job, JobCancelled, JobQueue
from posevid.app.server import AppConfig
from posevid.app.uploads import check_upload, collect_densepose
from posevid.densepose.config import DensePoseConfig
from posevid.densepose.options import MIN_SHORT_SIDE, PERSON_RULES
from posevid.errors import PosevidError
from posevid.utils.media import KEYPOINT_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger("posevid.app")

POSE_STYLES = ["fyp", "mmpose", "openpose"]
POSE_SIZES = ["source", "512x512", "256x256", "768x768"]
POSE_TYPES = ["auto", "raw video", "skeleton video", "keypoints"]
KIND_LABEL = {"pose": "pose", "t2v": "text → video", "i2v": "image → video"}
HISTORY_HEADERS = ["#", "kind", "time", "settings", "result"]


def _readable_image_errors(component: gr.Image) -> gr.Image:
    """Give unreadable image uploads a one-line message instead of Gradio's generic "Error".

    Wraps this one component's ``preprocess`` (a subclass would make Gradio write a ``.pyi`` stub
    next to this module at import time).
    """
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception:
            raise gr.Error("Reference image: the upload is not a readable image (use a PNG or JPEG file)", print_exception=False) from None

    component.preprocess = preprocess
    return component


class AppState:
    """Server-wide state shared by all sessions: the job queue and the model cache."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.jobs = JobQueue(config.output_path, concurrency=config.concurrency)
        self.models = backend.ModelCache()

    def t2v_settings(self, **values: Any) -> backend.GenerateSettings:
        """The generate task's settings for one request: the form's values over the task's defaults, the server's model."""
        if not self.config.model:
            raise PosevidError("no text -> video model loaded", hint="start the app with --model FOLLOWYOURPOSE_DIR")
        c = self.config
        return backend.GenerateSettings(model=str(Path(c.model).expanduser().resolve()), **backend.placement(c.device, c.dtype), **values)

    def preload(self) -> None:
        """Load the configured models now (``--preload``), so the first request does not wait."""
        if self.config.model:
            from posevid.tasks.generate import preload

            preload(self.t2v_settings(), self.models)  # under the key the generate task looks up
        if self.config.dreampose_model:
            c = self.config  # the image -> video tab runs the animate task, so its pipeline is preloaded under the task's key
            backend.preload_dreampose(self.models, model=c.dreampose_model, epoch=c.dreampose_epoch, custom_vae=c.dreampose_vae,
                                      device=c.device, dtype=c.dtype)

    def check_dreampose(self) -> None:
        if not self.config.dreampose_model:
            raise PosevidError("no image -> video model loaded", hint="start the app with --dreampose-model DIR")

    def densepose_weights(self) -> str | None:
        """The DensePose weights for driving videos: ``--densepose-weights``, checked again per request (files move)."""
        weights = self.config.densepose_weights
        if weights and not Path(weights).expanduser().is_file():
            raise PosevidError(f"DensePose weights not found: {weights}",
                               hint="restart the app with --densepose-weights PATH of an existing .pkl or .safetensors file")
        return weights


def _owner(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "anon")[:16]


def _friendly(fn: Callable) -> Callable:
    """Show user mistakes as their one-line message and anything else as a short note (logged here)."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except gr.Error:
            raise
        except JobCancelled:
            raise gr.Error("Cancelled.", title="Cancelled", print_exception=False) from None
        except PosevidError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Internal error ({type(exc).__name__}); the details are in the server log.", print_exception=False) from None

    return wrapper


async def _wait(state: AppState, job: Job, progress: gr.Progress) -> Any:
    """Forward the job's progress to Gradio until it ends; re-raise its error here.

    Async on purpose: when Gradio cancels the event (Cancel button, closed tab, API client's cancel),
    the ``CancelledError`` lands here and is passed on to the job, which stops at its next step.
    """
    try:
        while not job.done:
            ahead = state.jobs.position(job)
            if ahead:
                progress(None, desc=f"queued ({ahead - 1} ahead)")
            elif job.total:
                progress((min(job.step, job.total), job.total), desc=job.desc, unit="steps")
            else:
                progress(None, desc=job.desc)
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        job.cancel()
        raise
    if job.error is not None:
        raise job.error
    return job.result


def _size(text: str) -> str | None:
    """The pose task's ``size`` (WxH, read by ``utils.sizes.parse_size``) for a choice of the size dropdown."""
    return None if text == "source" else text


def _history_rows(history: list[dict]) -> list[list[Any]]:
    rows = []
    for entry in history:
        summary = ", ".join(f"{k}={v}" for k, v in entry["summary"].items())
        rows.append([entry["n"], KIND_LABEL[entry["kind"]], entry["time"], summary, entry["result"]])
    return rows


def _history_choices(history: list[dict]) -> list[tuple[str, str]]:
    return [(f"#{e['n']} {KIND_LABEL[e['kind']]} ({e['time']})", str(e["n"])) for e in history]


def _add_history(history: list[dict], kind: str, settings: dict, summary: dict, result: Path, root: Path) -> list[dict]:
    """Append one result; its file is shown relative to the output folder (the page never sees server paths)."""
    try:
        shown = Path(result).resolve().relative_to(root).as_posix()
    except ValueError:
        shown = Path(result).name
    entry = {"n": len(history) + 1, "kind": kind, "time": time.strftime("%H:%M:%S"), "settings": settings,
             "summary": summary, "result": shown}
    return [*history, entry]


def _examples_dir(config: AppConfig) -> Path | None:
    repo_examples = Path(__file__).resolve().parents[3] / "examples"
    candidates = [config.examples_dir] if config.examples_dir else [Path.cwd() / "examples", repo_examples]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def build_app(config: AppConfig) -> gr.Blocks:
    """The whole UI. ``config.output_path`` must already be prepared (see ``server.prepare_environment``)."""
    state = AppState(config)
    max_bytes = config.max_upload_bytes
    examples = _examples_dir(config)

    with gr.Blocks(title="posevid", analytics_enabled=False) as demo:
        demo.posevid_state = state  # reachable from tests and embedding code
        gr.Markdown("# posevid\nMake a video of a character follow a pose: extract a pose, then animate it from text "
                    "(Follow-Your-Pose) or from an image (DreamPose).")
        history = gr.State([])
        with gr.Tabs(selected="pose", elem_id="tabs") as tabs:
            # ---------------------------------------------------------------- Pose
            pose_default = backend.PoseSettings()  # the pose task's defaults, the only ones (posevid pose shows the same)
            with gr.Tab("Pose", id="pose", elem_id="tab-pose"), gr.Row():
                with gr.Column():
                    pose_video = gr.Video(label="Input video", sources=["upload"], include_audio=True, height=360, elem_id="pose-video")
                    if examples is not None:
                        files = [str(p) for p in sorted(examples.glob("*.mp4"))]
                        if files:
                            gr.Examples(examples=[[f] for f in files], inputs=[pose_video], label="Examples")
                    pose_style = gr.Dropdown(POSE_STYLES, value=pose_default.style, label="Skeleton style",
                                             info="fyp: colours the released Follow-Your-Pose model expects", elem_id="pose-style")
                    pose_smoothing = gr.Checkbox(value=not pose_default.no_smooth, label="Smooth keypoints over time",
                                                 elem_id="pose-smoothing")
                    pose_stride = gr.Slider(1, 10, value=pose_default.stride, step=1, label="Frame stride", info="keep every N-th frame",
                                            elem_id="pose-stride")
                    pose_size = gr.Dropdown(POSE_SIZES, value=pose_default.size or "source", label="Skeleton video size",
                                            elem_id="pose-size")
                    with gr.Row():
                        pose_run = gr.Button("Extract pose", variant="primary", elem_id="pose-run")
                        pose_cancel = gr.Button("Cancel", variant="stop", elem_id="pose-cancel")
                with gr.Column():
                    with gr.Row():
                        pose_skeleton = gr.Video(label="Skeleton", interactive=False, height=360, elem_id="pose-skeleton")
                        pose_overlay = gr.Video(label="Overlay", interactive=False, height=360, elem_id="pose-overlay")
                    pose_info = gr.Markdown(elem_id="pose-info")
                    pose_keypoints = gr.File(label="Keypoints (JSON)", interactive=False, height=90, elem_id="pose-keypoints")
                    pose_use = gr.Button("Use this pose for text → video", elem_id="pose-use")

            # ---------------------------------------------------------------- Text -> video
            with gr.Tab("Text → video", id="t2v", elem_id="tab-t2v"):
                t2v_default = backend.GenerateSettings()  # the task's defaults, the only ones (posevid generate shows the same)
                if not config.model:
                    gr.Markdown("No Follow-Your-Pose model: start the app with `--model DIR` to generate.")
                with gr.Row():
                    with gr.Column():
                        t2v_prompt = gr.Textbox(label="Prompt", value="Iron man on the beach", elem_id="t2v-prompt")
                        t2v_negative = gr.Textbox(label="Negative prompt", value=t2v_default.negative_prompt or "", elem_id="t2v-negative")
                        t2v_pose = gr.File(label="Pose: raw video, skeleton video or keypoints file",
                                           file_types=[*VIDEO_SUFFIXES, *KEYPOINT_SUFFIXES], elem_id="t2v-pose")
                        t2v_pose_type = gr.Radio(POSE_TYPES, value="auto", label="Pose input is", elem_id="t2v-pose-type")
                        with gr.Row():
                            t2v_frames = gr.Slider(1, 64, value=t2v_default.video_length, step=1, label="Frames", elem_id="t2v-frames")
                            t2v_stride = gr.Slider(1, 20, value=t2v_default.stride, step=1, label="Pose frame stride", elem_id="t2v-stride")
                        with gr.Row():
                            t2v_steps = gr.Slider(1, 100, value=t2v_default.steps, step=1, label="Steps", elem_id="t2v-steps")
                            t2v_guidance = gr.Slider(1, 30, value=t2v_default.guidance, step=0.5, label="Guidance scale",
                                                     elem_id="t2v-guidance")
                        with gr.Row():
                            t2v_scheduler = gr.Dropdown(backend.scheduler_names("followyourpose"), value=t2v_default.scheduler,
                                                        label="Scheduler", elem_id="t2v-scheduler")
                            t2v_seed = gr.Number(value=t2v_default.seed, precision=0, label="Seed", elem_id="t2v-seed")
                        with gr.Row():
                            t2v_width = gr.Slider(64, 1024, value=t2v_default.width, step=64, label="Width", elem_id="t2v-width")
                            t2v_height = gr.Slider(64, 1024, value=t2v_default.height, step=64, label="Height", elem_id="t2v-height")
                        with gr.Row():
                            t2v_run = gr.Button("Generate", variant="primary", elem_id="t2v-run")
                            t2v_cancel = gr.Button("Cancel", variant="stop", elem_id="t2v-cancel")
                    with gr.Column():
                        t2v_video = gr.Video(label="Skeleton | result", interactive=False, height=360, elem_id="t2v-video")
                        t2v_info = gr.Markdown(elem_id="t2v-info")
                        t2v_files = gr.File(label="Downloads (mp4, gif, settings)", file_count="multiple", interactive=False,
                                            elem_id="t2v-files")

            # ---------------------------------------------------------------- Image -> video
            with gr.Tab("Image → video", id="i2v", elem_id="tab-i2v"):
                i2v_default = backend.AnimateSettings()  # the animate task's defaults (posevid animate shows the same)
                if not config.dreampose_model:
                    gr.Markdown("No DreamPose model: start the app with `--dreampose-model DIR` to animate images.")
                with gr.Row():
                    with gr.Column():
                        i2v_image = _readable_image_errors(gr.Image(label="Reference image", type="filepath", format="png",
                                                                  sources=["upload"], elem_id="i2v-image"))
                        with gr.Row():  # the pose: DensePose files, or a driving video they are extracted from
                            i2v_poses = gr.File(label="DensePose poses: a zip of the folder, or frame_N_densepose.npy files",
                                                file_count="multiple", file_types=[".zip", ".npy"], elem_id="i2v-poses")
                            i2v_driving = gr.File(label="or a driving video (DensePose is extracted from it)",
                                                  file_types=list(VIDEO_SUFFIXES),
                                                  elem_id="i2v-driving")
                        i2v_person = gr.Dropdown(list(PERSON_RULES), value=i2v_default.densepose_person,
                                                 label="Person to follow in the driving video",
                                                 info="top-score: the reference's choice; largest: the biggest box; "
                                                      "track: one person followed across frames", elem_id="i2v-person")
                        with gr.Accordion("Advanced: DensePose extraction", open=False, elem_id="i2v-advanced"):
                            i2v_short_side = gr.Number(
                                value=i2v_default.densepose_short_side, precision=0, minimum=MIN_SHORT_SIDE,
                                label="DensePose short side (pixels)",
                                info=f"driving-video frames are resized to this short side; empty: the model's {DensePoseConfig.min_size} "
                                     "(the reference). Smaller is faster (about 3x at 512 on a CPU) and less exact",
                                elem_id="i2v-short-side")  # fmt: skip
                        with gr.Row():
                            i2v_s1 = gr.Slider(0, 20, value=i2v_default.s1, step=0.5, label="s1 (image guidance)", elem_id="i2v-s1")
                            i2v_s2 = gr.Slider(0, 20, value=i2v_default.s2, step=0.5, label="s2 (pose guidance)", elem_id="i2v-s2")
                        with gr.Row():
                            i2v_steps = gr.Slider(1, 200, value=i2v_default.steps, step=1, label="Steps", elem_id="i2v-steps")
                            i2v_seed = gr.Number(value=i2v_default.seed, precision=0, label="Seed", elem_id="i2v-seed")
                        i2v_scheduler = gr.Dropdown(backend.scheduler_names("dreampose"), value=i2v_default.scheduler, label="Scheduler",
                                                    elem_id="i2v-scheduler")
                        with gr.Row():
                            i2v_run = gr.Button("Animate", variant="primary", elem_id="i2v-run")
                            i2v_cancel = gr.Button("Cancel", variant="stop", elem_id="i2v-cancel")
                    with gr.Column():
                        i2v_video = gr.Video(label="Result", interactive=False, height=360, elem_id="i2v-video")
                        i2v_info = gr.Markdown(elem_id="i2v-info")
                        i2v_files = gr.File(label="Downloads (mp4, gif, settings)", file_count="multiple", interactive=False,
                                            elem_id="i2v-files")

            # ---------------------------------------------------------------- History
            with gr.Tab("History", id="history", elem_id="tab-history"):
                history_table = gr.Dataframe(headers=HISTORY_HEADERS, value=[], interactive=False, wrap=True, elem_id="history-table")
                with gr.Row():
                    history_pick = gr.Dropdown([], label="Result", elem_id="history-pick")
                    history_load = gr.Button("Load its settings into the form", elem_id="history-load")

        pose_inputs = [pose_video, pose_style, pose_smoothing, pose_stride, pose_size]
        t2v_inputs = [t2v_prompt, t2v_negative, t2v_pose, t2v_pose_type, t2v_frames, t2v_stride, t2v_steps, t2v_guidance,
                      t2v_scheduler, t2v_seed, t2v_width, t2v_height]
        # the driving-video inputs come last: API clients written before them keep working (they default to none / top-score /
        # the model's short side)
        i2v_inputs = [i2v_image, i2v_poses, i2v_s1, i2v_s2, i2v_steps, i2v_seed, i2v_scheduler, i2v_driving, i2v_person, i2v_short_side]
        history_outputs = [history, history_table, history_pick]

        # ------------------------------------------------------------------------ handlers
        @_friendly
        async def do_pose(video, style, smoothing, stride, size, hist, request: gr.Request, progress=gr.Progress()):
            video = check_upload(video, "video", max_bytes=max_bytes, what="Input video")
            settings = {"video": str(video), "style": style, "smoothing": smoothing, "stride": stride, "size": size}
            job = state.jobs.submit("pose", lambda job: backend.run_pose(
                video, job.folder, style=style, smoothing=bool(smoothing), stride=int(stride), size=_size(size), progress=job.progress),
                owner=_owner(request))
            res = await _wait(state, job, progress)
            info = f"**Detection rate:** {res['detection_rate'] * 100:.1f} % of {res['num_frames']} frames"
            summary = {"video": Path(video).name, "style": style, "stride": stride}
            hist = _add_history(hist, "pose", settings, summary, res["skeleton"], state.config.output_path)
            return (str(res["skeleton"]), str(res["overlay"]), info, str(res["keypoints"]), hist, _history_rows(hist),
                    gr.update(choices=_history_choices(hist)))

        @_friendly
        async def do_t2v(prompt, negative, pose, pose_type, frames, stride, steps, guidance, scheduler, seed, width, height, hist,
                   request: gr.Request, progress=gr.Progress()):
            state.t2v_settings()  # refuse at once when the app has no text -> video model
            kind = "keypoints" if Path(str(pose)).suffix.lower() in KEYPOINT_SUFFIXES else "video"
            pose = check_upload(pose, kind, max_bytes=max_bytes, what="Pose")
            seed = int(seed if seed is not None else t2v_default.seed)
            values = [prompt, negative, str(pose), pose_type, frames, stride, steps, guidance, scheduler, seed, width, height]
            settings = dict(zip([c.elem_id for c in t2v_inputs], values, strict=True))

            def work(job: Job):
                skeleton = backend.skeleton_from_pose_input(pose, pose_type, job.folder, progress=job.progress)
                task = state.t2v_settings(prompts=[prompt], negative_prompt=negative or None, pose=str(skeleton), video_length=int(frames),
                                          stride=int(stride), steps=int(steps), guidance=float(guidance), scheduler=scheduler, seed=seed,
                                          width=int(width), height=int(height))  # fmt: skip
                return backend.run_text_to_video(task, out_dir=job.folder, models=state.models,
                                                 pose_source=f"{Path(pose).name} ({pose_type})", progress=job.progress)

            res = await _wait(state, state.jobs.submit("t2v", work, owner=_owner(request)), progress)
            info = f"{res['num_frames']} frames, seed {seed}, {steps} steps, guidance {guidance}"
            hist = _add_history(hist, "t2v", settings, {"prompt": prompt, "seed": seed, "steps": steps}, res["mp4"],
                                state.config.output_path)
            files = [str(res["mp4"]), str(res["gif"]), str(res["sidecar"])]
            return (str(res["side_by_side"]), info, files, hist, _history_rows(hist), gr.update(choices=_history_choices(hist)))

        @_friendly
        async def do_i2v(image, poses, s1, s2, steps, seed, scheduler, driving=None, person=i2v_default.densepose_person,
                         short_side=i2v_default.densepose_short_side, hist=None, request: gr.Request = None, progress=gr.Progress()):
            cfg = state.config
            state.check_dreampose()
            image = check_upload(image, "image", max_bytes=max_bytes, what="Reference image")
            poses = [] if not poses else [poses] if isinstance(poses, str) else list(poses)
            if poses and driving:
                raise PosevidError("Image → video: give either DensePose poses or a driving video, not both", hint="clear one of them")
            if not poses and not driving:
                raise PosevidError("Image → video: no pose given",
                                   hint="upload DensePose poses (a zip of frame_N_densepose.npy) or a driving video")
            weights = None
            if driving:
                driving = check_upload(driving, "video", max_bytes=max_bytes, what="Driving video")
                weights = state.densepose_weights()
            person = person or i2v_default.densepose_person
            short_side = int(short_side) if short_side else i2v_default.densepose_short_side  # empty (or 0): the model's own
            seed = int(seed if seed is not None else i2v_default.seed)
            values = [str(image), [str(p) for p in poses] or None, s1, s2, steps, seed, scheduler, str(driving) if driving else None,
                      person, short_side]
            settings = dict(zip([c.elem_id for c in i2v_inputs], values, strict=True))

            def work(job: Job):
                pose_dir = collect_densepose(poses, job.folder / "poses", max_bytes=max_bytes) if poses else None
                job.report(0, 0, "extracting DensePose from the driving video" if driving else "loading the model")
                return backend.run_image_to_video(
                    state.models, image=image, pose_dir=pose_dir, driving_video=driving, densepose_weights=weights, densepose_person=person,
                    densepose_short_side=short_side, out_dir=job.folder, s1=float(s1), s2=float(s2), steps=int(steps), seed=seed,
                    scheduler=scheduler,
                    model=cfg.dreampose_model, epoch=cfg.dreampose_epoch, custom_vae=cfg.dreampose_vae, device=cfg.device, dtype=cfg.dtype,
                    progress=job.progress)

            res = await _wait(state, state.jobs.submit("i2v", work, owner=_owner(request)), progress)
            info = f"{res['num_frames']} frames, s1 {s1}, s2 {s2}, {steps} steps, seed {seed}"
            summary = {"image": Path(image).name, "s1": s1, "s2": s2, "steps": steps}
            if driving:
                info += f"; DensePose from {Path(driving).name} ({person}{f', short side {short_side}' if short_side else ''})"
                summary["driving video"] = Path(driving).name
            hist = _add_history(hist or [], "i2v", settings, summary, res["mp4"], state.config.output_path)
            files = [str(res["mp4"]), str(res["gif"]), str(res["sidecar"])]
            return (str(res["mp4"]), info, files, hist, _history_rows(hist), gr.update(choices=_history_choices(hist)))

        def cancel(request: gr.Request):
            count = state.jobs.cancel_owner(_owner(request))
            if count:
                gr.Info(f"Cancelling {count} job(s).")

        def use_pose(skeleton):
            if not skeleton:
                raise gr.Error("Extract a pose first.", print_exception=False)
            return skeleton, "skeleton video", gr.Tabs(selected="t2v")

        def load_settings(choice, hist):
            entry = next((e for e in hist if str(e["n"]) == str(choice)), None)
            if entry is None:
                raise gr.Error("Pick a result from the list first.", print_exception=False)
            s = entry["settings"]
            keep = [gr.update()] * (len(pose_inputs) + len(t2v_inputs) + len(i2v_inputs))
            if entry["kind"] == "pose":
                keep[: len(pose_inputs)] = [s["video"], s["style"], s["smoothing"], s["stride"], s["size"]]
            elif entry["kind"] == "t2v":
                keep[len(pose_inputs): len(pose_inputs) + len(t2v_inputs)] = [s[c.elem_id] for c in t2v_inputs]
            else:
                keep[len(pose_inputs) + len(t2v_inputs):] = [s[c.elem_id] for c in i2v_inputs]
            return [*keep, gr.Tabs(selected=entry["kind"])]

        common = {"concurrency_id": "posevid-jobs", "concurrency_limit": config.concurrency}
        pose_event = pose_run.click(do_pose, [*pose_inputs, history],
                                    [pose_skeleton, pose_overlay, pose_info, pose_keypoints, *history_outputs], api_name="pose", **common)
        t2v_event = t2v_run.click(do_t2v, [*t2v_inputs, history], [t2v_video, t2v_info, t2v_files, *history_outputs],
                                  api_name="text_to_video", **common)
        i2v_event = i2v_run.click(do_i2v, [*i2v_inputs, history], [i2v_video, i2v_info, i2v_files, *history_outputs],
                                  api_name="image_to_video", **common)
        for button, event in ((pose_cancel, pose_event), (t2v_cancel, t2v_event), (i2v_cancel, i2v_event)):
            button.click(cancel, None, None, cancels=[event], queue=False, api_name=False)
        pose_use.click(use_pose, [pose_skeleton], [t2v_pose, t2v_pose_type, tabs], api_name=False)
        history_load.click(load_settings, [history_pick, history], [*pose_inputs, *t2v_inputs, *i2v_inputs, tabs], api_name=False)
    return demo
