"""The app's text -> video job is the ``posevid generate`` task: same frames, same defaults, cancel still stops it.

In-process (no server): the Gradio handler behind ``/text_to_video`` is called directly, so the app and the
CLI run in one process with one thread count and their frames can be compared bit for bit.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")

from posevid.app import backend  # noqa: E402
from posevid.app.jobs import JobCancelled  # noqa: E402
from posevid.app.server import AppConfig  # noqa: E402
from posevid.tasks.generate import GenerateSettings  # noqa: E402

T2V_IDS = {"t2v-frames": "video_length", "t2v-stride": "stride", "t2v-steps": "steps", "t2v-guidance": "guidance",
           "t2v-scheduler": "scheduler", "t2v-seed": "seed", "t2v-width": "width", "t2v-height": "height"}  # fmt: skip


class _Request:
    session_hash = "test-session"


def _build(model: Path, tmp_path: Path):
    from posevid.app.ui import build_app

    config = AppConfig(model=str(model), output_dir=str(tmp_path / "app-out"), device="cpu")
    config.output_path.mkdir(parents=True)
    return build_app(config)


def _handler(demo, api_name: str):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


def _form_values(demo) -> dict[str, object]:
    return {b.elem_id: b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) in T2V_IDS}


def _pngs(folder: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def test_app_text_to_video_equals_posevid_generate_bit_for_bit(tiny_fyp_release, examples_dir, tmp_path, monkeypatch):
    from posevid.app.jobs import Job
    from posevid.cli import main

    skeleton = examples_dir / "dance_skeleton.mp4"
    demo = _build(tiny_fyp_release, tmp_path)
    form = ("a robot dancing", "", str(skeleton), "skeleton video", 3, 2, 2, 7.5, "ddim", 7, 64, 64)
    # What the task reports to the job, recorded as it happens. The page polls the job every 0.2 s, so a 2-step run of the
    # tiny model can end between two polls (this assertion used to be flaky); the page's forwarding of the counter is
    # checked on a 100-step run in test_app_server.test_cancel_stops_the_denoising_loop_and_the_model_is_loaded_once.
    reported = []
    original = Job.progress
    monkeypatch.setattr(Job, "progress", lambda job, *a: (reported.append(a), original(job, *a))[1])

    video, info, files = asyncio.run(_handler(demo, "text_to_video")(*form, [], request=_Request(), progress=lambda *a, **k: None))[:3]
    assert "3 frames" in info
    folder = Path(video).parent
    assert folder.parent.parent == demo.posevid_state.config.output_path  # <output>/<session>/<request>/: served from there
    assert {Path(f).name for f in files} == {"result.mp4", "result.gif", "result.json"}
    assert [r for r in reported if r[0] == "denoise"] == [("denoise", 1, 2), ("denoise", 2, 2)]  # a step counter out of the form's 2 steps

    assert main(["generate", "--model", str(tiny_fyp_release), "--prompt", "a robot dancing", "--pose", str(skeleton), "--frames", "3",
                 "--stride", "2", "--steps", "2", "--guidance", "7.5", "--seed", "7", "--height", "64", "--width", "64",
                 "--device", "cpu", "--gif", "--frames-dir", str(tmp_path / "cli_frames"), "--out", str(tmp_path / "cli.mp4")]) == 0
    app_frames, cli_frames = _pngs(folder / "frames"), _pngs(tmp_path / "cli_frames")
    assert app_frames.shape == (3, 64, 64, 3) and app_frames.std() > 0
    np.testing.assert_array_equal(app_frames, cli_frames)  # the same task: bit-equal, not "close"

    app_meta = json.loads((folder / "result.json").read_text())
    cli_meta = json.loads((tmp_path / "cli.json").read_text())
    assert app_meta["kind"] == cli_meta["kind"] == "generate"
    where = {"output_dir", "all_outputs", "files", "outputs", "frames_dir", "out", "side_by_side_out", "load_seconds", "generate_seconds",
             "model"}
    assert {k: v for k, v in app_meta["settings"].items() if k not in where | {"pose_source"}} == {
        k: v for k, v in cli_meta["settings"].items() if k not in where}  # fmt: skip
    assert app_meta["settings"]["pose_source"] == "dance_skeleton.mp4 (skeleton video)"


def test_app_side_by_side_equals_posevid_generate_side_by_side(tiny_fyp_release, examples_dir, tmp_path):
    """The app's "Skeleton | result" video is the task's side-by-side output, the very frames of ``posevid generate
    --side-by-side`` (the skeleton as the pipeline read it), not the skeleton video re-read and resized on its own."""
    from posevid.cli import main
    from posevid.video import read_frames

    skeleton = examples_dir / "dance_skeleton.mp4"
    demo = _build(tiny_fyp_release, tmp_path)
    form = ("a robot dancing", "", str(skeleton), "skeleton video", 3, 2, 1, 7.5, "ddim", 7, 64, 64)
    video = asyncio.run(_handler(demo, "text_to_video")(*form, [], request=_Request(), progress=lambda *a, **k: None))[0]
    assert main(["generate", "--model", str(tiny_fyp_release), "--prompt", "a robot dancing", "--pose", str(skeleton), "--frames", "3",
                 "--stride", "2", "--steps", "1", "--guidance", "7.5", "--seed", "7", "--height", "64", "--width", "64",
                 "--device", "cpu", "--side-by-side", "--quiet", "--out", str(tmp_path / "cli.mp4")]) == 0
    app_frames, cli_frames = read_frames(video), read_frames(tmp_path / "cli.mp4")
    assert app_frames.shape == (3, 64, 128, 3) and app_frames[:, :, :64].std() > 0  # skeleton | result, both 64x64
    np.testing.assert_array_equal(app_frames, cli_frames)  # same machine, same decoder: the same pixels


def test_the_forms_defaults_are_the_tasks_and_a_changed_default_shows_up(tiny_fyp_release, tmp_path, monkeypatch):
    defaults = GenerateSettings()
    assert _form_values(_build(tiny_fyp_release, tmp_path / "a")) == {k: getattr(defaults, f) for k, f in T2V_IDS.items()}

    @dataclass
    class Changed(GenerateSettings):
        steps: int = 7
        seed: int = 1234
        guidance: float = 3.5
        fps: float = 24.0  # not on the form: reaches the job through the task's settings

    monkeypatch.setattr(backend, "GenerateSettings", Changed)
    demo = _build(tiny_fyp_release, tmp_path / "b")
    form = _form_values(demo)
    assert (form["t2v-steps"], form["t2v-seed"], form["t2v-guidance"]) == (7, 1234, 3.5)
    job_settings = demo.posevid_state.t2v_settings(prompts=["x"], steps=int(form["t2v-steps"]))
    assert job_settings.fps == 24.0 and job_settings.steps == 7 and job_settings.device == "cpu"


def test_cancel_from_the_step_callback_stops_the_task_and_frees_the_pipeline(tiny_fyp_release, examples_dir, tmp_path):
    models = backend.ModelCache()
    skeleton = str(examples_dir / "dance_skeleton.mp4")
    settings = GenerateSettings(model=str(tiny_fyp_release), device="cpu", prompts=["a dancer"], pose=skeleton, video_length=2, stride=2,
                                steps=6, width=64, height=64)  # fmt: skip
    seen = []

    def report(stage, done, total):  # what Job.progress does after the user pressed Cancel at step 2
        seen.append((stage, done, total))
        if stage == "denoise" and done == 2:
            raise JobCancelled("cancelled")

    (tmp_path / "a").mkdir()
    with pytest.raises(JobCancelled):
        backend.run_text_to_video(settings, out_dir=tmp_path / "a", models=models, progress=report)
    assert seen == [("load", 0, 1), ("load", 1, 1), ("denoise", 1, 6), ("denoise", 2, 6)]  # stopped there, not at the end
    assert not any((tmp_path / "a").iterdir())  # no half-written result
    (entry,) = models._entries.values()
    assert not entry.lock.locked()  # the next request can use the pipeline
    (tmp_path / "b").mkdir()
    res = backend.run_text_to_video(settings, out_dir=tmp_path / "b", models=models)
    assert res["num_frames"] == 2 and res["mp4"].is_file() and res["side_by_side"].is_file() and models.loads == 1


def test_preload_fills_the_key_the_text_to_video_job_uses(tiny_fyp_release, examples_dir, tmp_path):
    demo = _build(tiny_fyp_release, tmp_path)
    state = demo.posevid_state
    state.preload()
    assert state.models.loads == 1
    settings = state.t2v_settings(prompts=["a dancer"], pose=str(examples_dir / "dance_skeleton.mp4"), video_length=2, stride=2, steps=1,
                                  width=64, height=64)  # fmt: skip
    (tmp_path / "job").mkdir()
    backend.run_text_to_video(settings, out_dir=tmp_path / "job", models=state.models)
    assert state.models.loads == 1  # the request found the preloaded pipeline
