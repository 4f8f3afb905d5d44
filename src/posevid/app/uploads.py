"""Checks on everything a browser sends us, and on every path we build from user input.

Gradio already refuses uploads above ``max_file_size`` at its upload route; here we check again, by
extension *and* by content (the first bytes of the file), because a file's name is chosen by the
client. Archives are never extracted with ``extractall``: only members with a plain expected name are
read, with size limits, so a zip cannot write outside its folder or fill the disk.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from posevid.errors import InputError
from posevid.utils.media import IMAGE_SUFFIXES, KEYPOINT_SUFFIXES, VIDEO_SUFFIXES

POSE_ARRAY_EXT = (".npy", ".zip")

KINDS = {
    "video": VIDEO_SUFFIXES,
    "image": IMAGE_SUFFIXES,
    "keypoints": KEYPOINT_SUFFIXES,
    "densepose": POSE_ARRAY_EXT,
}


def _sniff(head: bytes) -> str | None:
    """What the first bytes say the file is (None when unknown)."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "isobmff"  # mp4 / mov / m4v
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # webm / mkv
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"  # program stream / elementary video stream
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "json"
    return None


_EXPECTED = {
    ".mp4": {"isobmff"}, ".mov": {"isobmff"}, ".m4v": {"isobmff"}, ".avi": {"avi"}, ".webm": {"matroska"},
    ".mkv": {"matroska"}, ".gif": {"gif"}, ".png": {"png"}, ".jpg": {"jpeg"}, ".jpeg": {"jpeg"}, ".webp": {"webp"},
    ".bmp": {"bmp"}, ".tif": {"tiff"}, ".tiff": {"tiff"}, ".mpg": {"mpeg"}, ".mpeg": {"mpeg"}, ".json": {"json"}, ".npz": {"zip"},
    ".npy": {"npy"}, ".zip": {"zip"},
}


def check_upload(path: str | Path | None, kind: str, *, max_bytes: int, what: str) -> Path:
    """Return ``path`` if it is an allowed ``kind`` of file (by extension and content) under ``max_bytes``.

    Raises :class:`InputError` with a one-line message otherwise. ``what`` names the form field.
    """
    if path is None or str(path) == "":
        raise InputError(f"{what}: no file given", hint="upload one first")
    path = Path(path)
    allowed = KINDS[kind]
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise InputError(f"{what}: '{path.name}' is not an accepted file type", hint=f"use one of {', '.join(sorted(allowed))}")
    if not path.is_file():
        raise InputError(f"{what}: the uploaded file is missing on the server", hint="upload it again")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{what}: '{path.name}' is empty", hint="upload a non-empty file")
    if size > max_bytes:
        limit = f"{max_bytes / 2**20:.0f} MB"
        raise InputError(f"{what}: '{path.name}' is {size / 2**20:.1f} MB, over the {limit} limit", hint="use a shorter or smaller file")
    with path.open("rb") as fh:
        head = fh.read(64)
    found = _sniff(head)
    if found not in _EXPECTED[suffix]:
        raise InputError(f"{what}: '{path.name}' does not contain {suffix[1:]} data", hint="the file is corrupt or renamed")
    if found == "json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InputError(f"{what}: '{path.name}' is not valid JSON", hint="upload the keypoints.json written by the pose tab") from None
    return path


_DENSEPOSE_NAME = re.compile(r"^frame_(\d+)_densepose\.npy$")


def collect_densepose(files: list[str | Path], dest: Path, *, max_bytes: int, max_members: int = 2000) -> Path:
    """Gather DensePose ``frame_N_densepose.npy`` files (loose or inside zip archives) into ``dest``.

    Only members whose *base name* matches ``frame_<N>_densepose.npy`` are taken (folders inside the
    archive are ignored, so ``../`` names cannot escape); each is written under that base name. The
    total uncompressed size is capped at ``max_bytes`` to defuse zip bombs.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    count = 0
    for item in files:
        item = check_upload(item, "densepose", max_bytes=max_bytes, what="DensePose poses")
        if item.suffix.lower() == ".npy":
            name = Path(item).name
            if not _DENSEPOSE_NAME.match(name):
                raise InputError(f"DensePose poses: '{name}' is not named frame_<N>_densepose.npy", hint="rename it or upload a zip")
            data = item.read_bytes()
            written += len(data)
            count += 1
            (dest / name).write_bytes(data)
            continue
        try:
            with zipfile.ZipFile(item) as archive:
                for info in archive.infolist():
                    base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
                    if info.is_dir() or not _DENSEPOSE_NAME.match(base):
                        continue
                    count += 1
                    written += info.file_size
                    if count > max_members or written > max_bytes:
                        limit = f"at most {max_members} frames and {max_bytes / 2**20:.0f} MB unpacked"
                        raise InputError("DensePose poses: the archive is too large", hint=limit)
                    with archive.open(info) as src:
                        data = src.read(info.file_size + 1)
                    if len(data) != info.file_size:
                        raise InputError("DensePose poses: the archive is inconsistent", hint="re-create the zip")
                    (dest / base).write_bytes(data)
        except zipfile.BadZipFile:
            raise InputError(f"DensePose poses: '{Path(item).name}' is not a readable zip archive", hint="re-create the zip") from None
    if count == 0:
        raise InputError("DensePose poses: no frame_<N>_densepose.npy files found", hint="zip the folder of frame_0_densepose.npy, ...")
    return dest
