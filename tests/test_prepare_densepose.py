"""``posevid prepare --kind ubc --densepose``: DreamPose training data from videos, plain and Ray engines.

Two 3-frame videos of the DensePose fixture images at 120x150 and a 128-px short side, so the tiny model
takes a fraction of a second per frame; one broken video is skipped with its reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _densepose_golden import FIXTURE, IMAGES, rgb
from posevid.cli import main
from posevid.data import prepare_densepose
from posevid.data.manifest import Manifest
from posevid.data.prepare import prepare_dataset
from posevid.densepose.predictor import DensePosePredictor

WEIGHTS = FIXTURE / "weights.safetensors"
OPTIONS = {"weights": str(WEIGHTS), "device": "cpu", "short_side": 128, "batch_size": 2}
FLAGS = ["--kind", "ubc", "--densepose", "--densepose-weights", str(WEIGHTS), "--densepose-device", "cpu",
         "--densepose-short-side", "128", "--densepose-batch-size", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from posevid.video import write_video

    src = tmp_path_factory.mktemp("dp_videos") / "src"
    src.mkdir()
    for k in range(2):
        frames = [np.asarray(Image.fromarray(rgb(IMAGES[(i + k) % len(IMAGES)])).resize((120, 150))) for i in range(3)]
        write_video(src / f"clip{k}.mp4", frames, fps=4)
    (src / "broken.mp4").write_bytes(b"not a video")
    return src


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts model loads in this process (with an empty per-process cache)."""
    calls: list[str] = []
    original = DensePosePredictor.from_weights.__func__

    def counting(cls, weights=None, **kwargs):
        calls.append(str(weights))
        return original(cls, weights, **kwargs)

    monkeypatch.setattr(prepare_densepose, "_PREDICTORS", {})
    monkeypatch.setattr(DensePosePredictor, "from_weights", classmethod(counting))
    return calls


