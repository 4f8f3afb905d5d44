"""Defaults in one place (issue 20): every flag of every command, every form field of the app and the library functions
that take the same parameters agree with the command's settings dataclass, where each default is defined once.

How it can fail: change one default in one place only (a flag's ``default=``, a number in a help text, a form field's
``value=``, a library function's keyword default) and the comparison names it. A flag whose ``dest`` is not a field of
the settings, a form field that is not mapped, or a command without settings fails too, until it is added below with
the reason it differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from posevid.cli import build_parser

# ------------------------------------------------------------------------------------------------ the settings
SETTINGS = {  # command -> its settings dataclass, the one place its defaults live
    "generate": "posevid.tasks.generate:GenerateSettings",
    "pose": "posevid.tasks.pose:PoseSettings",
    "densepose": "posevid.tasks.densepose:DensePoseSettings",
    "animate": "posevid.tasks.animate:AnimateSettings",
    "batch": "posevid.batch.driver:BatchSettings",
    "prepare": "posevid.tasks.prepare:PrepareSettings",
    "eval": "posevid.tasks.eval:EvalSettings",
    "app": "posevid.app.server:AppConfig",
    "make-tiny": "posevid.tasks.make_tiny:MakeTinySettings",
    "convert": "posevid.tasks.convert:ConvertSettings",
    "wan-preprocess": "posevid.tasks.wan_preprocess:WanPreprocessSettings",
}
LAYERED = {"train": "flags layer over the recipe's config: each is 'not given' (None); the defaults are training/config.py's"}

# Flags whose dest is not the settings field of the same name, or whose default means something else:
# (command, dest) -> (field, flag default -> settings value), or (None, reason) for a flag that fills no field.
NOT_SAME = {
    ("generate", "prompt"): ("prompts", None),  # repeatable --prompt fills the list of prompts (absent unless given)
    ("generate", "overwrite"): (None, "accepted for symmetry: outputs always replace a previous run's whole set"),
    ("animate", "overwrite"): (None, "accepted for symmetry: outputs always replace a previous run's whole set"),
    ("animate", "no_gif"): ("gif", lambda v: not v),
    ("animate", "j"): (None, "test.py's frame index: becomes the 'frames' slice"),
    ("animate", "min_j"): (None, "test.py's first frame index: becomes the 'frames' slice"),
    ("animate", "max_j"): (None, "test.py's end frame index: becomes the 'frames' slice"),
    **{("animate", dest): (None, "test.py flag, accepted and ignored") for dest in ("strength", "iters", "batch_size", "test_poses",
                                                                                       "pose_path")},  # fmt: skip
    ("wan-preprocess", "no_preview"): ("preview", lambda v: not v),  # --no-preview: no preview.mp4
}

# Flags whose default is SUPPRESS (absent unless given, so a config file can sit under them, or so animate can refuse
# another backbone's option) state their default in the help: (command, dest) -> why the value the help states is not
# the settings field's default.
STATED = {
    ("generate", "out"): "(default: outputs/<prompt>.mp4): a name made from the prompt, not a value",
    ("generate", "negative_prompt"): "default empty: no negative prompt",
    ("animate", "densepose_weights"): "None: $POSEVID_DENSEPOSE_WEIGHTS or the cache (posevid densepose --weights' help)",
    ("app", "dreampose:densepose_weights"): "None: $POSEVID_DENSEPOSE_WEIGHTS or the cache (posevid densepose --weights' help)",
}


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


SUBS = _subparsers()


def _default(cls, name: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING, f"{cls.__name__}.{name} has no default"
    return f.default_factory()


def _flags(command: str) -> list[argparse.Action]:
    return [a for a in SUBS[command]._actions if a.dest != "help"]


def _stated_default(action: argparse.Action) -> str | None:
    """The default a help text states: '(default X)', '(default: X)', '(default X, why)', '; default X' at the end."""
    m = re.search(r"default:? ([^\s(),:;]+)(?=[),:;]|$)", action.help or "")
    return m.group(1) if m else None


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _backbone_options(command: str, dest: str) -> list[tuple[Any, str]]:
    """The (backbone, option field) pairs an animate backbone's flag fills: ``posevid animate``'s option flags (dest: the
    field, shared by the backbones that take it) and ``posevid app``'s start-up options (dest: ``backbone:field``).
    Their defaults are the options dataclasses' (tasks/backbones/<name>.py); the flags are SUPPRESS and state them."""
    from posevid.tasks.backbones import BACKBONES

    if command == "animate":
        return [(b, dest) for b in BACKBONES.values() if any(f.name == dest for f in b.fields())]
    if command == "app" and ":" in dest:
        name, _, field = dest.partition(":")
        return [(BACKBONES[name], field)]
    return []


