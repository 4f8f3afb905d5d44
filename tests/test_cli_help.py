"""Every subcommand's ``--help`` (issue 12 item 7): one CLI, not eight.

Shared flags have the same name, values and default everywhere; help shows no ``(default: None)``, no doubled
default, no raw reStructuredText, and ``train`` shows no ``None`` defaults.
"""

from __future__ import annotations

import argparse
import re

import pytest

from posevid.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


SUBS = _subparsers()


def _option(sub: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return sub._option_string_actions.get(flag)


def test_every_command_is_walked():
    assert {"generate", "pose", "animate", "eval", "app", "convert", "train", "prepare"} <= set(SUBS)


@pytest.mark.parametrize("name", sorted(SUBS))
def test_help_has_no_none_defaults_doubles_or_raw_rst(name):
    text = SUBS[name].format_help()
    assert "(default: None)" not in text
    assert "==SUPPRESS==" not in text
    formatter = SUBS[name]._get_formatter()
    for action in SUBS[name]._actions:  # each flag's help states its default at most once
        if action.help and action.help != argparse.SUPPRESS:
            shown = formatter._expand_help(action)
            assert len(re.findall(r"\(default|default:", shown)) <= 1, shown
    assert not re.search(r"``|:func:|:class:|:mod:|:meth:", text), text
    if name == "train":
        assert "None" not in text


@pytest.mark.parametrize("name", sorted(SUBS))
def test_every_numeric_default_is_stated_zero_too(name):
    """A flag with a number as its default says it, 0 as well (``0 in (None, False)`` is true: 0 used to be hidden)."""
    formatter = SUBS[name]._get_formatter()
    for action in SUBS[name]._actions:
        default = action.default
        if isinstance(default, (int, float)) and not isinstance(default, bool) and action.help not in (None, argparse.SUPPRESS):
            assert "default" in formatter._expand_help(action), (name, action.option_strings)


@pytest.mark.parametrize("name", sorted(SUBS))
def test_shared_flags_have_one_name_values_and_default(name):
    sub = SUBS[name]
    text = " ".join(sub.format_help().split())
    device = _option(sub, "--device")
    if device is not None:
        assert device.default in ("auto", argparse.SUPPRESS), name
        assert "{auto,cpu,cuda,mps}" in text and "(default: auto)" in text, name
        assert sub.parse_known_args(["--device", "cuda:1"] + _required(name))[0].device == "cuda:1"
    dtype = _option(sub, "--dtype")
    if dtype is not None:
        assert "fp32,fp16,bf16}" in text, name
        assert sub.parse_known_args(["--dtype", "float16"] + _required(name))[0].dtype == "fp16"  # old spelling accepted
    assert "--no-progress" not in text, name  # one visible spelling: --quiet
    if _option(sub, "--no-progress") is not None:
        assert _option(sub, "--quiet") is not None
        assert sub.parse_known_args(["--no-progress"] + _required(name))[0].quiet is True
    scheduler = _option(sub, "--scheduler")
    if scheduler is not None:
        assert set(scheduler.choices) <= {"pndm", "ddim", "dpm++", "euler", "euler-a", "unipc", "lms", "ddpm"}, name


def _required(name: str) -> list[str]:
    return {
        "pose": ["video.mp4", "--out", "x"],
        "densepose": ["video.mp4", "--out", "x"],
        "prepare": ["src", "--out", "x"],
        "eval": ["v.mp4"],
        "convert": ["--model", "a", "--out", "b"],
        "wan-preprocess": ["v.mp4", "--image", "r.png", "--out", "x"],
    }.get(name, [])


def test_commands_with_progress_bars_all_take_quiet():
    for name in ("generate", "animate", "pose", "densepose", "eval", "prepare", "wan-preprocess"):
        assert _option(SUBS[name], "--quiet") is not None, name


def test_defaults_come_from_the_task_settings():
    from posevid.tasks.animate import AnimateSettings
    from posevid.tasks.generate import GenerateSettings

    gen, ani = SUBS["generate"].format_help(), " ".join(SUBS["animate"].format_help().split())
    g = GenerateSettings()
    assert f"(default {g.video_length})" in gen and f"(default {g.steps})" in gen and f"(default {g.seed})" in gen
    a = AnimateSettings()
    assert _option(SUBS["animate"], "--seed").default == a.seed
    assert "(default: outputs/<image name>.mp4)" in ani
    # a backbone's option is absent unless given (so another backbone's option can be refused); its help states the
    # default of each backbone that takes it, read from the backbone's options dataclass
    from posevid.tasks.backbones import BACKBONES

    for b in BACKBONES.values():
        for f in b.fields():
            action = _option(SUBS["animate"], f.metadata["flag"].names[0])
            assert action.default == argparse.SUPPRESS, f.name
            if f.default not in (None, "") and not isinstance(f.default, bool):
                assert f"{b.name} {f.default}" in action.help or f"(default: {f.default})" in action.help, (f.name, action.help)


def test_pose_and_driving_video_flag_defaults_come_from_the_task_settings():
    from posevid.tasks.animate import AnimateSettings
    from posevid.tasks.pose import PoseSettings

    p = PoseSettings()
    for flag, value in (("--smooth", p.smooth), ("--limb-rule", p.limb_rule), ("--joint-correction", p.joint_correction),
                        ("--overlay", p.overlay), ("--preset", p.preset)):  # fmt: skip
        assert _option(SUBS["pose"], flag).default == value, flag
    from posevid.densepose.options import DensePoseOptions
    from posevid.tasks.backbones.dreampose import DreamPoseOptions
    from posevid.tasks.densepose import DensePoseSettings

    a, dp = AnimateSettings(), DreamPoseOptions()
    assert f"(default: {dp.densepose_person})" in _option(SUBS["animate"], "--densepose-person").help
    # --densepose-short-side: posevid densepose's --short-side flag (one definition), the same default everywhere
    assert dp.densepose_short_side == DensePoseOptions.short_side == DensePoseSettings.short_side
    assert _option(SUBS["densepose"], "--short-side").default == DensePoseOptions.short_side
    assert _option(SUBS["animate"], "--densepose-short-side").help.startswith("with --driving-video: ")
    assert _option(SUBS["animate"], "--driving-video").default is None and a.driving_video is None
    assert _option(SUBS["generate"], "--allow-untrained-temporal") is not None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pose", "v.mp4", "--out", "o", "--stride", "abc"], "posevid pose: error: argument --stride: invalid int value: 'abc'"),
        (["wan-preprocess", "v.mp4", "--out", "o"], "posevid wan-preprocess: error: the following arguments are required: --image"),
        (["animate", "--mode", "swap"], "posevid animate: error: argument --mode: invalid choice: 'swap'"),
        (["no-such-command"], "posevid: error: argument COMMAND: invalid choice: 'no-such-command'"),
    ],
)
def test_a_flag_mistake_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
