"""``posevid wan-preprocess`` and its task (issue 21 part 3): Wan2.2-Animate's input folder from a video and an image.

Two real runs through the command line (in this process, so the task's in-memory result can be kept with a spy):
animate mode with retargeting on a 25 fps Charades excerpt resampled to Wan's 30 fps, and replace mode at the
source's rate on a 16.6 fps excerpt, both at a small resolution area. Checked against Wan's own rules, never
against numbers written here: the file names Wan's ``generate.py --src_root_path`` reads, frame counts from
``target_frame_count`` of each video's own fps and length, sizes from ``area_size`` of the reference (animate)
or the frames (replace), 512x512 faces; the written videos decode close to the arrays in memory (lossy H.264,
tolerances measured below, with a time-shift control that must fail them); and the arrays are exactly what
``posevid.wan.preprocess`` makes of an independent decode of Wan's frame indices and the task's keypoints.
Bad input is one line, exit 2, and leaves no output or staging folder behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import posevid.tasks.wan_preprocess as task
from posevid.cli import main
from posevid.tasks.wan_preprocess import WanPreprocessSettings
from posevid.video import probe_video, read_frames, write_video
from posevid.wan import area_size, frame_indices, preprocess, target_frame_count

CLIPS = Path(__file__).parent / "fixtures" / "pose" / "wholebody"
REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "key_frame.png"
AREA = (320, 192)
WAN_FILES = {"animate": {"src_pose.mp4", "src_face.mp4", "src_ref.png"}}
WAN_FILES["replace"] = WAN_FILES["animate"] | {"src_bg.mp4", "src_mask.mp4"}
EXTRA_FILES = {"preview.mp4", "wan_preprocess.json"}
# H.264 (crf 18, yuv420p) against the arrays, measured on these runs (AMD EPYC, PyAV's libx264, preset ultrafast or
# medium alike): pose video mean |diff| 0.92 (animate) / 0.49 (replace) levels, 0.27 % / 0.15 % of values off by more
# than 64 (thin coloured sticks lose colour to the 4:2:0 chroma); face crops mean 1.4-1.5, max 13; masks thresholded
# at 128 equal on every pixel; backgrounds mean 1.5-1.6. Controls that must fail: the same frames with red and blue
# swapped (pose mean 2.8 / 1.6, far share 1.7 % / 0.96 %; face mean 17-20) or in reverse order (pose 3.1 / 2.2,
# 1.9 % / 1.4 %; face 12-13).
POSE_MEAN, POSE_FAR, POSE_FAR_SHARE = 1.3, 64, 0.006
FACE_MEAN, FACE_MAX = 3.0, 48
MASK_AGREE = 0.995


def _run(argv: list[str]) -> tuple[int, str, task.WanPreprocessResult | None]:
    """``posevid wan-preprocess ARGV`` in this process: exit code, stderr, and the task's result (spied on)."""
    results = []
    real = task.wan_preprocess

    def spy(settings, **kwargs):
        results.append(real(settings, **kwargs))
        return results[-1]

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(task, "wan_preprocess", spy)
        code = main(["wan-preprocess", *argv, "-q"])
    return code, err.getvalue(), results[0] if results else None


class Run:
    def __init__(self, mode: str, clip: Path, out: Path, fps: float | None, extra: list[str]) -> None:
        area = f"{AREA[0]}x{AREA[1]}"
        argv = [str(clip), "--image", str(REFERENCE), "--out", str(out), "--mode", mode, "--area", area, *extra]
        self.code, self.stderr, self.result = _run(argv)
        assert self.code == 0, self.stderr
        self.mode, self.clip, self.out, self.fps = mode, clip, out, fps
        self.source = probe_video(clip)

    @property
    def expected_frames(self) -> int:
        rate = self.source.fps if self.fps is None else self.fps
        return target_frame_count(self.source.num_frames, self.source.fps, rate)

    def indices(self) -> np.ndarray:
        rate = self.source.fps if self.fps is None else self.fps
        return frame_indices(self.source.num_frames, self.source.fps, self.expected_frames, rate)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("wan_pre")
    return {
        "animate": Run("animate", CLIPS / "0RJKT.mp4", root / "animate", 30.0, ["--retarget"]),
        "replace": Run("replace", CLIPS / "3IPI3.mp4", root / "replace", None, ["--fps", "source"]),
    }