def _check_backbone_flag(command: str, action: argparse.Action, pairs: list[tuple[Any, str]]) -> None:
    """The flag is absent unless given, and its help states each backbone's own default: '(default: 8.0)' for one
    backbone, '(default: dreampose 100, wan-animate 20)' for an option several take; nothing for None, "" or a switch."""
    where = f"posevid {command} {action.option_strings[0]}"
    assert action.default is argparse.SUPPRESS, f"{where}: a backbone option must be absent unless given"
    if (command, action.dest) in STATED:
        return
    m = re.search(r"\(default: ([^()]*)\)$", action.help or "")
    stated = m.group(1) if m else None
    if len(pairs) > 1:
        shown = dict(part.split(" ", 1) for part in (stated or "").split(", ") if " " in part)
        for b, field in pairs:
            assert shown.get(b.name) == _shown(b.default_of(field)), f"{where}: help says {stated}, {b.options.__name__}.{field} " \
                                                                    f"{b.default_of(field)!r}"  # fmt: skip
        return
    (b, field), = pairs
    truth = b.default_of(field)
    if truth in (None, "") or isinstance(truth, bool):
        assert stated is None, f"{where}: help says {stated}, {b.options.__name__}.{field} {truth!r}"
    else:
        assert stated is not None and type(truth)(stated) == truth, f"{where}: help says {stated}, {b.options.__name__}.{field} {truth!r}"


def test_every_command_has_settings_or_a_reason():
    assert set(SUBS) == set(SETTINGS) | set(LAYERED)


@pytest.mark.parametrize("command", sorted(SETTINGS))
def test_every_flag_default_is_the_settings_default(command):
    cls = _load(SETTINGS[command])
    names = {f.name for f in dataclasses.fields(cls)}
    if command == "generate":  # the speed/memory flags: RunOptions holds their defaults (GenerateSettings: "not given")
        from posevid.pipelines.memory import SETTING_NAMES, RunOptions

        run_options = {SETTING_NAMES.get(f.name, f.name): getattr(RunOptions, f.name) for f in dataclasses.fields(RunOptions)}
    else:
        run_options = {}
    checked = []
    for action in _flags(command):
        field, to_setting = NOT_SAME.get((command, action.dest), (action.dest, None))
        if field is None:
            continue  # no settings field, for the reason in NOT_SAME
        if pairs := _backbone_options(command, field):
            _check_backbone_flag(command, action, pairs)  # an animate backbone's option: its options dataclass
            checked.append(field)
            continue
        if command == "app" and field.endswith("_model") and field != "model":  # --NAME-model: AppConfig.animate_models[NAME]
            name = next(b for b in _load("posevid.tasks.backbones:BACKBONES") if field == f"{b.replace('-', '_')}_model")
            assert action.default == _default(cls, "animate_models").get(name), f"posevid {command} {action.option_strings[0]}"
            checked.append(field)
            continue
        assert field in names, f"posevid {command} {action.option_strings or action.dest}: {field!r} is no field of {cls.__name__}"
        if action.required or not action.option_strings:
            continue  # a required argument has no default
        expected = _default(cls, field)
        if action.default is argparse.SUPPRESS:  # absent unless given: the help states the default
            stated = _stated_default(action)
            if stated is not None and (command, action.dest) not in STATED:
                truth = run_options.get(field, expected) if field in run_options and expected in (None, False) else expected
                assert stated == _shown(truth), f"posevid {command} {action.option_strings[0]}: help says {stated}, {cls.__name__} {truth}"
            continue
        value = to_setting(action.default) if to_setting else action.default
        where = f"posevid {command} {action.option_strings[0]}"
        assert value == expected, f"{where}: flag default {action.default!r}, {cls.__name__}.{field} {expected!r}"
        checked.append(field)
    assert checked or command == "generate", command
    if command == "animate":  # every option of every backbone has its flag checked against its options dataclass
        from posevid.tasks.backbones import BACKBONES

        assert {f.name for b in BACKBONES.values() for f in b.fields()} <= set(checked)


