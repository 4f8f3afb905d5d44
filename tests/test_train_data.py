"""Data preparation and training data sets: layouts, resumability, bad data, deterministic order."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posevid.data.captions import caption_for_frames, read_captions_csv
from posevid.data.datasets import DreamPoseFrameDataset, VideoClipDataset, reference_frame_indices
from posevid.data.manifest import Manifest
from posevid.data.prepare import prepare_dataset
from posevid.errors import InputError
from posevid.training.sampler import ResumableSampler


def test_captions_csv_bom_and_grouping(tmp_path: Path, charades_clip_dir: Path) -> None:
    recs = read_captions_csv(charades_clip_dir / "captions.csv")
    assert (charades_clip_dir / "captions.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # the real file's BOM
    assert [(r.part_id, r.clip_id) for r in recs] == [("100", "0RJKT")]
    csv = tmp_path / "hd.csv"
    csv.write_text("part_id,clip_id,caption\n7,a.mp4,first chunk\n7,a.mp4,second chunk\n8,b.mp4,other\n")
    recs = read_captions_csv(csv)
    assert [r.captions for r in recs] == [["first chunk", "second chunk"], ["other"]]
    assert caption_for_frames(["first chunk", "second chunk"], [10, 70, 130]) == "second chunk"  # chunk of the middle frame


def test_csv_missing_columns_is_one_line_error(tmp_path: Path, charades_clip_dir: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("part_id,video,text\n1,x,y\n")
    with pytest.raises(InputError) as exc:
        read_captions_csv(csv)
    assert "clip_id" in str(exc.value) and "\n" not in str(exc.value)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "posevid",
            "prepare",
            str(charades_clip_dir),
            "--captions",
            str(csv),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.startswith("posevid prepare: error:")]
    assert len(err) == 1 and "lacks column" in err[0] and "Traceback" not in proc.stderr


def test_prepare_skips_bad_clips_and_resumes(tmp_path: Path, charades_clip_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(charades_clip_dir / "0RJKT.mp4", src / "0RJKT.mp4")
    shutil.copy(charades_clip_dir / "0RJKT.mp4", src / "COPY1.mp4")
    (src / "BROKEN.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    csv = tmp_path / "c.csv"
    csv.write_text(
        "\ufeffpart_id,clip_id,caption\n1,0RJKT,a man sits down\n1,BROKEN,broken clip\n1,MISSING,no such file\n1,COPY1,copy of the clip\n",
        encoding="utf-8",
    )
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING):
        res = prepare_dataset(src, out, kind="charades", captions=csv, poses=False, progress=False)
    assert (res.ok, res.skipped) == (2, 2)
    assert any("BROKEN" in r.message and "unreadable" in r.message for r in caplog.records)
    assert any("MISSING" in r.message and "not found" in r.message for r in caplog.records)
    # interrupted run: the last line was torn mid-write -> it is dropped and that clip is redone, the rest is reused
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["id"] == "COPY1"
    manifest.write_text("".join(lines[:-1]) + lines[-1][:25])
    res2 = prepare_dataset(src, out, kind="charades", captions=csv, poses=False, progress=False)
    assert res2.reused == 3 and res2.ok == 2
    entries = Manifest(out).entries()
    assert [e["id"] for e in entries] == ["0RJKT", "BROKEN", "MISSING", "COPY1"]
    # nothing usable -> one-line error
    csv2 = tmp_path / "c2.csv"
    csv2.write_text("part_id,clip_id,caption\n1,BROKEN,x\n")
    with pytest.raises(InputError, match="nothing usable"):
        prepare_dataset(src, tmp_path / "data2", kind="charades", captions=csv2, poses=False, progress=False)


def test_hdvila_layout(tmp_path: Path, charades_clip_dir: Path) -> None:
    clips = tmp_path / "hd" / "part_123" / "video_clips"
    clips.mkdir(parents=True)
    shutil.copy(charades_clip_dir / "0RJKT.mp4", clips / "abc.mp4")
    csv = tmp_path / "hd.csv"
    csv.write_text("part_id,clip_id,caption\n123,abc.mp4,first\n123,abc.mp4,second\n")
    prepare_dataset(tmp_path / "hd", tmp_path / "out", kind="hdvila", captions=csv, poses=False, progress=False)
    (entry,) = Manifest(tmp_path / "out").entries()
    assert entry["id"] == "123_abc" and entry["captions"] == ["first", "second"] and entry["num_frames"] == 48


def test_clip_dataset_reference_sampling_and_short_clips(charades_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    ds = VideoClipDataset(charades_data, n_sample_frames=4, sample_frame_rate=2, width=64, height=64)
    item = ds[(0, (1, 0, 0))]
    assert item["pixel_values"].shape == (4, 3, 64, 64)
    assert float(item["pixel_values"].min()) >= -1.0 and float(item["pixel_values"].max()) <= 1.0
    idx = item["frame_indices"].tolist()
    assert all(b - a == 2 for a, b in zip(idx, idx[1:], strict=False))
    assert item["prompt"] == "A man is unbuttoning his jacket and sitting down on the floor"
    assert ds[(0, (1, 0, 0))]["frame_indices"].tolist() == idx  # same key -> same sample
    # reference fallback: 48 frames cannot give 16 frames at stride 4 -> stride 48 // 16 = 3
    rng = np.random.default_rng(0)
    assert np.diff(reference_frame_indices(48, 16, 4, 0, rng)).tolist() == [3] * 15
    with caplog.at_level(logging.WARNING):
        with pytest.raises(InputError, match="no usable clip"):
            VideoClipDataset(charades_data, n_sample_frames=49, sample_frame_rate=1)
        with pytest.raises(InputError, match="no usable clip"):
            VideoClipDataset(charades_data, n_sample_frames=16, sample_frame_rate=4, short_clips="skip")
    assert any("0RJKT" in r.message and "n_sample_frames" in r.message for r in caplog.records)


def test_ubc_prepare_and_dreampose_dataset(tmp_path: Path, examples_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    from plugins.train import write_ubc_folder

    src = write_ubc_folder(tmp_path / "src", examples_dir)
    (src / "video_a" / "frame_7.png").write_bytes((src / "video_a" / "frame_0.png").read_bytes())  # no DensePose file
    (src / "video_a" / "frame_8.png").write_bytes((src / "video_a" / "frame_0.png").read_bytes())
    (src / "video_a" / "frame_8_densepose.npy").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        res = prepare_dataset(src, tmp_path / "data", kind="ubc", progress=False)
    assert (res.ok, res.skipped) == (3, 2)
    ds = DreamPoseFrameDataset(tmp_path / "data", mode="base", height=160, width=128, image_range="-1_1", pose_range="2uv-1")
    item = ds[(0, (0, 0, 0))]
    assert item["frame_i"].shape == (3, 160, 128) and item["pose_j"].shape == (10, 160, 128)
    assert float(item["frame_i"].min()) < 0 and float(item["pose_j"].min()) == -1.0  # [-1, 1] images, background -1
    sub = DreamPoseFrameDataset(tmp_path / "data", mode="subject", height=160, width=128)
    item = sub[(1, (0, 0, 3))]
    assert float(item["frame_i"].min()) >= 0 and float(item["pose_j"].min()) >= 0  # [0, 1] images, raw UV


def test_sampler_is_resumable_and_world_size_invariant() -> None:
    one = ResumableSampler(5, 2, world_size=1, seed=3)
    two = [ResumableSampler(5, 1, world_size=2, rank=r, seed=3) for r in range(2)]
    for step in range(7):
        merged = [s for r in two for s in r.micro_batch(step)]
        assert merged == one.micro_batch(step)  # the same samples (and keys) form each global batch
    assert list(one.iterate(3, 6)) == [one.micro_batch(s) for s in range(3, 6)]
    tiny = ResumableSampler(1, 1, world_size=2, rank=1, seed=0)  # one clip still feeds two processes
    assert tiny.micro_batch(0)[0][0] == 0


def test_reference_train_config_is_accepted(tmp_path: Path) -> None:
    from posevid.training.config import build_config

    repo = Path(__file__).resolve().parents[1]
    cfg = build_config("fyp-temporal", config_file=repo / "configs" / "pose_train.yaml", sets=["train_data.n_sample_frames=4"])
    assert cfg["train_data"]["data_dir"] == "./data/charades" and cfg["train_data"]["n_sample_frames"] == 4
    assert cfg["trainable_modules"] == ["attn1.to_q", "attn2.to_q", "attn_temp", "conv_temporal"]
    assert cfg["resume"] is None and cfg["max_train_steps"] == 5000 and cfg["learning_rate"] == 3e-5
    # the DreamPose reference flags, as in its README command
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "posevid.training",
            "dreampose-base",
            "--pretrained_model_name_or_path",
            "sd",
            "--instance_data_dir",
            "d",
            "--output_dir",
            "o",
            "--resolution=512",
            "--train_batch_size=2",
            "--gradient_accumulation_steps=4",
            "--learning_rate=5e-6",
            "--lr_scheduler=constant",
            "--lr_warmup_steps=0",
            "--num_train_epochs=300",
            "--run_name",
            "dreampose",
            "--dropout_rate=0.15",
            "--revision",
            "ebb811dd71cdc38a204ecbdd6ac5d580f529fd8c",
            "--print-config",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert (cfg["train_batch_size"], cfg["gradient_accumulation_steps"], cfg["num_train_epochs"], cfg["dropout_rate"]) == (2, 4, 300, 0.15)
    assert cfg["train_data"]["data_dir"] == "d" and cfg["pretrained_model_path"] == "sd"
    with pytest.raises(InputError, match="no training data"):
        build_config("fyp-temporal", overrides={"pretrained_model_path": "x"})
