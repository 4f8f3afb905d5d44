"""The backbone seam of ``posevid animate`` (``posevid.tasks.backbones``): one registration makes a backbone a choice of
the command line, the app and batch, with its own flags, defaults and controls, and its frames written by the task's
one writer; an unknown backbone or another backbone's option is one line, exit 2, and nothing is written.

The seam is shown with a toy backbone defined here (a reference image blended over each driving-video frame, no
model), registered for the test only: nothing outside this file knows it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posevid.batch.jobs import read_jobs
from posevid.cli import main
from posevid.commands.fields import command_parser
from posevid.errors import InputError
from posevid.tasks import backbones
from posevid.tasks.backbones import Backbone, Form, Generated, option
from posevid.video import read_frames, write_video


# ------------------------------------------------------------------------------------------------ a toy backbone
@dataclass
class ToyOptions:
    tint: float = option(0.25, "--tint", help="share of the reference image in each frame", form=Form("Tint", "slider", 0, 1, 0.05))
    steps: int = option(7, "--steps", help="denoising steps", form=Form("Steps", "slider", 1, 50, 1))


def _validate(settings) -> None:
    if not 0 <= settings.options.tint <= 1:
        raise InputError(f"--tint must be between 0 and 1, got {settings.options.tint}")


def _loader(settings, device, dtype):
    return ("toy", str(settings.model), device, dtype), lambda: {"loaded": True}


def _prepare(settings, *, device, work, progress, note):
    return read_frames(settings.driving_video)


def _run(pipe, settings, frames, *, on_frame, progress, note) -> Generated:
    h, w = frames.shape[1:3]
    ref = np.asarray(Image.open(settings.image).convert("RGB").resize((w, h)), dtype=np.float32)
    for i, frame in enumerate(frames):
        on_frame(i, expected_frame(ref, frame, settings.options.tint))
        progress("frames", i + 1, len(frames))
    return Generated(list(range(len(frames))), (h, w), {"tint": settings.options.tint, "steps": settings.options.steps}, ["toy note"])


def expected_frame(ref: np.ndarray, frame: np.ndarray, tint: float) -> np.ndarray:
    return np.round(ref * tint + frame.astype(np.float32) * (1 - tint)).astype(np.uint8)


TOY = Backbone(name="toy", title="Toy", summary="image + driving video -> blended frames (a test backbone)", options=ToyOptions,
               validate=_validate, loader=_loader, prepare=_prepare, run=_run, model_help="any name")  # fmt: skip


@pytest.fixture
def toy(monkeypatch):
    """TOY registered for one test (the cached parsers forgotten before and after)."""
    command_parser.cache_clear()
    monkeypatch.setitem(backbones.BACKBONES, "toy", TOY)
    yield TOY
    command_parser.cache_clear()


@pytest.fixture
def clip(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return write_video(tmp_path / "dance.mp4", [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(3)], fps=5)


def _animate(*args) -> list[str]:
    return ["animate", *map(str, args)]


# ------------------------------------------------------------------------------------------------ one registration
def test_a_registered_backbone_is_a_choice_with_its_flags_and_defaults(toy, capsys):
    with pytest.raises(SystemExit):
        main(["animate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--backbone {" + ",".join(backbones.BACKBONES) + "}" in text and ",toy}" in text
    assert "Toy (--backbone toy): --tint TINT share of the reference image in each frame (default: 0.25)" in text
    # --steps: one flag for every backbone that takes it, its help lists each one's default from the options dataclasses
    steps = ", ".join(f"{b.name} {b.default_of('steps')}" for b in backbones.BACKBONES.values() if b.takes("steps"))
    assert steps.startswith("dreampose 100, ") and steps.endswith(", toy 7")
    assert f"--steps STEPS, --n_steps STEPS denoising steps (default: {steps})" in text


def test_a_registered_backbone_runs_through_the_shared_writer(toy, tmp_path, clip, examples_dir, capsys):
    out = tmp_path / "out" / "toy.mp4"
    image = examples_dir / "key_frame.png"
    assert main(_animate("--backbone", "toy", "--image", image, "--driving-video", clip, "--model", "m", "--tint", 0.5, "--out", out,
                         "--quiet", "--device", "cpu")) == 0  # fmt: skip
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy.gif", "toy.json", "toy.mp4", "toy_frames"]
    frames = read_frames(clip)
    ref = np.asarray(Image.open(image).convert("RGB").resize((48, 32)), dtype=np.float32)
    for i, frame in enumerate(frames):  # PNGs are lossless: the backbone's frames exactly
        assert np.array_equal(np.asarray(Image.open(out.parent / "toy_frames" / f"frame_{i}.png")), expected_frame(ref, frame, 0.5))
    side = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert side["method"] == "toy" and side["tint"] == 0.5 and side["steps"] == 7 and side["frames"] == [0, 1, 2]
    assert side["size_hw"] == [32, 48] and side["notes"] == ["toy note"] and side["driving_video"] == str(clip)


def test_a_batch_job_takes_the_backbone_field(toy, tmp_path, clip, examples_dir):
    from posevid.batch.runner import job_settings, model_key

    jobs_file = tmp_path / "jobs.jsonl"
    lines = [{"task": "animate", "id": "t", "backbone": "toy", "image": str(examples_dir / "key_frame.png"), "driving-video": str(clip),
              "model": "m", "tint": 0.1, "device": "cpu"},
             {"task": "animate", "id": "bad", "backbone": "toy", "image": "k.png", "driving-video": "v.mp4", "s1": 3}]  # fmt: skip
    jobs_file.write_text("".join(json.dumps(x) + "\n" for x in lines))
    jobs, bad = read_jobs(jobs_file)
    assert [j.id for j in jobs] == ["t"] and job_settings(jobs[0], tmp_path / "t.mp4").options == ToyOptions(tint=0.1)
    assert model_key(jobs[0]) == ("animate", repr(("toy", "m", "cpu", "fp32")))  # the task's own key, per backbone
    expected = "--s1 is an option of --backbone dreampose, not of --backbone toy (drop it, or pass --backbone dreampose)"
    assert [b.error for b in bad] == [expected]


def test_the_app_tab_offers_the_backbone_with_its_controls(toy, tmp_path, monkeypatch):
    gr = pytest.importorskip("gradio")
    from posevid.app import backend
    from posevid.app.server import AppConfig, prepare_environment
    from posevid.app.ui import build_app

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.setenv(name, "")
    config = AppConfig(output_dir=str(tmp_path / "out"), animate_models={"toy": "m"})
    prepare_environment(config)
    demo = build_app(config)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert [c[1] for c in by_id["i2v-backbone"].choices] == list(backbones.BACKBONES)
    assert "toy" in backbones.BACKBONES
    assert isinstance(by_id["i2v-toy-tint"], gr.Slider) and by_id["i2v-toy-tint"].value == 0.25 and by_id["i2v-toy-steps"].value == 7
    params = [p["parameter_name"] for p in demo.get_api_info()["named_endpoints"]["/image_to_video"]["parameters"]]
    assert params[-2:] == ["toy_tint", "toy_steps"]
    calls = []

    def fake_task(models, **kw):
        calls.append(kw)
        return {"mp4": kw["out_dir"] / "result.mp4", "gif": None, "sidecar": kw["out_dir"] / "result.json", "num_frames": 3}

    monkeypatch.setattr(backend, "run_image_to_video", fake_task)
    handler = next(f.fn for f in demo.fns.values() if f.api_name == "image_to_video")
    image = str(Path(__file__).parents[1] / "examples" / "key_frame.png")
    video = write_video(tmp_path / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 2, fps=4)
    asyncio.run(handler(image, None, driving=str(video), backbone="toy", toy_tint=0.75, toy_steps=3.0, hist=[], request=None,
                        progress=lambda *a, **k: None))  # fmt: skip
    kw = calls[-1]
    assert kw["backbone"] == "toy" and kw["model"] == "m" and kw["tint"] == 0.75 and kw["steps"] == 3 and isinstance(kw["steps"], int)
    assert "s1" not in kw and "densepose_person" not in kw  # only the chosen backbone's options reach the task


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("registered", [False, True])
def test_unknown_backbone_is_one_line_exit_2_and_writes_nothing(request, registered, tmp_path, clip, examples_dir, capsys):
    if registered:
        request.getfixturevalue("toy")
    out = tmp_path / "out"
    code = main(_animate("--backbone", "wan-animat", "--image", examples_dir / "key_frame.png", "--driving-video", clip, "--out",
                         out / "x.mp4"))  # fmt: skip
    err = capsys.readouterr().err
    names = ", ".join(backbones.BACKBONES)
    assert ("toy" in names) == registered
    assert code == 2 and err == f"posevid animate: error: unknown backbone 'wan-animat' (choose one of {names})\n"
    assert not out.exists()


def test_an_option_of_another_backbone_is_one_line_naming_its_backbone(toy, tmp_path, clip, examples_dir, capsys):
    out = tmp_path / "out"
    common = ["--image", examples_dir / "key_frame.png", "--driving-video", clip, "--model", "m", "--out", out / "x.mp4"]
    for argv, message in (
        (["--backbone", "toy", "--s1", "8"], "--s1 is an option of --backbone dreampose, not of --backbone toy"),
        (["--backbone", "toy", "--n_steps", "3", "--max_j", "2"], "--max_j is an option of --backbone dreampose, not of --backbone toy"),
        (["--tint", "0.3"], "--tint is an option of --backbone toy, not of --backbone dreampose"),
    ):
        assert main(_animate(*argv, *common)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"posevid animate: error: {message}") and err.count("\n") == 1, err
    assert not out.exists()
    # a flag both take is the chosen one's: --steps (and its test.py spelling) fills the toy's steps
    from posevid.commands.animate import collect_settings

    args = command_parser("animate").parse_args(["--backbone", "toy", "--n_steps", "3"])
    assert collect_settings(args).options == ToyOptions(steps=3)


def test_settings_from_values_is_the_library_spelling_of_the_same_rules(toy):
    from posevid.tasks.animate import AnimateSettings, settings_from_values
    from posevid.tasks.backbones.dreampose import DreamPoseOptions

    s = settings_from_values({"image": "k.png", "s1": 2.0, "seed": 5})
    assert s == AnimateSettings(image="k.png", seed=5, options=DreamPoseOptions(s1=2.0))
    assert AnimateSettings(backbone="toy").options == ToyOptions()  # the backbone's defaults
    with pytest.raises(InputError, match="^--s1 is an option of --backbone dreampose"):
        settings_from_values({"backbone": "toy", "s1": 2.0})
    with pytest.raises(InputError, match="^unknown animate setting 'colour'"):
        settings_from_values({"colour": "red"})
    with pytest.raises(InputError, match=r"^unknown backbone 'x' \(choose one of dreampose, .*toy\)"):
        AnimateSettings(backbone="x")
