"""``posevid densepose`` and ``posevid convert --densepose-pkl``: outputs, person choice, and bad input.

Most runs use ``--short-side`` 128-160 so the tiny model takes a fraction of a second per frame; one run
at the reference's 800 px checks the CLI's file against detectron2's ``dreampose_npy``.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from _densepose_golden import FIXTURE, IMAGES, META, TOL, error, golden, rgb
from posevid.cli import main as cli_main

ST = FIXTURE / "weights.safetensors"
PKL = FIXTURE / "model_final.pkl"


def run_cli(args, capsys):
    code = cli_main(["densepose", *map(str, args)])
    return code, capsys.readouterr()


def assert_one_line_error(code, out, where):
    assert code == 2
    lines = [line for line in out.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("posevid densepose: error:"), out.err
    assert "Traceback" not in out.err
    assert not where.exists()
    assert not any(p.name.startswith(f".{where.name}.") for p in where.parent.iterdir())  # no temporary folder left


def small_frames(tmp_path, n=2):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        img = Image.fromarray(rgb(IMAGES[i % len(IMAGES)])).resize((120, 150))
        img.save(folder / f"frame_{i}.png")
    return folder


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------
def test_cli_image_at_reference_size_matches_dreampose_golden(tmp_path, capsys):
    image = IMAGES[0]
    src = tmp_path / META["images"][image]["file"]
    src.write_bytes((FIXTURE / META["images"][image]["file"]).read_bytes())
    out = tmp_path / "dp"
    code, cap = run_cli([src, "--out", out, "--weights", PKL, "--device", "cpu", "--quiet"], capsys)
    assert code == 0, cap.err
    files = sorted(out.glob("*_densepose.npy"))
    assert [f.name for f in files] == ["frame_0_densepose.npy"]
    canvas = np.load(files[0], allow_pickle=False)
    g = golden(image)
    assert canvas.dtype == np.float64
    y0, x0, h, w = g["dreampose_npy.origin"].tolist()
    assert canvas.shape == (2, h, w)
    win = g["dreampose_npy.window"]
    assert error(torch.from_numpy(canvas[:, y0 : y0 + win.shape[1], x0 : x0 + win.shape[2]]), win) <= TOL
    assert np.abs(canvas).sum() == pytest.approx(float(win.double().abs().sum()), rel=1e-4)
    side = json.loads((out / "densepose.json").read_text())
    assert side["frames"] == 1 and side["frames_without_person"] == [] and side["config"]["min_size"] == 800


def test_cli_folder_iuv_preview_and_track(tmp_path, capsys):
    from posevid.data.dreampose_poses import DensePoseSequence, load_uv

    frames = small_frames(tmp_path, 3)
    out = tmp_path / "dp"
    code, cap = run_cli([frames, "--out", out, "--weights", ST, "--short-side", "128", "--iuv", "--preview", "--person", "track",
                         "--batch-size", "2"], capsys)
    assert code == 0, cap.err
    assert "wrote 3 DensePose frame(s)" in cap.out
    seq = DensePoseSequence.from_folder(out)  # the existing reader takes the folder as DreamPose poses
    assert seq.frames == [0, 1, 2]
    for n in seq.frames:
        uv = np.load(out / f"frame_{n}_densepose.npy")
        assert uv.shape == (2, 150, 120) and uv.dtype == np.float64 and uv.any()
        back = load_uv(out / "iuv" / f"frame_{n}.png", "iuv")  # the IUV convention the reader expects
        # random tiny weights give U, V outside [0, 1] too; the 8-bit image holds them clipped
        assert np.abs(back - np.clip(uv, 0, 1)).max() <= 0.5 / 255 + 1e-6
    assert (out / "preview.mp4").stat().st_size > 0
    side = json.loads((out / "densepose.json").read_text())
    assert side["settings"]["person"] == "track" and len(side["per_frame"]) == 3


def test_cli_video_input(tmp_path, capsys):
    from posevid.video.io import write_video

    video = tmp_path / "clip.mp4"
    write_video(video, [np.asarray(Image.fromarray(rgb(IMAGES[0])).resize((96, 120)))] * 3, fps=4)
    out = tmp_path / "dp"
    code, cap = run_cli([video, "--out", out, "--weights", ST, "--short-side", "96", "--quiet"], capsys)
    assert code == 0, cap.err
    assert sorted(p.name for p in out.glob("*.npy")) == [f"frame_{i}_densepose.npy" for i in range(3)]


def test_frames_without_person_get_zero_canvas_and_are_counted(tmp_path):
    from posevid.densepose.extract import extract_densepose
    from posevid.densepose.options import DensePoseOptions
    from posevid.densepose.predictor import DensePosePredictor, FrameResult

    real = DensePosePredictor.from_weights(ST, device="cpu")
    real = real.with_config(replace(real.cfg, min_size=128, max_size=213))

    class DropSecond:  # the real model, with frame 1's detections removed (as if nobody were there)
        device, cfg, seen = real.device, real.cfg, 0

        def __call__(self, frames, choose=None):
            out = []
            for r in real(frames, choose=choose):
                if self.seen == 1:
                    r = FrameResult(r.image_size, r.boxes[:0], r.scores[:0], {k: v[:0] for k, v in r.charts.items()}, [])
                out.append(r)
                self.seen += 1
            return out

    frames = small_frames(tmp_path, 3)
    report = extract_densepose(frames, tmp_path / "dp", DensePoseOptions(batch_size=2), progress=False, predictor=DropSecond())
    assert report.frames_without_person == [1]
    assert not np.load(tmp_path / "dp" / "frame_1_densepose.npy").any()
    assert np.load(tmp_path / "dp" / "frame_0_densepose.npy").any()
    assert json.loads((tmp_path / "dp" / "densepose.json").read_text())["frames_without_person"] == [1]


def test_person_rules():
    from posevid.densepose.extract import PersonChooser
    from posevid.densepose.predictor import FrameResult

    def frame(boxes, scores):
        b = torch.tensor(boxes, dtype=torch.float32)
        return FrameResult((100, 100), b, torch.tensor(scores), {})

    a = frame([[0, 0, 10, 10], [50, 50, 90, 95]], [0.9, 0.8])
    assert PersonChooser("top-score")(a) == 0
    assert PersonChooser("largest")(a) == 1
    track = PersonChooser("track")
    assert track(a) == 0
    assert track(frame([[52, 50, 92, 95], [1, 1, 11, 11]], [0.95, 0.5])) == 1  # follows the overlapping box
    assert track(frame([], [])) is None  # nobody: the track keeps its last box
    assert track(frame([[70, 70, 80, 80], [2, 1, 12, 11]], [0.9, 0.4])) == 1
    assert track(frame([[70, 70, 80, 80]], [0.9])) == 0 and track.resets == 1  # nothing overlaps: top score


def test_convert_pkl_to_safetensors(tmp_path, capsys):
    out = tmp_path / "dp.safetensors"
    assert cli_main(["convert", "--densepose-pkl", str(PKL), "--out", str(out)]) == 0
    ours, ref = load_file(str(out)), load_file(str(ST))
    assert sorted(ours) == sorted(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
    assert cli_main(["convert", "--densepose-pkl", str(PKL), "--out", str(out)]) == 2  # exists, no --overwrite


def test_offline_download_error_names_url_and_cache_file(tmp_path, monkeypatch):
    from posevid.densepose.weights import WEIGHTS_URL, resolve_weights
    from posevid.errors import CheckpointError

    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("POSEVID_OFFLINE", "1")
    monkeypatch.delenv("POSEVID_DENSEPOSE_WEIGHTS", raising=False)
    with pytest.raises(CheckpointError) as err:
        resolve_weights(None)
    msg = str(err.value)
    assert WEIGHTS_URL in msg and str(tmp_path / "cache" / "models" / "model_final_162be9.pkl") in msg and "\n" not in msg


def test_strict_keys_are_named():
    from posevid.densepose.model import DensePoseRCNN
    from posevid.errors import CheckpointError

    state = dict(load_file(str(ST)))
    state.pop("roi_heads.decoder.p3.0.bias")
    with pytest.raises(CheckpointError, match=r"missing key\(s\), e\.g\. roi_heads\.decoder\.p3\.0\.bias"):
        DensePoseRCNN.from_state_dict(state)
    state = dict(load_file(str(ST)), **{"roi_heads.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\), e\.g\. roi_heads\.extra\.weight"):
        DensePoseRCNN.from_state_dict(state)


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing left
# ------------------------------------------------------------------------------------------------
def test_corrupt_and_empty_video_and_image_as_video(tmp_path, capsys):
    bad = {"corrupt.mp4": os.urandom(4096), "empty.mp4": b"", "picture.mp4": (FIXTURE / "image1.png").read_bytes()}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        out = tmp_path / f"out_{name}"
        code, cap = run_cli([tmp_path / name, "--out", out, "--weights", ST, "--quiet"], capsys)
        assert_one_line_error(code, cap, out)
        assert name in cap.err


def test_nobody_in_frame(tmp_path, capsys):
    state = dict(load_file(str(ST)))
    bias = state["roi_heads.box_predictor.cls_score.bias"].clone()
    bias[:-1] = -1000.0  # no class beats background anywhere
    state["roi_heads.box_predictor.cls_score.bias"] = bias
    save_file(state, str(tmp_path / "nobody.safetensors"))
    out = tmp_path / "dp"
    code, cap = run_cli([small_frames(tmp_path, 1) / "frame_0.png", "--out", out, "--weights", tmp_path / "nobody.safetensors",
                         "--short-side", "96", "--quiet"], capsys)
    assert_one_line_error(code, cap, out)
    assert "no person" in cap.err


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_weights_are_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model_final.pkl"
    evil.write_bytes(pickle.dumps({"model": {"x": _Payload(marker)}}))
    out = tmp_path / "dp"
    image = FIXTURE / "image1.png"
    code, cap = run_cli([image, "--out", out, "--weights", evil, "--quiet"], capsys)
    assert_one_line_error(code, cap, out)
    assert "refusing to unpickle" in cap.err and "system" in cap.err
    assert cli_main(["convert", "--densepose-pkl", str(evil), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not marker.exists() and not (tmp_path / "x.safetensors").exists()


def test_truncated_and_wrong_model_weights(tmp_path, capsys):
    image = FIXTURE / "image1.png"
    cut_pkl = tmp_path / "cut.pkl"
    cut_pkl.write_bytes(PKL.read_bytes()[: PKL.stat().st_size // 2])
    cut_st = tmp_path / "cut.safetensors"
    cut_st.write_bytes(ST.read_bytes()[: ST.stat().st_size // 2])
    wrong = FIXTURE.parent / "fyp_tiny" / "state_dict.safetensors"  # a Follow-Your-Pose UNet, not DensePose
    for weights, words in ((cut_pkl, "cannot read weights"), (cut_st, "cannot read safetensors"), (wrong, "not a DensePose R-CNN")):
        out = tmp_path / f"out_{weights.stem}"
        code, cap = run_cli([image, "--out", out, "--weights", weights, "--quiet"], capsys)
        assert_one_line_error(code, cap, out)
        assert words in cap.err and weights.name in cap.err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "dp"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, cap = run_cli([FIXTURE / "image1.png", "--out", out, "--weights", ST, "--quiet"], capsys)
    assert code == 2 and "--overwrite" in cap.err and (out / "keep.txt").exists()


def test_bf16_runs_and_unavailable_device_is_one_line(tmp_path, capsys):
    out = tmp_path / "bf16"
    code, cap = run_cli([FIXTURE / "image1.png", "--out", out, "--weights", ST, "--dtype", "bf16", "--short-side", "96", "--device", "cpu",
                         "--quiet"], capsys)
    assert code == 0, cap.err
    assert np.isfinite(np.load(next(out.glob("frame_*_densepose.npy")))).all()
    if not torch.cuda.is_available():
        out = tmp_path / "cuda"
        code, cap = run_cli([FIXTURE / "image1.png", "--out", out, "--weights", ST, "--device", "cuda", "--quiet"], capsys)
        assert_one_line_error(code, cap, out)
        assert "--device cuda" in cap.err


@pytest.mark.parametrize(
    "command, flag",
    [("densepose", "--weights"), ("prepare", "--densepose-weights"), ("animate", "--densepose-weights"), ("convert", "--densepose-pkl")],
)
def test_missing_weights_hint_names_the_flag_of_the_command_run(command, flag, tmp_path, capsys, monkeypatch, examples_dir):
    """A missing weights file, given by flag, by $POSEVID_DENSEPOSE_WEIGHTS or not at all (offline, empty cache): the one
    error line tells how to pass the file with the option of the command the user ran, and no other weights option."""
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("POSEVID_OFFLINE", "1")
    monkeypatch.delenv("POSEVID_DENSEPOSE_WEIGHTS", raising=False)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes((examples_dir / "dance_skeleton.mp4").read_bytes())
    out = tmp_path / "out"
    argv = {
        "densepose": ["densepose", str(FIXTURE / "image1.png"), "--out", str(out), "--device", "cpu"],
        "prepare": ["prepare", str(videos), "--out", str(out), "--kind", "ubc", "--densepose", "--densepose-device", "cpu"],
        "animate": ["animate", "--image", str(examples_dir / "key_frame.png"), "--driving-video", str(videos / "clip.mp4"),
                    "--model", str(tmp_path / "model"), "--device", "cpu", "--out", str(out / "a.mp4")],
        "convert": ["convert", "--out", str(out / "w.safetensors")],
    }[command]  # fmt: skip
    others = {"--weights", "--densepose-weights", "--densepose-pkl"} - {flag}
    missing = tmp_path / "missing.pkl"
    ways = [("flag", [*argv, flag, str(missing)], {})]
    if command != "convert":  # convert's file is required, so neither the environment nor the cache stand in for it
        ways += [("env", argv, {"POSEVID_DENSEPOSE_WEIGHTS": str(missing)}), ("offline", argv, {})]
    for way, args, env in ways:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = cli_main(args)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"posevid {command}: error: "), (way, err)
        words = set(lines[0].replace("(", " ").replace(")", " ").split())
        assert flag in words and not words & others, (way, lines[0])
        assert ("not available offline" if way == "offline" else f"DensePose weights not found: {missing}") in lines[0], (way, lines[0])
        assert not out.exists()
        for name in env:
            monkeypatch.delenv(name)


def test_extraction_leaves_the_callers_predictor_unchanged(tmp_path):
    """A predictor passed in is the caller's: a run's short side must not stay in it, and the next run uses its own size."""
    from posevid.densepose.config import DensePoseConfig
    from posevid.densepose.extract import extract_densepose
    from posevid.densepose.options import DensePoseOptions
    from posevid.densepose.predictor import DensePosePredictor

    pred = DensePosePredictor.from_weights(ST, cfg=DensePoseConfig(min_size=128, max_size=213), device="cpu")
    before = pred.cfg
    frames = small_frames(tmp_path, 1)
    extract_densepose(frames, tmp_path / "a", DensePoseOptions(short_side=96), progress=False, predictor=pred)
    assert pred.cfg == before
    extract_densepose(frames, tmp_path / "b", progress=False, predictor=pred)  # no short side: the predictor's own
    assert json.loads((tmp_path / "b" / "densepose.json").read_text())["config"]["min_size"] == 128


def test_flags_parse_into_the_task_settings_and_one_check_serves_every_caller(tmp_path):
    """``posevid densepose`` flags -> the task's settings, defaults from the one definition; the library call, the
    command and ``animate``/``prepare`` options fail in the one ``validate``."""
    from posevid.commands.densepose import collect_settings
    from posevid.commands.fields import command_parser
    from posevid.densepose.options import DensePoseOptions
    from posevid.errors import InputError
    from posevid.tasks.densepose import DensePoseSettings, densepose

    parse_args = command_parser("densepose").parse_args  # the command's own parser, raising InputError
    assert collect_settings(parse_args(["in.mp4", "--out", "o"])) == DensePoseSettings(input="in.mp4", out="o")
    flags = ["--short-side", "256", "--person", "track", "--iuv", "-q", "--weights", "w.pkl"]
    s = collect_settings(parse_args(["in.mp4", "--out", "o", *flags]))
    assert (s.short_side, s.person, s.iuv, s.quiet, s.weights) == (256, "track", True, True, "w.pkl")
    assert s.options == DensePoseOptions(weights="w.pkl", person="track", short_side=256)
    with pytest.raises(InputError, match="tallest"):
        parse_args(["in.mp4", "--out", "o", "--person", "tallest"])
    with pytest.raises(InputError, match=r"^--short-side must be at least 32, got 16$"):
        densepose(DensePoseSettings(input=str(FIXTURE / "image1.png"), out=str(tmp_path / "o"), short_side=16))
    with pytest.raises(InputError, match=r"^--densepose-person 'tallest' is not a person rule"):
        DensePoseOptions(person="tallest").validate(flag_prefix="--densepose-")
    assert not (tmp_path / "o").exists()