MODES = ["animate", "replace"]


def _staging_left(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".posevid-stage-*")]


@pytest.mark.parametrize("mode", MODES)
def test_the_folder_holds_exactly_wans_files(runs, mode):
    run = runs[mode]
    assert {p.name for p in run.out.iterdir()} == WAN_FILES[mode] | EXTRA_FILES
    assert not _staging_left(run.out.parent)
    report = run.result.inputs.report
    notes = run.stderr.strip().splitlines()
    if report.face_boxes_filled:  # 3IPI3's excerpt shows the face in 18 of its 40 frames: the others are filled and counted
        assert len(notes) == 1 and f"no face found in {report.face_boxes_filled} of {report.frames} frames" in notes[0]
    else:
        assert notes == []


@pytest.mark.parametrize("mode", MODES)
def test_frame_counts_and_rates_follow_wans_resampling(runs, mode):
    run = runs[mode]
    rate = run.source.fps if run.fps is None else run.fps
    assert run.expected_frames != run.source.num_frames or run.fps is None  # animate really resamples (25 -> 30 fps)
    for name in WAN_FILES[mode] | {"preview.mp4"}:
        if name.endswith(".mp4"):
            info = probe_video(run.out / name)
            assert len(read_frames(run.out / name)) == info.num_frames == run.expected_frames, name
            assert info.fps == pytest.approx(rate, rel=1e-3), name
    assert np.array_equal(run.result.info.frame_indices, run.indices())


@pytest.mark.parametrize("mode", MODES)
def test_sizes_follow_wans_rules(runs, mode):
    run = runs[mode]
    reference = np.asarray(Image.open(REFERENCE).convert("RGB"))
    if mode == "animate":  # the pose video has the reference's area-resized size
        pose_hw = area_size(*reference.shape[:2], AREA[0] * AREA[1])
    else:  # the frames are area-resized, and so is everything drawn on them
        pose_hw = area_size(run.source.height, run.source.width, AREA[0] * AREA[1])
    assert (probe_video(run.out / "src_pose.mp4").height, probe_video(run.out / "src_pose.mp4").width) == pose_hw
    assert (probe_video(run.out / "src_face.mp4").height, probe_video(run.out / "src_face.mp4").width) == (512, 512)
    for name in WAN_FILES[mode] - WAN_FILES["animate"]:
        assert (probe_video(run.out / name).height, probe_video(run.out / name).width) == pose_hw, name
    assert np.array_equal(np.asarray(Image.open(run.out / "src_ref.png")), reference)  # the reference as given, lossless


def _pose_close(decoded: np.ndarray, frames: np.ndarray) -> bool:
    diff = np.abs(decoded.astype(np.int16) - frames.astype(np.int16))
    mean, far = float(diff.mean()), float((diff > POSE_FAR).mean())
    print(f"pose video: mean |diff| {mean:.3f}, share off by > {POSE_FAR}: {far:.4f}")
    return mean <= POSE_MEAN and far <= POSE_FAR_SHARE


def _face_close(decoded: np.ndarray, frames: np.ndarray) -> bool:
    diff = np.abs(decoded.astype(np.int16) - frames.astype(np.int16))
    print(f"face video: mean |diff| {diff.mean():.3f}, max {diff.max()}")
    return diff.mean() <= FACE_MEAN and diff.max() <= FACE_MAX


CONTROLS = {"red and blue swapped": lambda frames: frames[..., ::-1], "reverse order": lambda frames: frames[::-1]}