@pytest.fixture(scope="module")
def plain(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dp_plain") / "data"
    assert main(["prepare", str(videos), "--out", str(out), *FLAGS]) == 0
    return out


def _by_id(out: Path) -> dict[str, dict]:
    entries = Manifest(out).entries()
    assert len({e["id"] for e in entries}) == len(entries), "an item was written twice"
    return {e["id"]: e for e in entries}


def test_plain_prepare_writes_what_the_dreampose_dataset_loads(videos: Path, plain: Path, tmp_path: Path) -> None:
    from posevid.data.datasets import DreamPoseFrameDataset
    from posevid.densepose.extract import extract_densepose
    from posevid.densepose.options import DensePoseOptions
    from posevid.video import read_frames

    entries = _by_id(plain)
    assert entries["broken.mp4"]["status"] == "skipped" and "unreadable video" in entries["broken.mp4"]["reason"]
    for clip in ("clip0.mp4", "clip1.mp4"):
        e = entries[clip]
        assert e["status"] == "ok" and e["num_frames"] == 3 and e["frames_dir"] == f"frames/{clip}"
        assert sorted(e["densepose_frames"] + e["densepose_empty"]) == [0, 1, 2] and e["densepose_frames"]
        # the files are what `posevid densepose` makes of the same video, and the frames are the decoded frames
        alone = extract_densepose(videos / clip, tmp_path / clip, DensePoseOptions(**OPTIONS), progress=False)
        decoded = read_frames(videos / clip)
        for n in range(3):
            got = np.load(plain / e["frames_dir"] / f"frame_{n}_densepose.npy", allow_pickle=False)
            assert got.shape == (2, 150, 120) and got.dtype == np.float64
            np.testing.assert_array_equal(got, np.load(alone.out / f"frame_{n}_densepose.npy"))
            np.testing.assert_array_equal(np.asarray(Image.open(plain / e["frames_dir"] / f"frame_{n}.png")), decoded[n])
        assert (plain / e["densepose_sidecar"]).is_file()
    meta = json.loads((plain / "meta.json").read_text())
    assert meta["kind"] == "ubc" and meta["densepose"] == {**OPTIONS, "dtype": "fp32", "person": "top-score"}

    ds = DreamPoseFrameDataset(plain, mode="subject", height=64, width=48)
    assert len(ds) == sum(len(entries[c]["densepose_frames"]) for c in ("clip0.mp4", "clip1.mp4"))
    sample = ds[(0, 7)]
    assert sample["frame_i"].shape == (3, 64, 48) and sample["pose_j"].shape == (10, 64, 48)
    assert sample["id"] == "clip0.mp4/frame_0" and float(sample["pose_j"].abs().sum()) > 0  # a real pose, not an empty canvas
    assert {ds.items[i]["group"] for i in ds.groups["clip1.mp4"]} == {"clip1.mp4"}  # frame pairs come from one video


def test_model_loaded_once_and_resume(videos: Path, plain: Path, tmp_path: Path, loads: list[str]) -> None:
    out = tmp_path / "data"
    res = prepare_dataset(videos, out, kind="ubc", densepose=OPTIONS, progress=False)
    assert (res.ok, res.skipped, res.reused) == (2, 1, 0)
    assert loads == [str(WEIGHTS)]  # one load for both clips
    # a run killed after clip1's files were complete but before its manifest line: the files are reused
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"clip1.mp4"' not in line]
    (out / "manifest.jsonl").write_text("".join(kept))
    stamp = (out / "frames" / "clip1.mp4" / "densepose.json").stat().st_mtime_ns
    res = prepare_dataset(videos, out, kind="ubc", densepose=OPTIONS, progress=False)
    assert (res.ok, res.skipped, res.reused) == (2, 1, 2)
    assert (out / "frames" / "clip1.mp4" / "densepose.json").stat().st_mtime_ns == stamp
    assert _by_id(out) == _by_id(plain)


@pytest.mark.slow
def test_ray_engine_gives_the_same_data(videos: Path, plain: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    out = tmp_path / "data"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        assert main(["prepare", str(videos), "--out", str(out), *FLAGS, "--engine", "ray", "--ray-model-gpus", "0"]) == 0
    finally:
        ray.shutdown()
    assert _by_id(out) == _by_id(plain)
    assert json.loads((out / "meta.json").read_text()) == json.loads((plain / "meta.json").read_text())
    files = sorted(p.relative_to(plain) for p in (plain / "frames").rglob("*") if p.suffix in (".png", ".npy"))
    assert files == sorted(p.relative_to(out) for p in (out / "frames").rglob("*") if p.suffix in (".png", ".npy"))
    for rel in files:
        if rel.suffix == ".npy":
            np.testing.assert_array_equal(np.load(out / rel), np.load(plain / rel), err_msg=str(rel))
        else:
            assert (out / rel).read_bytes() == (plain / rel).read_bytes(), rel


def _one_line_error(code: int, err: str, command: str = "prepare") -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"posevid {command}: error:"), err
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(videos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    flags = [f if f != str(WEIGHTS) else str(tmp_path / "missing.safetensors") for f in FLAGS]
    line = _one_line_error(main(["prepare", str(videos), "--out", str(out), *flags]), capsys.readouterr().err)
    assert "DensePose weights not found" in line and "missing.safetensors" in line
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\0" * 64)
    flags = [f if f != str(WEIGHTS) else str(bad) for f in FLAGS]
    _one_line_error(main(["prepare", str(videos), "--out", str(out), *flags]), capsys.readouterr().err)
    line = _one_line_error(main(["prepare", str(videos), "--out", str(out), "--densepose-person", "track"]), capsys.readouterr().err)
    assert "--densepose-person need(s) --densepose" in line
    line = _one_line_error(main(["prepare", str(videos), "--out", str(out), "--densepose", "--captions", "x.csv"]), capsys.readouterr().err)
    assert "--kind ubc" in line
    code = main(["prepare", str(videos), "--out", str(out), *FLAGS, "--densepose-batch-size", "0"])
    line = _one_line_error(code, capsys.readouterr().err)
    assert "--densepose-batch-size must be at least 1" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_error(main(["prepare", str(empty), "--out", str(out), *FLAGS]), capsys.readouterr().err)
    assert "no videos in" in line
    assert not out.exists()


def test_list_of_paths_and_densepose_command_flags_unchanged(videos: Path, tmp_path: Path, capsys) -> None:
    """SRC may be a text file of video paths; `posevid densepose` keeps its own flag names (shared definitions)."""
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{videos / 'clip1.mp4'}\n")
    res = prepare_dataset(listing, tmp_path / "d", kind="ubc", densepose=OPTIONS, progress=False)
    assert (res.ok, res.skipped) == (1, 0) and (tmp_path / "d" / "frames" / "clip1.mp4" / "frame_2_densepose.npy").is_file()
    shutil.copy(videos / "clip0.mp4", tmp_path / "c.mp4")
    args = [str(tmp_path / "c.mp4"), "--out", str(tmp_path / "dp"), "--weights", str(WEIGHTS), "--device", "cpu", "--short-side", "128"]
    assert main(["densepose", *args, "--batch-size", "3", "--quiet"]) == 0
    assert len(list((tmp_path / "dp").glob("frame_*_densepose.npy"))) == 3
    code = main(["densepose", *args, "--batch-size", "0", "--quiet", "--overwrite"])
    assert "--batch-size must be at least 1" in _one_line_error(code, capsys.readouterr().err, "densepose")


def test_densepose_is_the_gpu_sized_ray_stage(videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under Ray the DensePose stage is a model stage: --ray-model-gpus/-cpus/-concurrency size it (recorded, no Ray started)."""
    pytest.importorskip("ray.data")
    import ray.data

    from posevid.data import prepare_ray
    from posevid.data.prepare import PrepareResult

    seen: dict = {}

    def fake_run(items, stages, out, *, settings, progress):
        seen.update(stages=stages, settings=settings)
        return PrepareResult(out, 1, 0, 0)

    monkeypatch.setattr(prepare_ray, "prepare_clips_ray", fake_run)
    code = main(["prepare", str(videos), "--out", str(tmp_path / "o"), *FLAGS, "--engine", "ray",
                 "--ray-model-gpus", "0.5", "--ray-model-cpus", "2", "--ray-model-concurrency", "3"])  # fmt: skip
    assert code == 0
    calls: list[tuple[str, dict]] = []

    class Recorder:
        def map(self, fn, **kwargs):
            calls.append((type(fn.fn).__name__, kwargs))
            return self

    monkeypatch.setattr(ray.data, "from_items", lambda *a, **k: Recorder())
    prepare_ray.build_dataset([], seen["stages"], seen["settings"])
    assert [name for name, _ in calls] == ["partial", "DensePoseStage"]  # decode (no captions for videos), then DensePose
    assert calls[1][1] == {"num_cpus": 2, "num_gpus": 0.5, "concurrency": 3} and calls[0][1] == {"num_cpus": 1.0}


def test_a_second_run_in_one_process_uses_its_own_short_side(videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-process model cache must not carry one run's short side into the next (here: 128, then the reference's 800)."""
    from posevid.video import write_video

    monkeypatch.setattr(prepare_densepose, "_PREDICTORS", {})
    one = tmp_path / "one.mp4"
    write_video(one, [np.asarray(Image.fromarray(rgb(IMAGES[0])).resize((96, 120)))], fps=4)  # one frame: 800 px stays cheap
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{one}\n")
    for out, short_side, expected in (("a", 128, 128), ("b", None, 800)):
        options = {**OPTIONS, "short_side": short_side}
        assert prepare_dataset(listing, tmp_path / out, kind="ubc", densepose=options, progress=False).ok == 1
        side = json.loads((tmp_path / out / "frames" / "one.mp4" / "densepose.json").read_text())
        assert side["config"]["min_size"] == expected, out
