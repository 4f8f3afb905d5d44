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


def test_a_download_matching_its_checksum_lands_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    for var in ("POSEVID_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
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
    monkeypatch.setenv("POSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("POSEVID_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(variable, "1")
    url = _served(tmp_path, "model.onnx", b"x")
    with pytest.raises(CheckpointError, match="not available offline"):
        resolve_model_file(None, env="POSEVID_TEST_MODEL", url=url, what="test")
    with pytest.raises(CheckpointError, match="offline mode is on"):
        resolve_model_path("someone/some-model", what="test model")
