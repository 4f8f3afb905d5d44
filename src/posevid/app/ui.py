"""The Gradio Blocks of ``posevid app``: Pose, Text -> video, Image -> video and History tabs.

The UI only collects form values, checks uploads and shows results; the work goes through the job
queue (:mod:`posevid.app.jobs`) to the back-end functions (:mod:`posevid.app.backend`). Every control
the form shows reaches the pipeline (the original demo silently dropped frames/stride/crop), and every
result records the settings that made it, so the History tab can load them back into the form.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from posevid.app import backend, forms
from posevid.app.jobs import Job, JobCancelled, JobQueue
from posevid.app.server import AppConfig
from posevid.app.uploads import check_upload
from posevid.errors import PosevidError
from posevid.tasks.animate import AnimateSettings
from posevid.tasks.backbones import BACKBONES, DEFAULT, Backbone, check_pose_inputs, get_backbone
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
        from posevid.tasks.animate import preload as preload_animate
        from posevid.tasks.animate import settings_from_values

        for name in self.config.animate_models:  # the image -> video tab runs the animate task: preloaded under the task's key
            preload_animate(settings_from_values(self.animate_values(get_backbone(name))), self.models)

    def animate_values(self, backbone: Backbone) -> dict[str, Any]:
        """The animate task's values that the server fixes for ``backbone``: its model, its start-up options (the paths
        among them checked again per request: files move) and the app's ``--device``/``--dtype`` where given (else the
        task's own: auto, auto = the backbone's GPU dtype, as ``posevid animate``)."""
        c = self.config
        model = c.animate_models.get(backbone.name) or backbone.default_model  # as posevid animate without --model
        if not model:
            raise PosevidError(f"no {backbone.title} model loaded", hint=f"start the app with --{backbone.name}-model DIR")
        options = c.animate_options.get(backbone.name, {})
        for name, value in options.items():
            flag = backbone.flag(name)
            if flag.metavar == "PATH" and value and not Path(value).expanduser().is_file():
                raise PosevidError(f"{flag.app}: not found: {value}", hint=f"restart the app with {flag.app} PATH of an existing file")
        return {"backbone": backbone.name, "model": model, **backend.placement(c.device, c.dtype), **options}


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


@dataclass
class TabParts:
    """What ``build_app`` wires for one working tab: its form (in the order its API takes the values), its result
    components, its buttons and its handler (which also returns the updated history)."""

    kind: str
    api_name: str
    inputs: list[Any]
    outputs: list[Any]
    run: Any
    cancel: Any
    handler: Callable
    extra: dict[str, Any] = field(default_factory=dict)


def _history_update(state: AppState, hist: list[dict], kind: str, settings: dict, summary: dict, result: Path) -> tuple:
    """The history outputs after one more result: the state, the table rows and the pick list."""
    hist = _add_history(hist or [], kind, settings, summary, result, state.config.output_path)
    return hist, _history_rows(hist), gr.update(choices=_history_choices(hist))


def build_app(config: AppConfig) -> gr.Blocks:
    """The whole UI. ``config.output_path`` must already be prepared (see ``server.prepare_environment``)."""
    state = AppState(config)
    backbones = ", ".join(b.title for b in BACKBONES.values())
    with gr.Blocks(title="posevid", analytics_enabled=False) as demo:
        demo.posevid_state = state  # reachable from tests and embedding code
        gr.Markdown("# posevid\nMake a video of a character follow a pose: extract a pose, then animate it from text "
                    f"(Follow-Your-Pose) or from an image ({backbones}).")
        history = gr.State([])
        with gr.Tabs(selected="pose", elem_id="tabs") as tabs:
            pose = _pose_tab(state, _examples_dir(config))
            t2v = _t2v_tab(state)
            i2v = _i2v_tab(state)
            history_table, history_pick, history_load = _history_tab()
        history_outputs = [history, history_table, history_pick]
        working = (pose, t2v, i2v)

        def cancel(request: gr.Request):
            count = state.jobs.cancel_owner(_owner(request))
            if count:
                gr.Info(f"Cancelling {count} job(s).")

        def load_settings(choice, hist):
            entry = next((e for e in hist if str(e["n"]) == str(choice)), None)
            if entry is None:
                raise gr.Error("Pick a result from the list first.", print_exception=False)
            values = [entry["settings"].get(c.elem_id, gr.update()) if tab.kind == entry["kind"] else gr.update()
                      for tab in working for c in tab.inputs]  # fmt: skip
            return [*values, gr.Tabs(selected=entry["kind"])]

        common = {"concurrency_id": "posevid-jobs", "concurrency_limit": config.concurrency}
        for tab in working:
            event = tab.run.click(tab.handler, [*tab.inputs, history], [*tab.outputs, *history_outputs], api_name=tab.api_name, **common)
            tab.cancel.click(cancel, None, None, cancels=[event], queue=False, api_name=False)
        pose.extra["use"].click(lambda skeleton: _use_pose(skeleton), [pose.extra["skeleton"]],
                                [t2v.extra["pose"], t2v.extra["pose_type"], tabs], api_name=False)  # fmt: skip
        history_load.click(load_settings, [history_pick, history], [*(c for tab in working for c in tab.inputs), tabs], api_name=False)
    return demo


def _use_pose(skeleton):
    if not skeleton:
        raise gr.Error("Extract a pose first.", print_exception=False)
    return skeleton, "skeleton video", gr.Tabs(selected="t2v")


def _run_buttons(kind: str, label: str) -> tuple[Any, Any]:
    with gr.Row():
        return gr.Button(label, variant="primary", elem_id=f"{kind}-run"), gr.Button("Cancel", variant="stop", elem_id=f"{kind}-cancel")


def _results(kind: str, label: str) -> tuple[Any, Any, Any]:
    """The result column of a generating tab: the video, a line about it and the downloads."""
    with gr.Column():
        return (gr.Video(label=label, interactive=False, height=360, elem_id=f"{kind}-video"), gr.Markdown(elem_id=f"{kind}-info"),
                gr.File(label="Downloads (mp4, gif, settings)", file_count="multiple", interactive=False, elem_id=f"{kind}-files"))


# ------------------------------------------------------------------------------------------------ Pose
def _pose_tab(state: AppState, examples: Path | None) -> TabParts:
    max_bytes = state.config.max_upload_bytes
    default = backend.PoseSettings()  # the pose task's defaults, the only ones (posevid pose shows the same)
    with gr.Tab("Pose", id="pose", elem_id="tab-pose"), gr.Row():
        with gr.Column():
            video = gr.Video(label="Input video", sources=["upload"], include_audio=True, height=360, elem_id="pose-video")
            if examples is not None:
                files = [str(p) for p in sorted(examples.glob("*.mp4"))]
                if files:
                    gr.Examples(examples=[[f] for f in files], inputs=[video], label="Examples")
            style = gr.Dropdown(POSE_STYLES, value=default.style, label="Skeleton style",
                                info="fyp: colours the released Follow-Your-Pose model expects", elem_id="pose-style")  # fmt: skip
            smoothing = gr.Checkbox(value=not default.no_smooth, label="Smooth keypoints over time", elem_id="pose-smoothing")
            stride = gr.Slider(1, 10, value=default.stride, step=1, label="Frame stride", info="keep every N-th frame",
                               elem_id="pose-stride")
            size = gr.Dropdown(POSE_SIZES, value=default.size or "source", label="Skeleton video size", elem_id="pose-size")
            run, cancel = _run_buttons("pose", "Extract pose")
        with gr.Column():
            with gr.Row():
                skeleton = gr.Video(label="Skeleton", interactive=False, height=360, elem_id="pose-skeleton")
                overlay = gr.Video(label="Overlay", interactive=False, height=360, elem_id="pose-overlay")
            info = gr.Markdown(elem_id="pose-info")
            keypoints = gr.File(label="Keypoints (JSON)", interactive=False, height=90, elem_id="pose-keypoints")
            use = gr.Button("Use this pose for text → video", elem_id="pose-use")
    inputs = [video, style, smoothing, stride, size]

    @_friendly
    async def do_pose(video, style, smoothing, stride, size, hist, request: gr.Request, progress=gr.Progress()):
        video = check_upload(video, "video", max_bytes=max_bytes, what="Input video")
        settings = dict(zip([c.elem_id for c in inputs], [str(video), style, smoothing, stride, size], strict=True))
        job = state.jobs.submit("pose", lambda job: backend.run_pose(
            video, job.folder, style=style, smoothing=bool(smoothing), stride=int(stride), size=_size(size), progress=job.progress),
            owner=_owner(request))  # fmt: skip
        res = await _wait(state, job, progress)
        text = f"**Detection rate:** {res['detection_rate'] * 100:.1f} % of {res['num_frames']} frames"
        summary = {"video": Path(video).name, "style": style, "stride": stride}
        return (str(res["skeleton"]), str(res["overlay"]), text, str(res["keypoints"]),
                *_history_update(state, hist, "pose", settings, summary, res["skeleton"]))  # fmt: skip

    return TabParts("pose", "pose", inputs, [skeleton, overlay, info, keypoints], run, cancel, do_pose,
                    extra={"use": use, "skeleton": skeleton})  # fmt: skip


# ------------------------------------------------------------------------------------------------ Text -> video
def _t2v_tab(state: AppState) -> TabParts:
    max_bytes = state.config.max_upload_bytes
    default = backend.GenerateSettings()  # the task's defaults, the only ones (posevid generate shows the same)
    with gr.Tab("Text → video", id="t2v", elem_id="tab-t2v"):
        if not state.config.model:
            gr.Markdown("No Follow-Your-Pose model: start the app with `--model DIR` to generate.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", value="Iron man on the beach", elem_id="t2v-prompt")
                negative = gr.Textbox(label="Negative prompt", value=default.negative_prompt or "", elem_id="t2v-negative")
                pose = gr.File(label="Pose: raw video, skeleton video or keypoints file", file_types=[*VIDEO_SUFFIXES, *KEYPOINT_SUFFIXES],
                               elem_id="t2v-pose")  # fmt: skip
                pose_type = gr.Radio(POSE_TYPES, value="auto", label="Pose input is", elem_id="t2v-pose-type")
                with gr.Row():
                    frames = gr.Slider(1, 64, value=default.video_length, step=1, label="Frames", elem_id="t2v-frames")
                    stride = gr.Slider(1, 20, value=default.stride, step=1, label="Pose frame stride", elem_id="t2v-stride")
                with gr.Row():
                    steps = gr.Slider(1, 100, value=default.steps, step=1, label="Steps", elem_id="t2v-steps")
                    guidance = gr.Slider(1, 30, value=default.guidance, step=0.5, label="Guidance scale", elem_id="t2v-guidance")
                with gr.Row():
                    scheduler = gr.Dropdown(backend.scheduler_names("followyourpose"), value=default.scheduler, label="Scheduler",
                                            elem_id="t2v-scheduler")  # fmt: skip
                    seed = gr.Number(value=default.seed, precision=0, label="Seed", elem_id="t2v-seed")
                with gr.Row():
                    width = gr.Slider(64, 1024, value=default.width, step=64, label="Width", elem_id="t2v-width")
                    height = gr.Slider(64, 1024, value=default.height, step=64, label="Height", elem_id="t2v-height")
                run, cancel = _run_buttons("t2v", "Generate")
            video, info, files = _results("t2v", "Skeleton | result")
    inputs = [prompt, negative, pose, pose_type, frames, stride, steps, guidance, scheduler, seed, width, height]

    @_friendly
    async def do_t2v(prompt, negative, pose, pose_type, frames, stride, steps, guidance, scheduler, seed, width, height, hist,
                     request: gr.Request, progress=gr.Progress()):  # fmt: skip
        state.t2v_settings()  # refuse at once when the app has no text -> video model
        kind = "keypoints" if Path(str(pose)).suffix.lower() in KEYPOINT_SUFFIXES else "video"
        pose = check_upload(pose, kind, max_bytes=max_bytes, what="Pose")
        seed = int(seed if seed is not None else default.seed)
        values = [prompt, negative, str(pose), pose_type, frames, stride, steps, guidance, scheduler, seed, width, height]
        settings = dict(zip([c.elem_id for c in inputs], values, strict=True))

        def work(job: Job):
            skeleton = backend.skeleton_from_pose_input(pose, pose_type, job.folder, progress=job.progress)
            task = state.t2v_settings(prompts=[prompt], negative_prompt=negative or None, pose=str(skeleton), video_length=int(frames),
                                      stride=int(stride), steps=int(steps), guidance=float(guidance), scheduler=scheduler, seed=seed,
                                      width=int(width), height=int(height))  # fmt: skip
            return backend.run_text_to_video(task, out_dir=job.folder, models=state.models, pose_source=f"{Path(pose).name} ({pose_type})",
                                             progress=job.progress)  # fmt: skip

        res = await _wait(state, state.jobs.submit("t2v", work, owner=_owner(request)), progress)
        text = f"{res['num_frames']} frames, seed {seed}, {steps} steps, guidance {guidance}"
        summary = {"prompt": prompt, "seed": seed, "steps": steps}
        return (str(res["side_by_side"]), text, [str(res["mp4"]), str(res["gif"]), str(res["sidecar"])],
                *_history_update(state, hist, "t2v", settings, summary, res["mp4"]))  # fmt: skip

    return TabParts("t2v", "text_to_video", inputs, [video, info, files], run, cancel, do_t2v, extra={"pose": pose, "pose_type": pose_type})


# ------------------------------------------------------------------------------------------------ Image -> video
# The positional API of /image_to_video as clients written before the backbone choice call it; every input added
# since comes after these (each with a default), so those clients keep working.
I2V_API_V1 = ("i2v-image", "i2v-poses", "i2v-s1", "i2v-s2", "i2v-steps", "i2v-seed", "i2v-scheduler", "i2v-driving", "i2v-person",
              "i2v-short-side")  # fmt: skip
I2V_REQUIRED = ("i2v-image", "i2v-poses")  # no default in that API


def _i2v_tab(state: AppState) -> TabParts:
    """Reference image + driving video (or a backbone's own pose input), the backbone chosen from the registry; each
    backbone's options (from its options dataclass) shown while it is chosen."""
    max_bytes = state.config.max_upload_bytes
    default = AnimateSettings()
    with gr.Tab("Image → video", id="i2v", elem_id="tab-i2v"):
        if not any(state.config.animate_models.get(b.name) or b.default_model for b in BACKBONES.values()):
            flags = ", ".join(f"`--{b.name}-model DIR`" for b in BACKBONES.values())
            gr.Markdown(f"No image → video model: start the app with {flags} to animate images.")
        with gr.Row():
            with gr.Column():
                backbone = gr.Dropdown([(b.title, b.name) for b in BACKBONES.values()], value=default.backbone, label="Backbone",
                                       elem_id="i2v-backbone")  # fmt: skip
                image = _readable_image_errors(gr.Image(label="Reference image", type="filepath", format="png", sources=["upload"],
                                                        elem_id="i2v-image"))  # fmt: skip
                driving = gr.File(label="Driving video: the motion to follow (DreamPose: or DensePose poses)",
                                  file_types=list(VIDEO_SUFFIXES), elem_id="i2v-driving")  # fmt: skip
                groups, controls = {}, []
                for b in BACKBONES.values():
                    with gr.Column(visible=b.name == default.backbone) as group:
                        controls += forms.option_controls(b)
                    groups[b.name] = group
                seed = gr.Number(value=default.seed, precision=0, label="Seed", elem_id="i2v-seed")
                run, cancel = _run_buttons("i2v", "Animate")
            video, info, files = _results("i2v", "Result")
    backbone.change(lambda name: [gr.Column(visible=name == n) for n in groups], backbone, list(groups.values()), api_name=False)
    by_id = {c.elem_id: c for c in (image, driving, seed, backbone, *(c.component for c in controls))}
    inputs = [by_id[e] for e in I2V_API_V1 if e in by_id] + [c for e, c in by_id.items() if e not in I2V_API_V1]
    handler = _i2v_handler(state, inputs, {c.elem_id: c for c in controls}, max_bytes)
    return TabParts("i2v", "image_to_video", inputs, [video, info, files], run, cancel, handler)


def _param(component) -> str:
    return component.elem_id.removeprefix(forms.PREFIX).replace("-", "_")


def _i2v_handler(state: AppState, inputs: list, controls: dict[str, forms.Control], max_bytes: int) -> Callable:
    """The image -> video handler: one parameter per input (named after its control), then the history."""
    params = [inspect.Parameter(_param(c), inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                **({} if c.elem_id in I2V_REQUIRED else {"default": None})) for c in inputs]  # fmt: skip
    signature = inspect.Signature([
        *params,
        inspect.Parameter("hist", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
        inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
    ])  # fmt: skip

    async def do_i2v(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        values = {c.elem_id: given[_param(c)] for c in inputs}
        b = get_backbone(values["i2v-backbone"] or DEFAULT)
        fixed = state.animate_values(b)
        image = check_upload(values["i2v-image"], "image", max_bytes=max_bytes, what="Reference image")
        driving = values["i2v-driving"] and check_upload(values["i2v-driving"], "video", max_bytes=max_bytes, what="Driving video")
        mine = [c for c in controls.values() if c.backbone is b]
        uploads = {c.field.name: [v] if isinstance(v, str) else list(v)
                   for c in mine if c.form.widget == "files" and (v := values[c.elem_id])}  # fmt: skip
        names = {c.field.name: c.form.name or c.form.label for c in mine}
        check_pose_inputs(b, set(uploads) | ({"driving_video"} if driving else set()),
                          lambda n: "a driving video" if n == "driving_video" else names[n], where="Image → video: ", verb="upload")
        options = {c.field.name: forms.option_value(c, values[c.elem_id]) for c in mine if c.form.widget != "files"}
        seed = int(values["i2v-seed"]) if values["i2v-seed"] is not None else AnimateSettings().seed
        settings = {**values, "i2v-image": str(image), "i2v-driving": str(driving) if driving else None, "i2v-seed": seed,
                    **{c.elem_id: options[c.field.name] for c in mine if c.field.name in options},
                    **{c.elem_id: [str(p) for p in uploads[c.field.name]] for c in mine if c.field.name in uploads}}  # fmt: skip

        def work(job: Job):
            collected = {name: str(forms.COLLECTORS[next(c.form.upload for c in mine if c.field.name == name)](
                files, job.folder / name, max_bytes=max_bytes)) for name, files in uploads.items()}  # fmt: skip
            job.report(0, 0, "preparing the pose input" if driving else "loading the model")
            return backend.run_image_to_video(state.models, out_dir=job.folder, progress=job.progress, **fixed, image=image,
                                              driving_video=driving, seed=seed, **options, **collected)  # fmt: skip

        res = await _wait(state, state.jobs.submit("i2v", work, owner=_owner(given["request"])), given["progress"])
        shown = ", ".join(f"{c.field.name} {options[c.field.name]}" for c in mine if c.field.name in options)
        text = f"{res['num_frames']} frames with {b.title}, {shown}, seed {seed}"
        summary = {"backbone": b.name, "image": Path(image).name, "seed": seed}
        if driving:
            text += f"; motion from {Path(driving).name}"
            summary["driving video"] = Path(driving).name
        files = [str(res["mp4"]), str(res["gif"]), str(res["sidecar"])]
        return (str(res["mp4"]), text, files, *_history_update(state, given["hist"], "i2v", settings, summary, res["mp4"]))

    do_i2v.__signature__ = signature
    do_i2v.__annotations__ = {"request": gr.Request}
    return _friendly(do_i2v)


# ------------------------------------------------------------------------------------------------ History
def _history_tab() -> tuple[Any, Any, Any]:
    with gr.Tab("History", id="history", elem_id="tab-history"):
        table = gr.Dataframe(headers=HISTORY_HEADERS, value=[], interactive=False, wrap=True, elem_id="history-table")
        with gr.Row():
            pick = gr.Dropdown([], label="Result", elem_id="history-pick")
            load = gr.Button("Load its settings into the form", elem_id="history-load")
    return table, pick, load