@pytest.mark.parametrize("mode", MODES)
def test_written_videos_decode_close_to_the_arrays(runs, mode):
    run = runs[mode]
    inputs = run.result.inputs
    pose, face = read_frames(run.out / "src_pose.mp4"), read_frames(run.out / "src_face.mp4")
    assert _pose_close(pose, inputs.pose_frames) and _face_close(face, inputs.face_frames)
    for control, change in CONTROLS.items():  # the tolerances catch frames that are not the arrays
        assert not _pose_close(pose, change(inputs.pose_frames)), control
        assert not _face_close(face, change(inputs.face_frames)), control
    if mode == "replace":
        mask = read_frames(run.out / "src_mask.mp4")[..., 0] > 127
        assert np.array_equal(mask, inputs.masks.astype(bool))
        assert inputs.masks.any() and not inputs.masks.all()
        background = np.abs(read_frames(run.out / "src_bg.mp4").astype(np.int16) - inputs.background_frames)
        assert background.mean() <= FACE_MEAN


@pytest.mark.parametrize("mode", MODES)
def test_the_arrays_are_wans_preprocessing_of_the_same_frames(runs, mode):
    """No second composition: the task's arrays are ``posevid.wan.preprocess`` of Wan's frames and its keypoints."""
    run = runs[mode]
    inputs, info = run.result.inputs, run.result.info
    unique, position = np.unique(run.indices(), return_inverse=True)
    frames = read_frames(run.clip, indices=unique)[position]  # an independent decode of Wan's frame indices
    assert info.keypoints.shape == (len(frames), 133, 3) and (info.reference_keypoints is not None) == (mode == "animate")
    reference = np.asarray(Image.open(REFERENCE).convert("RGB"))
    direct = preprocess(
        frames, reference, info.keypoints, info.reference_keypoints, mode=mode, retarget=mode == "animate", area=AREA
    )
    if mode == "animate":
        assert np.array_equal(inputs.frames, frames)
    for name in ("pose_frames", "face_frames", "reference", "reference_resized", "frames", "face_boxes", "masks", "background_frames"):
        ours, theirs = getattr(inputs, name), getattr(direct, name)
        assert (ours is None) == (theirs is None), name
        assert ours is None or np.array_equal(ours, theirs), name
    assert inputs.report == direct.report


@pytest.mark.parametrize("mode", MODES)
def test_the_sidecar_says_what_was_done(runs, mode):
    run = runs[mode]
    payload = json.loads((run.out / "wan_preprocess.json").read_text())
    record = payload["settings"]
    assert payload["kind"] == "wan-preprocess" and "mediapipe" in payload["environment"]
    assert sorted(Path(f).name for f in record["files"]) == sorted(WAN_FILES[mode] | EXTRA_FILES)
    assert record["options"]["mode"] == mode and record["report"]["frames"] == run.expected_frames
    assert record["pose"]["estimator"] == "mediapipe-holistic" and record["parts"]["num_frames"] == run.expected_frames
    assert record["frame_indices"] == run.indices().tolist()


def test_a_rerun_replaces_the_whole_set_and_reports_filled_face_boxes(runs, tmp_path):
    """Body keypoints only: no face anywhere, every face box from the head points, and a note says how many."""
    out = tmp_path / "again"
    shutil.copytree(runs["replace"].out, out)  # a replace-mode set, as if written here:
    sidecar = out / "wan_preprocess.json"
    sidecar.write_text(sidecar.read_text().replace(str(runs["replace"].out), str(out)))
    code, stderr, result = _run([str(CLIPS / "5D3X6.mp4"), "--image", str(REFERENCE), "--out", str(out), "--area", "160x96",
                                 "--body-only", "--no-preview", "--max-frames", "6"])  # fmt: skip
    assert code == 0, stderr
    assert {p.name for p in out.iterdir()} == WAN_FILES["animate"] | {"wan_preprocess.json"}  # src_bg/src_mask/preview gone
    assert len(read_frames(out / "src_pose.mp4")) == 6
    assert result.inputs.report.face_boxes_filled == 6 and result.info.parts["face"] == 0
    (line,) = stderr.strip().splitlines()
    assert "no face found in 6 of 6 frames" in line and "note:" in line