# minimal command lines: what each command requires, nothing else
REQUIRED = {"generate": [], "animate": [], "pose": ["v.mp4", "--out", "o"], "eval": ["v.mp4"], "prepare": ["src", "--out", "o"],
            "convert": ["--model", "m", "--out", "o"], "make-tiny": ["o"], "app": [], "densepose": ["v.mp4", "--out", "o"],
            "wan-preprocess": ["v.mp4", "--image", "i.png", "--out", "o"]}  # fmt: skip


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_a_command_line_without_flags_gives_the_settings_defaults(command, monkeypatch):
    """What the command really hands its task (``collect_settings`` of the parsed line) equals the dataclass defaults, so
    no default hides in the parsing either (config layering, inverted switches, converted values)."""
    cls = _load(SETTINGS[command])
    module = importlib.import_module(f"posevid.commands.{command.replace('-', '_')}")
    monkeypatch.setattr("posevid.utils.devices.pick_device", lambda name="auto": name)  # app: no device probing here
    settings = module.collect_settings(SUBS[command].parse_args(REQUIRED[command]))
    given = {"video", "out", "videos", "src", "model", "input", "image"}
    for f in dataclasses.fields(cls):
        if f.name not in given:
            expected = _default(cls, f.name)
            if command == "animate" and f.name == "options":  # None: the default backbone's options dataclass, its defaults
                expected = _load("posevid.tasks.backbones:BACKBONES")[settings.backbone].options()
            assert getattr(settings, f.name) == expected, f"posevid {command}: {f.name}"


def test_layered_train_flags_are_not_given_by_default_and_name_config_keys():
    from posevid.training.cli import BOOL_FLAGS, FLAGS
    from posevid.training.config import COMMON, RECIPE_DEFAULTS

    def keys(tree: dict, prefix: str = "") -> set[str]:
        found = set()
        for name, value in tree.items():
            found |= {prefix + name} | (keys(value, f"{prefix}{name}.") if isinstance(value, dict) else set())
        return found

    known = keys(COMMON).union(*(keys(r) for r in RECIPE_DEFAULTS.values())) | {"clip_model"}  # clip_model: DreamPose, read if set
    for dest, *_ in FLAGS + BOOL_FLAGS:
        assert dest in known, dest
    for action in _flags("train"):
        if action.dest not in ("recipe", "sets", "print_config"):
            assert action.default is None, action.dest
    assert {a.dest: a.default for a in _flags("train")}.get("sets") == []


