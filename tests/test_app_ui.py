"""Error translation of the UI handlers: user mistakes keep their one line, crashes become a short note."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")

from posevid.app.jobs import JobCancelled  # noqa: E402
from posevid.app.ui import _friendly  # noqa: E402
from posevid.errors import InputError  # noqa: E402


def _raise(exc):
    @_friendly
    async def handler():
        raise exc

    return handler


def test_user_mistake_is_shown_as_its_one_line():
    with pytest.raises(gr.Error) as err:
        asyncio.run(_raise(InputError("Pose: 'x.mp4' does not contain mp4 data", hint="upload the real file"))())
    assert err.value.message == "Pose: 'x.mp4' does not contain mp4 data (upload the real file)"


def test_unexpected_error_is_a_short_note_and_the_traceback_goes_to_the_log(caplog):
    with caplog.at_level(logging.ERROR, logger="posevid.app"), pytest.raises(gr.Error) as err:
        asyncio.run(_raise(RuntimeError("CUDA kernel exploded at /secret/path.py:12"))())
    assert err.value.message == "Internal error (RuntimeError); the details are in the server log."
    assert "secret" not in err.value.message and "Traceback" not in err.value.message
    assert "CUDA kernel exploded" in caplog.text  # kept for the operator


def test_cancelled_job_says_so():
    with pytest.raises(gr.Error) as err:
        asyncio.run(_raise(JobCancelled("job 3 cancelled"))())
    assert err.value.message == "Cancelled."


def test_image_to_video_form_has_the_driving_video_inputs_and_old_api_calls_still_fit(tmp_path, monkeypatch):
    from posevid.app.server import AppConfig, prepare_environment
    from posevid.app.ui import build_app
    from posevid.densepose.options import PERSON_RULES
    from posevid.tasks.backbones import BACKBONES

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):  # prepare_environment sets them; restored after the test
        monkeypatch.setenv(name, "")
    config = AppConfig(output_dir=str(tmp_path / "out"), animate_options={"dreampose": {"densepose_weights": "weights.safetensors"}})
    prepare_environment(config)
    demo = build_app(config)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert isinstance(by_id["i2v-driving"], gr.File) and ".mp4" in by_id["i2v-driving"].file_types
    assert by_id["i2v-person"].value == "top-score" and [c[1] for c in by_id["i2v-person"].choices] == list(PERSON_RULES)
    assert [c[1] for c in by_id["i2v-backbone"].choices] == list(BACKBONES)  # the choice comes from the registry
    params = demo.get_api_info()["named_endpoints"]["/image_to_video"]["parameters"]
    # the API clients written before the backbone choice call: the same ten values first, in the same order
    assert [p["parameter_name"] for p in params[:10]] == ["image", "poses", "s1", "s2", "steps", "seed", "scheduler", "driving",
                                                         "person", "short_side"]  # fmt: skip
    assert [p["label"] for p in params[8:10]] == ["Person to follow in the driving video", "DensePose short side (pixels)"]
    assert all(p["parameter_has_default"] for p in params[2:])  # clients that send only the first seven values keep working
    assert params[10]["parameter_name"] == "backbone" and params[10]["parameter_default"] == "dreampose"


def test_startup_files_that_went_missing_are_one_line(tmp_path):
    from posevid.app.server import AppConfig
    from posevid.app.ui import AppState
    from posevid.errors import PosevidError
    from posevid.tasks.backbones import get_backbone

    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"x")
    state = AppState(AppConfig(output_dir=str(tmp_path / "out"), animate_models={"dreampose": str(tmp_path)},
                               animate_options={"dreampose": {"densepose_weights": str(weights)}}))  # fmt: skip
    assert state.animate_values(get_backbone("dreampose"))["densepose_weights"] == str(weights)
    weights.unlink()  # moved away after the app started
    with pytest.raises(PosevidError) as err:
        state.animate_values(get_backbone("dreampose"))
    assert str(err.value).startswith(f"--densepose-weights: not found: {weights}") and "restart the app" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(PosevidError, match="no DreamPose model loaded"):
        AppState(AppConfig(output_dir=str(tmp_path / "out"))).animate_values(get_backbone("dreampose"))


def test_a_backbone_with_hub_weights_runs_without_its_model_flag_as_posevid_animate_does(tmp_path):
    """``posevid animate --backbone wan-animate`` without --model uses the hub id from the cache; so does the app."""
    from posevid.app.server import AppConfig
    from posevid.app.ui import AppState
    from posevid.commands.app import register
    from posevid.pipelines.wan_animate import HUB_ID
    from posevid.tasks.backbones import get_backbone

    state = AppState(AppConfig(output_dir=str(tmp_path / "out")))
    assert state.animate_values(get_backbone("wan-animate"))["model"] == HUB_ID
    given = AppState(AppConfig(output_dir=str(tmp_path / "out"), animate_models={"wan-animate": str(tmp_path)}))
    assert given.animate_values(get_backbone("wan-animate"))["model"] == str(tmp_path)
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub, argparse.HelpFormatter)
    helps = {a.dest: a.help for a in sub.choices["app"]._actions}
    assert f"(default: {HUB_ID}, from the hub cache)" in helps["wan_animate_model"]
    assert "default" not in helps["dreampose_model"]


def test_image_to_video_short_side_setting_reaches_the_task(tmp_path, monkeypatch, examples_dir):
    """The advanced "DensePose short side" control: its default is posevid densepose's, and the value goes to the job."""
    import numpy as np

    from posevid.app import backend
    from posevid.app.server import AppConfig, prepare_environment
    from posevid.app.ui import build_app
    from posevid.densepose.options import DensePoseOptions
    from posevid.video import write_video

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.setenv(name, "")
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"x")  # only its existence is checked before the (replaced) task runs
    video = write_video(tmp_path / "dance.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, fps=4)
    config = AppConfig(output_dir=str(tmp_path / "out"), animate_models={"dreampose": str(tmp_path)},
                       animate_options={"dreampose": {"densepose_weights": str(weights)}})
    prepare_environment(config)
    demo = build_app(config)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert by_id["i2v-short-side"].value == DensePoseOptions.short_side  # the one default: the model's own 800, the reference
    calls = []

    def fake_task(models, **kw):
        calls.append(kw)
        return {"mp4": kw["out_dir"] / "result.mp4", "gif": kw["out_dir"] / "result.gif", "sidecar": kw["out_dir"] / "result.json",
                "num_frames": 2}

    monkeypatch.setattr(backend, "run_image_to_video", fake_task)
    handler = next(f.fn for f in demo.fns.values() if f.api_name == "image_to_video")
    image = str(examples_dir / "key_frame.png")
    for short_side, expected in ((512, 512), (None, DensePoseOptions.short_side)):
        out = asyncio.run(handler(image, None, 8, 3, 1, 0, "pndm", str(video), "top-score", short_side, hist=[],
                                  request=None, progress=lambda *a, **k: None))  # fmt: skip
        assert calls[-1]["densepose_short_side"] == expected and calls[-1]["driving_video"] == Path(video)
        assert out[3][-1]["settings"]["i2v-short-side"] == expected  # kept in the history, loaded back into the form


def test_image_to_video_runs_on_the_animate_tasks_device_and_dtype_unless_the_app_is_told(tmp_path, monkeypatch, examples_dir):
    """``posevid app`` without --device/--dtype: the image -> video job gets AnimateSettings' defaults (device auto, dtype auto:
    fp16 on a GPU), as ``posevid animate`` does, not cpu/fp32; the app's flags still override both, and --preload fills the
    key the job looks up."""
    from types import SimpleNamespace

    import posevid.app.server as server
    import posevid.tasks.animate as animate_task
    from posevid.app.ui import build_app
    from posevid.cli import main
    from posevid.tasks.animate import AnimateSettings

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.setenv(name, "")
    configs, jobs, keys = [], [], []
    monkeypatch.setattr(server, "launch", lambda config, block=True: configs.append(config))

    def fake_animate(settings, *, models=None, progress=None, note=None):
        jobs.append(settings)
        out = Path(settings.out)
        return SimpleNamespace(video=out, gif=out.with_suffix(".gif"), sidecar=out.with_suffix(".json"), frame_files=["frame_0.png"])

    monkeypatch.setattr(animate_task, "animate", fake_animate)
    from plugins.dreampose import write_synthetic_densepose

    image = str(examples_dir / "key_frame.png")
    poses = [str(p) for p in sorted(write_synthetic_densepose(tmp_path / "poses", [0]).glob("*.npy"))]
    defaults = AnimateSettings()
    for flags, expected in (([], (defaults.device, defaults.dtype)), (["--device", "cpu", "--dtype", "bf16"], ("cpu", "bf16"))):
        out = tmp_path / f"out{len(configs)}"
        assert main(["app", "--dreampose-model", str(tmp_path), "--output-dir", str(out), *flags]) == 0
        server.prepare_environment(configs[-1])
        demo = build_app(configs[-1])
        handler = next(f.fn for f in demo.fns.values() if f.api_name == "image_to_video")
        asyncio.run(handler(image, poses, 8, 3, 1, 0, "pndm", None, "top-score", None, hist=[], request=None,
                            progress=lambda *a, **k: None))  # fmt: skip
        assert (jobs[-1].device, jobs[-1].dtype) == expected
        monkeypatch.setattr(demo.posevid_state.models, "get", lambda key, load: keys.append(key))
        demo.posevid_state.preload()
        assert keys[-1] == animate_task.model_key(jobs[-1])  # preloaded under the job's own key
    assert (defaults.device, defaults.dtype) == ("auto", "auto")