def test_flags_fill_the_settings_with_the_task_defaults():
    from posevid.commands.fields import command_parser
    from posevid.commands.wan_preprocess import collect_settings

    parse_args = command_parser("wan_preprocess").parse_args  # the command's own parser, raising InputError
    base = ["v.mp4", "--image", "r.png", "--out", "o"]
    assert collect_settings(parse_args(base)) == WanPreprocessSettings(video="v.mp4", image="r.png", out="o")
    assert collect_settings(parse_args([*base, "--fps", "source"])).fps is None
    assert collect_settings(parse_args([*base, "--fps", "12.5", "--no-preview"])).fps == 12.5
    from posevid.errors import InputError

    with pytest.raises(InputError, match="--fps"):
        parse_args([*base, "--fps", "-3"])


@pytest.mark.parametrize(
    "change, message",
    [({"person": "all"}, "--person must be one of largest, central"), ({"smooth": "gauss"}, "--smooth must be one of"),
     ({"joint_correction": "on", "estimator": "dwpose"}, "needs BlazePose landmarks"), ({"fps": 0}, "--fps must be > 0"),
     ({"max_frames": 0}, "--max-frames"), ({"mode": "swap"}, "unknown Wan-Animate mode")],
)  # fmt: skip
def test_library_settings_are_checked_before_any_work(change, message):
    from posevid.errors import InputError
    from posevid.tasks.wan_preprocess import wan_inputs

    settings = WanPreprocessSettings(video=str(CLIPS / "0RJKT.mp4"), image=str(REFERENCE), **change)
    with pytest.raises(InputError, match=message):
        wan_inputs(settings, progress=lambda stage, done, total: pytest.fail(f"work started: {stage}"))


# ---- bad input: one line, exit 2, nothing left behind ------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    files = {"nobody": root / "nobody.mp4", "short": root / "short.mp4", "blank": root / "blank.png",
             "corrupt_video": root / "corrupt.mp4", "corrupt_image": root / "corrupt.png"}  # fmt: skip
    write_video(files["nobody"], [np.full((96, 128, 3), 40 + 4 * i, np.uint8) for i in range(10)], fps=24)
    write_video(files["short"], [np.full((96, 128, 3), 40, np.uint8)] * 2, fps=24)  # 2 frames at 24 fps: none at 10 fps
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(files["blank"])
    files["corrupt_video"].write_bytes(rng.bytes(4096))
    files["corrupt_image"].write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(4096))
    return files


CLIP = str(CLIPS / "0RJKT.mp4")
BAD = {
    "no person anywhere": (lambda f: [str(f["nobody"]), "--image", str(REFERENCE)], "no person found in any"),
    "reference without a person": (lambda f: [CLIP, "--image", str(f["blank"]), "--retarget"], "no person found in the reference"),
    "shorter than one frame": (lambda f: [str(f["short"]), "--image", str(REFERENCE), "--fps", "10"], "shorter than one frame"),
    "corrupt video": (lambda f: [str(f["corrupt_video"]), "--image", str(REFERENCE)], "cannot read video"),
    "corrupt image": (lambda f: [CLIP, "--image", str(f["corrupt_image"])], "cannot read the reference image"),
    "missing video": (lambda f: [str(f["nobody"].with_name("gone.mp4")), "--image", str(REFERENCE)], "driving video not found"),
    "missing image": (lambda f: [CLIP, "--image", str(f["blank"].with_name("gone.png"))], "reference image not found"),
    "replace with retarget": (lambda f: [CLIP, "--image", str(REFERENCE), "--mode", "replace", "--retarget"], "animate mode only"),
    "bad area": (lambda f: [CLIP, "--image", str(REFERENCE), "--area", "big"], "--area must look like"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, bad_files, tmp_path, capfd):
    argv, message = BAD[case]
    out = tmp_path / "out"
    code = main(["wan-preprocess", *argv(bad_files), "--out", str(out), "-q"])
    captured = capfd.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], captured.err
    assert lines[0].startswith("posevid wan-preprocess: error: ") and captured.out == ""
    assert not out.exists() and not _staging_left(tmp_path)


