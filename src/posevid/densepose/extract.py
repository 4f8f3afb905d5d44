"""The DensePose job: a video, a folder of frames or one image -> DreamPose's ``frame_N_densepose.npy`` files.

Output folder (written under a temporary name beside ``out`` and renamed into place only when complete,
so a failure leaves nothing behind):

* ``frame_N_densepose.npy`` for every frame N (0-based, not zero-padded, as DreamPose's ``test.py`` reads
  them): exactly what DreamPose's ``utils/densepose.py`` makes from an ``apply_net.py dump`` entry, i.e. a
  float64 ``(2, H, W)`` canvas, zeros except the chosen person's U, V pasted at its int-truncated box;
* ``iuv/frame_N.png`` with ``iuv=True``: the DensePose/OpenCV IUV convention (file BGR = I, 255*U, 255*V;
  read as RGB: R = V, G = U, B = I), which ``posevid animate --pose-format iuv`` reads back;
* ``frame_N.png`` with ``frames=True``: the input frame itself, beside its pose (DreamPose's training layout,
  what ``posevid prepare --kind ubc --densepose`` writes);
* ``preview.mp4`` with ``preview=True``: the frames with the chosen person's body parts coloured;
* ``densepose.json``: the settings, the person rule, per-frame box and score, and the frames without a person.

Person choice: ``top-score`` (the reference: DreamPose keeps instance 0, the best score), ``largest``
(biggest box area), ``track`` (the top-score person of the first frame with someone, then in each frame
the detection whose box overlaps the previous choice most; when nothing overlaps, the top-score one).

Frames where nobody is found get an all-zero canvas, which is DreamPose's background (its ``test.py``
maps it to -1 everywhere); their count is reported. If no frame at all has a person the job fails.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from posevid.densepose.dreampose_format import dump_entry_to_uv, frame_number
from posevid.densepose.ops import box_iou
from posevid.densepose.options import DensePoseOptions
from posevid.densepose.predictor import ChartResult, DensePosePredictor, FrameResult
from posevid.errors import InputError, NoPersonError
from posevid.utils.media import IMAGE_SUFFIXES
from posevid.utils.outputs import OutputSet
from posevid.utils.progress import Progress, no_progress, progress_bar


@dataclass
class DensePoseReport:
    out: Path
    frames: int
    frames_without_person: list[int] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def summary(self) -> str:
        empty = len(self.frames_without_person)
        note = f", {empty} without a person (zero canvas)" if empty else ""
        fps = self.frames / self.seconds if self.seconds else 0.0
        return f"wrote {self.frames} DensePose frame(s) to {self.out}{note} ({fps:.2f} frames/s on {self.device})"


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------
def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {(str(exc).splitlines() or ['?'])[0][:120]}") from None


def _frames_of(source: Path) -> tuple[list[tuple[int, str]], Iterator[np.ndarray], int, float]:
    """(frame numbers with their source names, an iterator of RGB frames, count, fps) for a video, folder or image."""
    if not source.exists():
        raise InputError(f"input not found: {source}", hint="pass a video, a folder of frames or an image")
    if source.is_dir():
        files = sorted((p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
        if not files:
            raise InputError(f"no images in {source}", hint=f"the folder must hold frames ({', '.join(IMAGE_SUFFIXES)})")
        numbers = [frame_number(p.name) for p in files]
        if None in numbers or len(set(numbers)) != len(numbers):
            numbers = list(range(len(files)))  # names without distinct frame numbers: number them in name order
        order = sorted(range(len(files)), key=lambda i: numbers[i])
        files, numbers = [files[i] for i in order], [numbers[i] for i in order]
        return list(zip(numbers, [p.name for p in files], strict=True)), (_read_image(p) for p in files), len(files), 8.0
    if source.suffix.lower() in IMAGE_SUFFIXES:
        n = frame_number(source.name)
        return [(0 if n is None else n, source.name)], iter([_read_image(source)]), 1, 8.0
    from posevid.video.io import iter_frames, probe_video

    info = probe_video(source)
    frames = iter_frames(source)
    names = [(i, f"{source.name}#{i}") for i in range(info.num_frames)]
    return names, frames, info.num_frames, info.fps


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Batches of up to ``size`` frames of one shape: frames of another size start a new batch, so each frame
    is padded exactly as it would be alone (the padding decides which anchors exist)."""
    batch: list[np.ndarray] = []
    for frame in frames:
        if batch and frame.shape != batch[0].shape:
            yield batch
            batch = []
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------------------------------
# Person choice and outputs
# --------------------------------------------------------------------------------------------------
class PersonChooser:
    """Picks one detection per frame according to ``rule``, one of ``PERSON_RULES`` (keeps the track state between frames)."""

    def __init__(self, rule: str) -> None:
        self.rule = DensePoseOptions(person=rule).validate().person
        self.previous: torch.Tensor | None = None
        self.resets = 0

    def __call__(self, result: FrameResult) -> int | None:
        if len(result) == 0:
            return None
        choice = 0  # detections are sorted by score: 0 is the reference's instance
        if self.rule == "largest":
            area = (result.boxes[:, 2] - result.boxes[:, 0]) * (result.boxes[:, 3] - result.boxes[:, 1])
            choice = int(torch.argmax(area))
        elif self.rule == "track" and self.previous is not None:
            iou = box_iou(self.previous[None], result.boxes)[0]
            if float(iou.max()) > 0.0:
                choice = int(torch.argmax(iou))
            else:
                self.resets += 1
        self.previous = result.boxes[choice]
        return choice


