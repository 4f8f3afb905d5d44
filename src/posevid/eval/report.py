"""Writing the evaluation report: JSON (machine), Markdown table (humans), optional per-frame plot."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from posevid.utils.outputs import atomic_path

# Which way is better, for the table header arrows.
LOWER_IS_BETTER = {"l1", "lpips", "fid", "fvd"}
ORDER = (
    "pck@0.05", "pck@0.1", "pck@0.2", "oks", "oks_ap", "oks_ap50", "oks_ap75", "detection_rate",
    "clip_consistency", "clip_text_alignment", "clip_image_alignment",
    "l1", "psnr", "psnr_uint8_overflow_buggy", "ssim", "lpips", "fid", "fvd",
)  # fmt: skip


def jsonable(value: Any) -> Any:
    """NaN/inf -> null so the file is strict JSON; numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(report), indent=2, allow_nan=False) + "\n")
    return Path(path)


def _columns(report: dict[str, Any]) -> list[str]:
    keys = set(report["aggregate"]) | {k for v in report["videos"] for k in v["metrics"]}
    return [k for k in ORDER if k in keys] + sorted(keys - set(ORDER))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    """One row per video plus an aggregate row (mean over videos; FID/FVD over the whole set)."""
    cols = _columns(report)
    head = ["video", "frames"] + [f"{c} {'↓' if c in LOWER_IS_BETTER else '↑'}" for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in report["videos"]:
        lines.append("| " + " | ".join([v["name"], str(v["frames"])] + [_fmt(v["metrics"].get(c)) for c in cols]) + " |")
    total = sum(v["frames"] for v in report["videos"])
    lines.append("| " + " | ".join(["**all**", str(total)] + [_fmt(report["aggregate"].get(c)) for c in cols]) + " |")
    notes = list(report.get("notes", [])) + [f"{v['name']}: {n}" for v in report["videos"] for n in v["notes"]]
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(markdown(report))
    return Path(path)


def write_plot(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per per-frame metric, one line per video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(dict.fromkeys(k for v in report["videos"] for k in v["per_frame"]))
    series = [k for k in ORDER if k in series] + [k for k in series if k not in ORDER]
    if not series:
        series = ["(no per-frame metric)"]
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.2 * len(series)), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], series, strict=False):
        for v in report["videos"]:
            values = v["per_frame"].get(key)
            if values:
                ax.plot(range(len(values)), [float("nan") if x is None else x for x in values], label=v["name"], linewidth=1)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frame")
    if len(report["videos"]) <= 10:
        axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    suffix = Path(path).suffix or ".png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=suffix.lstrip(".") if suffix.lstrip(".") in ("png", "pdf", "svg") else "png")
    plt.close(fig)
    return Path(path)