# ------------------------------------------------------------------------------------------------ the library
# (function or class, parameter) -> (settings, field, settings value -> the library's): the building blocks that take the
# same parameter as a task keep their default only as the same value read from one definition (pose.options.POSE_DEFAULTS,
# data.defaults.PREPARE_DEFAULTS, eval.defaults.EVAL_DEFAULTS, pipelines.fyp_checks.SAMPLING_DEFAULTS, RunOptions, ...).
POSE = "posevid.tasks.pose:PoseSettings"
LIBRARY: dict[tuple[str, str], tuple[str, str, Callable | None]] = {
    **{("posevid.pose.extract:extract_keypoints", p): (POSE, f, None) for p, f in (
        ("estimator", "estimator"), ("stride", "stride"), ("smoothing", "smooth"), ("person", "person"), ("fill", "fill"),
        ("threshold", "threshold"))},
    **{("posevid.pose.extract:extract_keypoints_from_frames", p): (POSE, f, None) for p, f in (
        ("estimator", "estimator"), ("smoothing", "smooth"), ("person", "person"), ("fill", "fill"), ("threshold", "threshold"))},
    **{("posevid.pose.options:options_from_flags", p): (POSE, p, None) for p in (
        "smooth", "min_cutoff", "beta", "limb_rule", "joint_correction", "estimator", "style", "threshold")},
    ("posevid.pose.cleanup:select_persons", "mode"): (POSE, "person", None),
    ("posevid.pose.cleanup:select_persons", "threshold"): (POSE, "threshold", None),
    ("posevid.pose.cleanup:fill_missing", "mode"): (POSE, "fill", None),
    ("posevid.pose.extract:fit_sequence", "fit"): (POSE, "fit", None),
    ("posevid.pose.geometry:FitTransform", "fit"): (POSE, "fit", None),
    ("posevid.pose.outputs:write_pose_videos", "style"): (POSE, "style", None),
    ("posevid.pose.outputs:write_pose_videos", "threshold"): (POSE, "threshold", None),
    ("posevid.pose.outputs:write_pose_videos", "preset"): (POSE, "preset", None),
    ("posevid.pose.retargeting:retarget", "method"): (POSE, "retarget_method", None),
    ("posevid.pose.retargeting:retarget", "threshold"): (POSE, "threshold", None),
    ("posevid.pose.retargeting:reference_pose", "estimator"): (POSE, "estimator", None),
    ("posevid.pose.skeleton:skeleton_video_for", "style"): (POSE, "style", None),
    ("posevid.pose.skeleton:skeleton_video_for", "estimator"): (POSE, "estimator", None),
    ("posevid.pose.skeleton:skeleton_video_for", "fit"): (POSE, "fit", None),
    **{("posevid.data.prepare:prepare_dataset", p): ("posevid.tasks.prepare:PrepareSettings", p, None) for p in (
        "kind", "poses", "min_frames", "frames_per_video", "pose_workers", "engine")},
    **{("posevid.data.prepare_ray:RaySettings", p): ("posevid.tasks.prepare:PrepareSettings", f"ray_{p}", None) for p in (
        "address", "num_cpus", "stage_cpus", "model_cpus", "model_gpus", "model_concurrency")},
    # (EvalSettings is the library's EvalConfig plus its report files: one dataclass, nothing to compare)
    ("posevid.eval.clip:ClipScorer", "spec"): ("posevid.eval.defaults:EVAL_DEFAULTS", "clip", None),  # EvalConfig.clip None: this one
    ("posevid.eval.runner:fvd_clips", "clip_length"): ("posevid.tasks.eval:EvalSettings", "fvd_clip_length", None),
    ("posevid.eval.runner:fvd_clips", "size"): ("posevid.tasks.eval:EvalSettings", "fvd_size", None),
    ("posevid.eval.pose_accuracy:pose_accuracy", "ref"): ("posevid.tasks.eval:EvalSettings", "pck_ref", None),
    ("posevid.eval.pose_accuracy:pose_accuracy", "threshold"): ("posevid.tasks.eval:EvalSettings", "pose_threshold", None),
    ("posevid.eval.pose_accuracy:fit_keypoints", "mode"): ("posevid.tasks.eval:EvalSettings", "pose_fit", None),
    **{("posevid.pipelines.followyourpose:FollowYourPosePipeline.__call__", p): ("posevid.tasks.generate:GenerateSettings", f, None)
       for p, f in (("frame_stride", "stride"), ("num_inference_steps", "steps"), ("guidance_scale", "guidance"),
                    ("num_videos_per_prompt", "num_videos_per_prompt"), ("pose_antialias", "pose_antialias"))},  # fmt: skip
    **{("posevid.pipelines.followyourpose:FollowYourPosePipeline.__call__", p): ("posevid.pipelines.memory:RunOptions", f, None)
       for p, f in (("decode_chunk_size", "decode_chunk_size"), ("split_cfg", "split_cfg"), ("window_size", "window"),
                    ("window_overlap", "overlap"), ("window_weighting", "window_weighting"))},  # fmt: skip
    # DreamPose's sampling defaults: pipelines.dreampose_defaults.DREAMPOSE_DEFAULTS, read by the pipeline and DreamPoseOptions
    **{("posevid.pipelines.dreampose:DreamPosePipeline.__call__", p): ("posevid.tasks.backbones.dreampose:DreamPoseOptions", f, None)
       for p, f in (("s1", "s1"), ("s2", "s2"), ("num_inference_steps", "steps"), ("frame_batch_size", "frame_batch"))},
    # Wan2.2-Animate: the generation's defaults are pipelines.wan_animate.WAN_ANIMATE_DEFAULTS, read by the pipeline functions
    # and WanAnimateOptions; the preprocessing's library function shares WanPreprocessSettings' mode and area
    **{(f"posevid.pipelines.wan_animate:{fn}", p): ("posevid.tasks.backbones.wan_animate:WanAnimateOptions", f, None)
       for fn in ("generate", "check_wan_inputs") for p, f in (
           ("num_inference_steps", "steps"), ("guidance_scale", "guidance"), ("segment_frame_length", "segment_length"),
           ("prev_segment_conditioning_frames", "prev_frames"), ("mode", "mode"))},  # fmt: skip
    **{("posevid.pipelines.wan_animate:generate", p): ("posevid.tasks.backbones.wan_animate:WanAnimateOptions", p, None)
       for p in ("prompt", "negative_prompt")},
    ("posevid.pipelines.wan_animate:generate", "seed"): ("posevid.tasks.animate:AnimateSettings", "seed", None),
    ("posevid.pipelines.wan_animate:load_wan_animate", "memory"): ("posevid.tasks.backbones.wan_animate:WanAnimateOptions", "memory", None),
    ("posevid.wan.preprocess:preprocess", "mode"): ("posevid.tasks.wan_preprocess:WanPreprocessSettings", "mode", None),
    ("posevid.wan.preprocess:preprocess", "area"): ("posevid.tasks.wan_preprocess:WanPreprocessSettings", "area",
                                                    lambda v: tuple(int(x) for x in v.split("x"))),  # "1280x720" -> (1280, 720)
    ("posevid.batch.driver:run_batch", "retries"): ("posevid.batch.driver:BatchSettings", "retries", None),
    ("posevid.batch.driver:run_batch", "keep_models"): ("posevid.batch.driver:BatchSettings", "keep_models", None),
    ("posevid.batch.driver:run_batch", "quiet"): ("posevid.batch.driver:BatchSettings", "verbose", lambda v: not v),
    **{(f"posevid.models.{m}", "seed"): ("posevid.tasks.make_tiny:MakeTinySettings", "seed", None) for m in (
        "tiny:write_tiny_followyourpose", "tiny_dreampose:write_tiny_dreampose", "tiny_wan:write_tiny_wan_animate")},
    # the app's back end: its keyword defaults are the tasks' (None: "the task's own")
    ("posevid.app.backend:run_pose", "style"): (POSE, "style", None),
    ("posevid.app.backend:run_pose", "smoothing"): (POSE, "no_smooth", lambda v: not v),
    ("posevid.app.backend:run_pose", "stride"): (POSE, "stride", None),
    ("posevid.app.backend:run_pose", "size"): (POSE, "size", None),
    # (run_image_to_video takes the animate task's values as they are: what is not given keeps the task's default)
}