def dreampose_canvas(result: FrameResult, index: int | None) -> tuple[np.ndarray, ChartResult | None]:
    """DreamPose's ``(2, H, W)`` float64 pose for the chosen instance (zeros when there is none)."""
    h, w = result.image_size
    if index is None:
        return np.zeros((2, h, w), dtype=np.float64), None
    chart = result.chart(index)
    entry = {"pred_densepose": [chart], "pred_boxes_XYXY": result.boxes[index : index + 1]}
    return dump_entry_to_uv(entry, (h, w)), chart


def iuv_image(result: FrameResult, index: int | None, chart: ChartResult | None) -> np.ndarray:
    """RGB image in the DensePose/OpenCV IUV convention as read back (R = 255*V, G = 255*U, B = part index)."""
    h, w = result.image_size
    out = np.zeros((h, w, 3), dtype=np.uint8)
    if index is None or chart is None:
        return out
    x1, y1 = max(int(result.boxes[index][0]), 0), max(int(result.boxes[index][1]), 0)
    labels, uv = chart.labels.numpy(), chart.uv.numpy()
    bh, bw = min(labels.shape[0], h - y1), min(labels.shape[1], w - x1)
    if bh <= 0 or bw <= 0:
        return out
    region = out[y1 : y1 + bh, x1 : x1 + bw]
    region[..., 0] = np.clip(np.round(uv[1, :bh, :bw] * 255), 0, 255)
    region[..., 1] = np.clip(np.round(uv[0, :bh, :bw] * 255), 0, 255)
    region[..., 2] = labels[:bh, :bw]
    return out


def _palette(n: int = 25) -> np.ndarray:
    """Distinct colours for the 24 body parts (0 = background, unused)."""
    import colorsys

    cols = [(0, 0, 0)] + [colorsys.hsv_to_rgb(i / (n - 1), 0.85, 1.0) for i in range(n - 1)]
    return (np.array(cols) * 255).astype(np.float32)


_PALETTE = _palette()


