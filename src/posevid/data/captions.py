"""Caption CSVs of the Charades / HD-VILA layouts, read tolerantly.

The reference reads ``part_id, clip_id, caption`` rows; consecutive rows of one clip are that clip's
caption list (one caption per 64-frame chunk in HD-VILA). Real files start with a UTF-8 byte-order mark
(the Charades export does), have stray spaces in headers, or repeat a clip further down; all of that is
accepted here. A file without the needed columns is a one-line :class:`InputError`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from posevid.errors import InputError
from posevid.utils.media import VIDEO_SUFFIXES


@dataclass
class ClipRecord:
    """One clip of a caption CSV with all its captions, in file order."""

    clip_id: str
    part_id: str = ""
    captions: list[str] = field(default_factory=list)


def read_captions_csv(path: str | os.PathLike, *, require_part_id: bool = False) -> list[ClipRecord]:
    """Read ``part_id, clip_id, caption`` (BOM-tolerant); rows of the same clip are merged in order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"caption CSV not found: {path}", hint="pass --captions with a CSV of part_id, clip_id, caption")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"caption CSV {path} is not UTF-8 text", hint="re-save it as UTF-8 CSV") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"caption CSV {path} is empty", hint="expected a header line part_id,clip_id,caption") from None
    needed = ["clip_id", "caption"] + (["part_id"] if require_part_id else [])
    missing = [c for c in needed if c not in header]
    if missing:
        raise InputError(
            f"caption CSV {path} lacks column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'})",
            hint="the header must name part_id, clip_id, caption",
        )
    i_clip, i_cap = header.index("clip_id"), header.index("caption")
    i_part = header.index("part_id") if "part_id" in header else None
    records: dict[tuple[str, str], ClipRecord] = {}
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(i_clip, i_cap):
            continue  # a short row cannot name a clip and a caption
        clip = row[i_clip].strip()
        part = row[i_part].strip() if i_part is not None and i_part < len(row) else ""
        if not clip:
            continue
        rec = records.setdefault((part, clip), ClipRecord(clip_id=clip, part_id=part))
        caption = row[i_cap].strip()
        if caption:
            rec.captions.append(caption)
    return list(records.values())


def clip_path(src: str | os.PathLike, rec: ClipRecord, kind: str) -> Path | None:
    """Where a clip of ``rec`` lives under ``src``; ``None`` when no such file exists.

    ``charades``: ``SRC/<clip_id>`` (any video suffix when the id has none). ``hdvila``: the reference layout
    ``SRC/part_<part_id>/video_clips/<clip_id>`` (part ids of any width, unlike the reference's 2 digits).
    """
    src = Path(src)
    base = src / f"part_{rec.part_id}" / "video_clips" if kind == "hdvila" else src
    direct = base / rec.clip_id
    if direct.is_file():
        return direct
    if not Path(rec.clip_id).suffix:
        for suffix in VIDEO_SUFFIXES:
            for cand in (base / f"{rec.clip_id}{suffix}", base / f"{rec.clip_id}{suffix.upper()}"):
                if cand.is_file():
                    return cand
    return None


def caption_for_frames(captions: list[str], frame_indices: list[int], chunk: int = 64) -> str:
    """The caption of the 64-frame chunk that holds the middle sampled frame (fixes the reference's unit mix-up)."""
    if not captions:
        return ""
    middle = frame_indices[len(frame_indices) // 2] if frame_indices else 0
    return captions[min(middle // chunk, len(captions) - 1)]