def _parameter_default(spec: str, name: str) -> Any:
    obj = _load(spec)
    return inspect.signature(obj).parameters[name].default


@pytest.mark.parametrize("function, parameter", sorted(LIBRARY), ids=lambda x: x.split(":")[-1] if ":" in x else x)
def test_library_defaults_are_the_settings_defaults(function, parameter):
    settings, field, to_library = LIBRARY[(function, parameter)]
    expected = _default(_load(settings), field)
    expected = to_library(expected) if to_library else expected
    assert _parameter_default(function, parameter) == expected, f"{function}({parameter}=...) vs {settings}.{field}"


def test_the_app_leaves_device_and_dtype_to_the_tasks(tmp_path):
    """``posevid app`` without --device/--dtype (AppConfig's defaults): each tab's task gets its own device and dtype
    (image -> video: AnimateSettings' auto/auto, as posevid animate; text -> video: GenerateSettings')."""
    from posevid.app.server import AppConfig
    from posevid.tasks.animate import AnimateSettings, settings_from_values
    from posevid.tasks.backbones import BACKBONES
    from posevid.tasks.generate import GenerateSettings

    pytest.importorskip("gradio")
    from posevid.app.ui import AppState

    state = AppState(AppConfig(model=str(tmp_path), animate_models=dict.fromkeys(BACKBONES, str(tmp_path)), output_dir=str(tmp_path / "o")))
    for b in BACKBONES.values():
        settings = settings_from_values(state.animate_values(b))
        assert (settings.device, settings.dtype) == (AnimateSettings.device, AnimateSettings.dtype), b.name
    t2v = state.t2v_settings()
    assert (t2v.device, t2v.dtype) == (GenerateSettings.device, GenerateSettings.dtype)