def preview_frame(frame: np.ndarray, iuv: np.ndarray) -> np.ndarray:
    """The frame, dimmed, with the chosen person's parts coloured and U/V iso-lines drawn darker."""
    out = frame.astype(np.float32) * 0.45
    parts = iuv[..., 2].astype(np.int64)
    body = parts > 0
    colour = _PALETTE[np.clip(parts, 0, 24)]
    uv = iuv[..., :2].astype(np.float32) / 255.0
    lines = (np.abs(((uv * 8) % 1.0) - 0.5) > 0.42).any(axis=-1) & body  # 8 iso-lines of U and of V per part
    colour[lines] *= 0.35
    out[body] = 0.25 * frame[body] + 0.75 * colour[body]
    return np.clip(out, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------
def extract_densepose(
    source: str | os.PathLike,
    out: str | os.PathLike,
    options: DensePoseOptions = DensePoseOptions(),
    *,
    iuv: bool = False,
    preview: bool = False,
    frames: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    predictor: DensePosePredictor | None = None,
    report: Progress = no_progress,
) -> DensePoseReport:
    """Run DensePose on every frame of ``source`` (a video, a folder of frames or an image) and write the folder ``out``.

    ``iuv``, ``preview``, ``frames``: the extra outputs of the module docstring; ``overwrite``: replace a non-empty
    ``out``. ``progress``: a progress bar (the command line). ``report``: a :data:`~posevid.utils.progress.Progress`,
    called as ``report("densepose", done, total)`` before the first batch and after every batch; whatever it raises (the
    app's Cancel) stops the extraction there and nothing is left written. ``predictor``: an already loaded model (e.g.
    kept by a ``prepare`` worker), used with ``options.short_side`` but never changed; else it is loaded from
    ``options.weights``.
    """
    options.validate()
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if out.exists() and (out.is_file() or any(out.iterdir())) and not overwrite:
        raise InputError(f"--out folder {out} already exists and is not empty", hint="choose another --out or pass --overwrite")
    names, frame_iter, total, fps = _frames_of(source)  # input errors before the (slower) model load
    if predictor is None:
        predictor = DensePosePredictor.from_weights(options.weights, device=options.device, dtype=options.dtype)
    if options.short_side is not None:
        predictor = predictor.with_config(options.model_config(predictor.cfg))  # the caller's predictor keeps its own
    settings = {"input": str(source), "out": str(out), **options.as_dict(), "iuv": iuv, "preview": preview, "frames": frames}
    chooser = PersonChooser(options.person)
    bar = progress_bar(total=total, desc="densepose", enabled=bool(progress))
    start = time.perf_counter()
    empty: list[int] = []
    per_frame: list[dict] = []
    done = 0
    with OutputSet(out) as outputs:  # the folder appears whole, replacing an earlier one, or not at all
        tmp = outputs.path(out)
        tmp.mkdir()
        writer = None
        if preview:
            from posevid.video.io import VideoWriter

            writer = VideoWriter(tmp / "preview.mp4", fps=fps)
        try:
            report("densepose", 0, total)  # after the model load: a cancel while it loaded stops here
            for batch in _batches(frame_iter, options.batch_size):
                results = predictor(batch, choose=chooser)
                for frame, result in zip(batch, results, strict=True):
                    n, name = names[done] if done < len(names) else (done, f"#{done}")
                    index = result.chart_rows[0] if result.chart_rows else None
                    canvas, chart = dreampose_canvas(result, index)
                    np.save(tmp / f"frame_{n}_densepose.npy", canvas, allow_pickle=False)
                    if frames:
                        _save_png(tmp / f"frame_{n}.png", frame)
                    if iuv or writer is not None:
                        iuv_rgb = iuv_image(result, index, chart)
                        if iuv:
                            _save_png(tmp / "iuv" / f"frame_{n}.png", iuv_rgb)
                        if writer is not None:
                            writer.write(preview_frame(frame, iuv_rgb))
                    if index is None:
                        empty.append(n)
                    per_frame.append(
                        {"frame": n, "source": name, "detections": len(result), "person": index,
                         "box": None if index is None else [round(float(v), 3) for v in result.boxes[index]],
                         "score": None if index is None else round(float(result.scores[index]), 5)}
                    )
                    done += 1
                bar.update(len(batch))
                report("densepose", done, total)
            if done == len(empty):
                what = "the image" if done == 1 else f"any of the {done} frames"
                raise NoPersonError(f"DensePose found no person in {what} of {source}", hint="check the input shows a person")
            if writer is not None:
                writer.close()
                writer = None
        finally:
            if writer is not None:
                writer.abort()
            bar.close()
            if hasattr(frame_iter, "close"):
                frame_iter.close()  # a stop before the last frame: release the video decoder now
        seconds = time.perf_counter() - start
        summary = DensePoseReport(out=out, frames=done, frames_without_person=empty, seconds=seconds, device=str(predictor.device))
        _write_sidecar(tmp / "densepose.json", settings, predictor, summary, chooser, per_frame)
        outputs.commit()
    return summary


def densepose_folder_for(
    video: str | os.PathLike,
    options: DensePoseOptions = DensePoseOptions(),
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    report: Progress = no_progress,
) -> Path:
    """A folder of ``frame_N_densepose.npy`` for a driving video, extracted once and cached.

    Cached under ``<POSEVID_CACHE or ~/.cache/posevid>/densepose/`` keyed by the video's content and the
    options that change the result (weights file, person rule, dtype, short side); like ``generate`` does
    for skeletons. The entry appears only when complete: a failure or a stop from ``report`` (see
    :func:`extract_densepose`) leaves none.
    """
    from dataclasses import replace

    from posevid.densepose.weights import resolve_weights
    from posevid.utils.cache import cache_key, cache_root  # the same content key as the skeleton cache

    options.validate()
    video = Path(video).expanduser()
    if not video.is_file():
        raise InputError(f"driving video not found: {video}", hint="pass a video file")
    wpath = resolve_weights(options.weights)
    wstat = wpath.stat() if wpath.is_file() else None
    key_settings = {"weights": str(wpath.resolve()), "wsize": wstat.st_size if wstat else None, "person": options.person,
                    "dtype": options.dtype, "short_side": options.short_side, "v": 1}  # fmt: skip
    key = cache_key(video, key_settings)
    root = Path(cache_dir).expanduser() if cache_dir else cache_root() / "densepose"
    out = root / f"{video.stem}-{key}"
    if (out / "densepose.json").is_file():
        return out
    extract_densepose(video, out, replace(options, weights=wpath), overwrite=True, progress=progress, report=report)
    return out


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def _write_sidecar(path: Path, settings: dict, predictor: DensePosePredictor, report: DensePoseReport, chooser, per_frame) -> None:
    from posevid.utils.outputs import environment_info

    payload = {
        "kind": "densepose",
        "model": "densepose_rcnn_R_50_FPN_s1x",
        "settings": settings,
        "config": predictor.cfg.as_dict(),
        "frames": report.frames,
        "frames_without_person": report.frames_without_person,
        "no_person_policy": "zero canvas (DreamPose background)",
        "track_resets": chooser.resets if chooser.rule == "track" else None,
        "seconds": round(report.seconds, 3),
        "device": report.device,
        "per_frame": per_frame,
        "environment": environment_info(),
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


__all__ = [
    "DensePoseReport", "PersonChooser", "densepose_folder_for", "dreampose_canvas",
    "extract_densepose", "iuv_image",
]
