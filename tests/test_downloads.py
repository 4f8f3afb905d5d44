"""Model downloads (``utils.hub``): atomic, checked against a published SHA-256, and one offline switch for all.

Served from ``file://`` URLs: no network is needed, and the code path is the same ``urllib`` one.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from posevid.errors import CheckpointError
from posevid.utils.hub import download, resolve_model_file, resolve_model_path


def _served(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "server" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def _online(monkeypatch, tmp_path) -> None:
    """Downloads allowed (no offline variable) into a cache under ``tmp_path``."""
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    for var in ("POSEVID_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


def test_a_download_matching_its_checksum_lands_in_the_cache(tmp_path, monkeypatch):
    _online(monkeypatch, tmp_path)
    data = b"onnx bytes"
    url = _served(tmp_path, "model.onnx", data)
    path = resolve_model_file(None, env="POSEVID_TEST_MODEL", url=url, what="test", sha256=hashlib.sha256(data).hexdigest())
    assert path == tmp_path / "cache" / "models" / "model.onnx" and path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no staging left behind


def test_a_checksum_mismatch_is_one_line_and_leaves_nothing(tmp_path):
    url = _served(tmp_path, "model.onnx", b"tampered")
    dest = tmp_path / "cache" / "model.onnx"
    with pytest.raises(CheckpointError, match="does not match its published SHA-256") as err:
        download(url, dest, what="the test model", sha256=hashlib.sha256(b"original").hexdigest())
    assert "\n" not in str(err.value)
    assert not dest.exists() and not [p for p in tmp_path.rglob(".posevid-stage-*")]  # no partial file, no staging folder


def test_a_zip_is_unpacked_to_its_onnx_file(tmp_path):
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/end2end.onnx", b"graph")
    url = _served(tmp_path, "pack.zip", archive.read_bytes())
    dest = download(url, tmp_path / "cache" / "pack.onnx", what="the test model", sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    assert dest.read_bytes() == b"graph" and [p.name for p in dest.parent.iterdir()] == ["pack.onnx"]


@pytest.mark.parametrize("variable", ["POSEVID_OFFLINE", "HF_HUB_OFFLINE"])
def test_either_offline_variable_stops_file_and_hub_downloads(tmp_path, monkeypatch, variable):
    _online(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv(variable, "1")
    url = _served(tmp_path, "model.onnx", b"x")
    with pytest.raises(CheckpointError, match="not available offline"):
        resolve_model_file(None, env="POSEVID_TEST_MODEL", url=url, what="test")
    with pytest.raises(CheckpointError, match="offline mode is on"):
        resolve_model_path("someone/some-model", what="test model")


def test_allow_download_false_uses_only_a_file_already_here(tmp_path, monkeypatch):
    _online(monkeypatch, tmp_path)
    url = _served(tmp_path, "model.onnx", b"onnx bytes")
    with pytest.raises(CheckpointError, match="not available without a download") as err:
        resolve_model_file(None, env="POSEVID_TEST_MODEL", url=url, what="test", allow_download=False)
    assert "\n" not in str(err.value) and not (tmp_path / "cache").exists()  # nothing fetched although the URL works
    cached = tmp_path / "cache" / "models" / "model.onnx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"already here")
    assert resolve_model_file(None, env="POSEVID_TEST_MODEL", url=url, what="test", allow_download=False) == cached


def test_eval_auto_estimator_takes_dwpose_only_from_disk(tmp_path, monkeypatch):
    """``posevid eval --pose-estimator auto`` prefers dwpose when its files are here; online, it must still not start
    a download (it asks the resolver for files on disk only, instead of setting offline mode for the whole process)."""
    import numpy as np

    from posevid.eval import EvalConfig
    from posevid.eval.runner import _PoseScorer
    from posevid.pose.estimators import rtmpose
    from posevid.pose.sequence import KeypointSequence

    _online(monkeypatch, tmp_path)
    for var in ("POSEVID_DET_MODEL", "POSEVID_POSE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    served = {part: _served(tmp_path, f"dw_{part}.onnx", b"not a graph") for part in ("det", "pose")}
    monkeypatch.setitem(rtmpose.MODELS, "dwpose", {**rtmpose.MODELS["dwpose"], **served})
    keypoints = KeypointSequence(np.zeros((2, 1, 17, 3), np.float32), "coco17", 64, 64, 8.0, meta={"estimator": "mediapipe"})
    notes: list[str] = []
    scorer = _PoseScorer(EvalConfig(videos=["x"], pose=str(keypoints.save(tmp_path / "kp.json"))), notes)
    assert scorer.estimator_name == "mediapipe" and "without a download" in notes[0]
    assert not (tmp_path / "cache" / "models").exists()  # the reachable URLs were not fetched