def test_a_failed_run_leaves_a_previous_folder_unchanged(runs, bad_files, tmp_path, capfd):
    out = tmp_path / "previous"
    shutil.copytree(runs["animate"].out, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = main(["wan-preprocess", str(bad_files["nobody"]), "--image", str(REFERENCE), "--out", str(out), "-q"])
    assert code == 2 and len(capfd.readouterr().err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not _staging_left(tmp_path)


def test_the_reference_is_read_upright_as_wans_cv2_imread_reads_it(tmp_path):
    """A phone photo's EXIF orientation is applied (src_ref.png is then written upright, without EXIF)."""
    import cv2

    from posevid.tasks.wan_preprocess import read_image

    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :20] = (250, 30, 30)  # a red corner shows where the top-left went
    photo = Image.fromarray(stored)
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    photo.save(path, exif=exif, quality=100)
    ours, wans = read_image(path), cv2.imread(str(path))[..., ::-1]
    assert ours.shape == wans.shape == (60, 40, 3)  # stored 60 wide, shown 40 wide
    assert np.abs(ours.astype(int) - wans).mean() < 2 and ours[:20, -10:, 0].mean() > 200


def test_dwpose_onnx_files_reach_the_video_and_the_reference(tiny_rtmpose_models, tiny_wholebody_pose_model, tmp_path):
    """``--estimator dwpose --det-model --pose-model``: the given files estimate the frames and, when retargeting, the
    reference (a tiny model whose answer ignores the image: the same 133 points in every frame and in the reference)."""
    det, _ = tiny_rtmpose_models
    out = tmp_path / "dw"
    code, stderr, result = _run([str(CLIPS / "0RJKT.mp4"), "--image", str(REFERENCE), "--out", str(out), "--area", "160x96",
                                 "--estimator", "dwpose", "--det-model", str(det), "--pose-model", str(tiny_wholebody_pose_model),
                                 "--retarget", "--max-frames", "4", "--no-preview", "--smooth", "none"])  # fmt: skip
    assert code == 0, stderr
    info = result.info
    assert info.pose["estimator"] == "dwpose" and info.keypoints.shape == (4, 133, 3)
    assert np.array_equal(info.keypoints, np.repeat(info.keypoints[:1], 4, axis=0))  # no smoothing: the model's answer
    scores = info.keypoints[0, :, 2]
    assert np.array_equal(scores > 0.5, np.arange(133) % 2 == 1)  # odd joints 0.8, even 0.2 (the model's scores)
    np.testing.assert_allclose(info.reference_keypoints[0, :, 2], scores, atol=1e-6)
    assert {p.name for p in out.iterdir()} == WAN_FILES["animate"] | {"wan_preprocess.json"}


def test_a_missing_onnx_model_is_one_line_before_any_decoding(tmp_path, monkeypatch, capsys):
    """Offline without the dwpose files: the one line naming what to download comes before the video is decoded (the
    whole clip is held in memory first; the estimator used to be built, and the files looked for, only after that)."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("POSEVID_OFFLINE", "1")
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "empty-cache"))
    for variable in ("POSEVID_DET_MODEL", "POSEVID_POSE_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(task, "_source_frames", lambda *a, **k: pytest.fail("the video was decoded before the models were found"))
    out = tmp_path / "out"
    code, stderr, _ = _run([str(CLIPS / "0RJKT.mp4"), "--image", str(REFERENCE), "--out", str(out), "--estimator", "dwpose"])
    assert code == 2 and stderr.count("\n") == 1 and "dwpose detector model is not available offline" in stderr, stderr
    assert not out.exists()
