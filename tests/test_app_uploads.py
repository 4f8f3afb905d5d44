"""Upload checks of the web app: type by extension and content, size, zip members, path containment."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest

from posevid.app.uploads import check_upload, collect_densepose
from posevid.errors import InputError

MB = 2**20


@pytest.fixture
def clip(fixtures_dir, tmp_path):
    dst = tmp_path / "clip.mp4"
    shutil.copy(fixtures_dir / "app" / "charades_3IPI3_cut.mp4", dst)
    return dst


def test_real_video_and_image_pass(clip, fixtures_dir):
    assert check_upload(clip, "video", max_bytes=MB, what="Input video") == clip
    png = fixtures_dir / "dreampose_tiny_pipeline" / "key_frame.png"
    assert check_upload(png, "image", max_bytes=MB, what="Reference image") == png


@pytest.mark.parametrize(
    "name, content, kind, message",
    [
        ("notes.txt", b"hello", "video", "not an accepted file type"),
        ("evil.exe", b"MZ\x90\x00", "image", "not an accepted file type"),
        ("fake.mp4", b"#!/bin/sh\nrm -rf /\n" * 4, "video", "does not contain mp4 data"),
        ("fake.png", b"GIF89a" + b"\x00" * 40, "image", "does not contain png data"),
        ("fake.zip", b"not a zip at all, just text" * 4, "densepose", "does not contain zip data"),
        ("bad.json", b"{ not json", "keypoints", "not valid JSON"),
        ("empty.mp4", b"", "video", "is empty"),
    ],
)
def test_wrong_type_is_refused_with_one_line(tmp_path, name, content, kind, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        check_upload(path, kind, max_bytes=MB, what="Upload")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_oversized_upload_is_refused(clip):
    with pytest.raises(InputError, match="over the 0 MB limit"):
        check_upload(clip, "video", max_bytes=1000, what="Input video")


def _densepose_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy(value: float = 0.5) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.full((2, 8, 6), value, np.float32))
    return buf.getvalue()


def test_zip_members_cannot_escape_and_only_pose_files_are_taken(tmp_path):
    archive = tmp_path / "poses.zip"
    archive.write_bytes(
        _densepose_zip(
            {
                "poses/frame_0_densepose.npy": _npy(0.1),
                "../../frame_1_densepose.npy": _npy(0.2),  # traversal attempt: kept only by base name
                "/abs/frame_2_densepose.npy": _npy(0.3),
                "../../evil.sh": b"echo pwned",
                "poses/readme.txt": b"ignored",
            }
        )
    )
    dest = tmp_path / "job" / "poses"
    collect_densepose([archive], dest, max_bytes=MB)
    assert sorted(p.name for p in dest.iterdir()) == [f"frame_{i}_densepose.npy" for i in range(3)]
    assert not (tmp_path / "evil.sh").exists() and not (tmp_path.parent / "evil.sh").exists()
    assert np.load(dest / "frame_1_densepose.npy").mean() == pytest.approx(0.2)


def test_zip_bomb_and_empty_archives_are_refused(tmp_path):
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_densepose_zip({f"frame_{i}_densepose.npy": b"\x93NUMPY" + b"\0" * 200_000 for i in range(10)}))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(InputError, match="too large"):
        collect_densepose([bomb], tmp_path / "a", max_bytes=MB)
    empty = tmp_path / "empty.zip"
    empty.write_bytes(_densepose_zip({"readme.txt": b"x"}))
    with pytest.raises(InputError, match="no frame_<N>_densepose.npy"):
        collect_densepose([empty], tmp_path / "b", max_bytes=MB)


def test_loose_npy_files_need_the_densepose_name(tmp_path):
    good = tmp_path / "frame_3_densepose.npy"
    good.write_bytes(_npy())
    bad = tmp_path / "pose.npy"
    bad.write_bytes(_npy())
    assert (collect_densepose([good], tmp_path / "ok", max_bytes=MB) / good.name).is_file()
    with pytest.raises(InputError, match="frame_<N>_densepose.npy"):
        collect_densepose([bad], tmp_path / "no", max_bytes=MB)
