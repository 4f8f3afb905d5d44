"""Finding the videos to evaluate and pairing them with their references by file name.

An input is a video file, a folder of videos (each one an item, named by its stem), or a folder of images
(one item: its frames in name order, named after the folder). Generated and reference items are paired
by name; a single generated item and a single reference item are paired whatever their names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posevid.errors import InputError
from posevid.utils.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES


@dataclass(frozen=True)
class Item:
    name: str
    path: Path
    kind: str  # "video" | "frames"


def collect_items(paths: list[str | os.PathLike], *, what: str = "input") -> list[Item]:
    items: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{what} not found: {path}", hint="check the path")
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                raise InputError(f"{what} {path} is a single image", hint="pass a video, or a folder holding the frames")
            items.append(Item(path.stem, path, "video"))
            continue
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if videos:
            items += [Item(p.stem, p, "video") for p in videos]
        elif any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            items.append(Item(path.name, path, "frames"))
        else:
            raise InputError(f"{what} folder {path} holds no videos and no images", hint="pass video files or frame folders")
    names = [i.name for i in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two {what}s share the name '{dup[0]}'", hint="results are matched and reported by file name; rename one")
    return items


def pair_items(generated: list[Item], reference: list[Item]) -> list[tuple[Item, Item]]:
    if len(generated) == 1 and len(reference) == 1:
        return [(generated[0], reference[0])]
    by_name = {r.name: r for r in reference}
    missing = [g.name for g in generated if g.name not in by_name]
    if missing:
        raise InputError(
            f"no reference video named '{missing[0]}' ({len(missing)} unmatched)",
            hint="pairs are matched by file name: give each reference the generated video's name",
        )
    return [(g, by_name[g.name]) for g in generated]


def load_frames(item: Item, *, max_frames: int | None = None) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB."""
    if item.kind == "video":
        from posevid.video import read_frames

        return read_frames(item.path, max_frames=max_frames)
    from PIL import Image

    files = sorted(p for p in item.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_frames]
    frames = []
    for p in files:
        try:
            frames.append(np.asarray(Image.open(p).convert("RGB")))
        except Exception as exc:
            raise InputError(f"cannot read image {p}: {str(exc).splitlines()[0][:120]}") from None
    if len({f.shape for f in frames}) > 1:
        raise InputError(f"frames in {item.path} differ in size", hint="all frames of one video must have one size")
    return np.stack(frames)


def sidecar_settings(item: Item) -> dict:
    """Settings from a generated video's ``<stem>.json`` sidecar (empty when absent or unreadable)."""
    side = item.path.with_suffix(".json") if item.kind == "video" else item.path / "settings.json"
    try:
        data = json.loads(side.read_text())
        return data.get("settings", {}) if isinstance(data, dict) else {}
    except Exception:
        return {}
