"""Child process of the multi-worker pose pass: ``python -m posevid.pose._segment_worker`` (see ``extract._detect_blocks``).

It estimates one contiguous block of the video's segments (:mod:`posevid.pose.segments`), exactly as the calling
process would estimate them.

Why a plain subprocess and not ``multiprocessing``: spawn/forkserver re-import the caller's ``__main__``,
which breaks every user script without an ``if __name__ == "__main__"`` guard, and fork copies a parent
whose threads may hold locks. Arguments come as JSON on stdin; the detections go back as an ``.npz`` on
stdout (plain arrays, read with ``allow_pickle=False``); a :class:`PosevidError` goes back as its class
name and message so the parent re-raises the same one-line error.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np


def pack(detections: list[np.ndarray], name: str, fmt: str) -> bytes:
    counts = np.array([len(d) for d in detections], dtype=np.int64)
    k = detections[0].shape[1] if detections and detections[0].ndim == 3 else 0
    parts = [d.reshape(-1, k, 3) for d in detections if len(d)] if k else []
    data = np.concatenate(parts) if parts else np.zeros((0, k, 3), np.float32)
    buf = io.BytesIO()
    np.savez(
        buf,
        data=data.astype(np.float32),
        counts=counts,
        shapes=np.array([d.shape[1:] if d.ndim == 3 else (0, 3) for d in detections], dtype=np.int64).reshape(-1, 2),
        meta=np.array([name, fmt]),
    )
    return buf.getvalue()


def unpack(payload: bytes) -> tuple[list[np.ndarray], str, str]:
    from posevid import errors

    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        if "error" in z:
            cls_name, message = (str(x) for x in z["error"])
            cls = getattr(errors, cls_name, errors.PosevidError)
            raise cls(message)
        data, counts, shapes, meta = z["data"], z["counts"], z["shapes"], z["meta"]
    out, pos = [], 0
    for n, (k, c) in zip(counts, shapes, strict=True):
        out.append(data[pos : pos + n].reshape(int(n), int(k), int(c)))
        pos += int(n)
    return out, str(meta[0]), str(meta[1])


def main() -> int:
    from posevid.errors import PosevidError
    from posevid.pose.extract import block_detections

    args = json.loads(sys.stdin.read())
    try:
        detections, name, fmt = block_detections(
            args["video_path"], args["estimator"], args["estimator_options"], args["step"], [tuple(seg) for seg in args["segments"]],
            args["max_frames"], args["width"], args["height"],
        )  # fmt: skip
        payload = pack(detections, name, fmt)
    except PosevidError as exc:
        buf = io.BytesIO()
        np.savez(buf, error=np.array([type(exc).__name__, str(exc)]))
        payload = buf.getvalue()
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
