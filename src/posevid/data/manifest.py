"""The JSONL manifest of a prepared data set: one line per finished (or skipped) item.

Preparation appends a line only after every file of that item is complete, with one ``write`` of the
whole line on an ``O_APPEND`` descriptor followed by ``fsync``, so a killed run leaves at most one torn
last line, which the reader drops. A restarted preparation reads the manifest and skips every id already
in it, so finished clips are never redone. Paths in entries are relative to the data folder when the file
lies inside it, else absolute.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.errors import InputError
from posevid.utils.jsonl import append_json_line, read_json_lines

MANIFEST_NAME = "manifest.jsonl"
log = logging.getLogger(__name__)


@dataclass
class PrepareResult:
    """What a preparation left in its folder, counted over the whole manifest (this run and earlier ones)."""

    out: Path
    ok: int
    skipped: int
    reused: int

    def summary(self) -> str:
        return f"{self.ok} usable item(s) in {self.out} ({self.reused} from an earlier run, {self.skipped} skipped)"


class Manifest:
    """Append-only, crash-tolerant JSONL file of ``{"id": ..., "status": "ok"|"skipped", ...}`` entries."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.path = self.root / MANIFEST_NAME

    def entries(self) -> list[dict[str, Any]]:
        return list(self._read())

    def _read(self) -> Iterator[dict[str, Any]]:
        for entry in read_json_lines(self.path):
            if isinstance(entry, dict) and "id" in entry:
                yield entry

    def done_ids(self) -> set[str]:
        return {e["id"] for e in self._read()}

    def repair(self) -> None:
        """Cut a torn last line so the next append starts on a fresh line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)

    def append(self, entry: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        append_json_line(self.path, entry)

    def append_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Append the entry of a processed work item (``posevid.data.prepare``'s clip stages) and return it.

        An item is the manifest fields known so far plus ``_path`` (the clip) and ``_reason`` (why it is skipped,
        None when usable). The skip reason is logged here, once, by the process that writes: the plain engine and
        the Ray driver both come through here, so their manifests are the same line for line.
        """
        if item["_reason"] is not None:
            log.warning("prepare: skipping clip %s: %s", item["clip_id"], item["_reason"])
            entry = {"id": item["id"], "status": "skipped", "reason": item["_reason"], "clip_id": item["clip_id"]}
        else:
            entry = {k: v for k, v in item.items() if not k.startswith("_")}
            entry["video"] = self.rel(item["_path"])
            entry["status"] = "ok"
        self.append(entry)
        return entry

    def result(self, reused: int) -> PrepareResult:
        """Counts over the whole manifest (this run and earlier, interrupted ones); ``reused``: items found done."""
        entries = self.entries()
        ok = sum(e.get("status", "ok") == "ok" for e in entries)
        return PrepareResult(self.root, ok, len(entries) - ok, reused)

    def rel(self, path: str | os.PathLike) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.root / p


def load_manifest(data_dir: str | os.PathLike, *, kind: str | None = None) -> tuple[Manifest, list[dict[str, Any]], dict[str, Any]]:
    """Open a prepared data folder: ``(manifest, usable entries, meta)``; one-line error when unusable."""
    data_dir = Path(data_dir)
    manifest = Manifest(data_dir)
    if not manifest.path.is_file():
        raise InputError(
            f"{data_dir} is not a prepared data folder (no {MANIFEST_NAME})",
            hint="run 'posevid prepare SRC --captions CSV --out DATA' first and pass DATA",
        )
    meta_path = data_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if kind is not None and meta.get("kind") not in (None, *([kind] if isinstance(kind, str) else kind)):
        raise InputError(
            f"{data_dir} was prepared as kind {meta.get('kind')!r}, this recipe needs {kind!r}",
            hint="prepare the data again with the matching --kind",
        )
    entries = [e for e in manifest.entries() if e.get("status", "ok") == "ok"]
    return manifest, entries, meta