# ------------------------------------------------------------------------------------------------ the app's forms
gr = pytest.importorskip("gradio")

ANIMATE = "posevid.tasks.animate:AnimateSettings"
GENERATE = "posevid.tasks.generate:GenerateSettings"
FORM = {  # elem_id -> (settings, field, form value -> settings value)
    "pose-style": (POSE, "style", None),
    "pose-smoothing": (POSE, "no_smooth", lambda v: not v),  # "Smooth keypoints over time"
    "pose-stride": (POSE, "stride", None),
    "pose-size": (POSE, "size", lambda v: None if v == "source" else v),  # "source": the video's own size
    "t2v-negative": (GENERATE, "negative_prompt", lambda v: v or None),  # empty box: no negative prompt
    "t2v-frames": (GENERATE, "video_length", None),
    "t2v-stride": (GENERATE, "stride", None),
    "t2v-steps": (GENERATE, "steps", None),
    "t2v-guidance": (GENERATE, "guidance", None),
    "t2v-scheduler": (GENERATE, "scheduler", None),
    "t2v-seed": (GENERATE, "seed", None),
    "t2v-width": (GENERATE, "width", None),
    "t2v-height": (GENERATE, "height", None),
    "i2v-seed": (ANIMATE, "seed", None),
    "i2v-backbone": (ANIMATE, "backbone", None),
}


def _backbone_controls() -> dict[str, tuple[Any, str, Callable | None]]:
    """The image -> video tab's option controls: every option with a Form, of every backbone in the registry, by the
    elem_id the app gives it -> (its options dataclass, the field, form value -> option value). A text box shows an
    option whose default is None as empty."""
    from posevid.app.forms import elem_id
    from posevid.tasks.backbones import BACKBONES

    return {elem_id(b, f): (b.options, f.name, (lambda v: v or None) if f.metadata["form"].widget == "text" and f.default is None else None)
            for b in BACKBONES.values() for f in b.fields() if f.metadata.get("form") is not None}  # fmt: skip


FORM.update(_backbone_controls())
NO_DEFAULT = {  # form fields with no settings default, and why
    "pose-video": "an upload",
    "t2v-pose": "an upload",
    "i2v-image": "an upload",
    "i2v-driving": "an upload",
    "t2v-prompt": "an example prompt to start from: the task has no default prompt",
    "t2v-pose-type": "how the app reads the upload (auto: detected), not a task setting",
}


@pytest.fixture(scope="module")
def form_fields(tmp_path_factory) -> dict[str, Any]:
    """Every input of the app's three jobs (the components their handlers take), by elem_id."""
    import os

    from posevid.app.server import AppConfig, prepare_environment
    from posevid.app.ui import build_app

    saved = {name: os.environ.get(name) for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE", "GRADIO_ANALYTICS_ENABLED")}
    try:
        config = AppConfig(output_dir=str(tmp_path_factory.mktemp("app")))
        prepare_environment(config)
        demo = build_app(config)
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    found = {}
    for fn in demo.fns.values():
        if fn.api_name in ("pose", "text_to_video", "image_to_video"):
            for block in fn.inputs:
                if not isinstance(block, gr.State):  # the session's history
                    found[block.elem_id] = block
    return found


def test_every_form_field_is_mapped(form_fields):
    assert None not in form_fields, "a form input without elem_id"
    assert set(form_fields) == set(FORM) | set(NO_DEFAULT)


@pytest.mark.parametrize("elem_id", sorted(FORM))
def test_every_form_default_is_the_settings_default(form_fields, elem_id):
    settings, field, to_setting = FORM[elem_id]
    value = form_fields[elem_id].value
    value = to_setting(value) if to_setting else value
    cls = _load(settings) if isinstance(settings, str) else settings
    assert value == _default(cls, field), f"form field {elem_id}: {value!r} vs {cls.__name__}.{field}"
