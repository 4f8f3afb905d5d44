"""DreamPose frame batches: several frames per UNet call give the per-frame pipeline's frames.

(The per-frame pipeline itself is checked against the reference golden in ``test_dreampose_golden.py``;
running that golden again here would cost ~45 s, so batches are compared with the pipeline on the tiny
random release instead, frame by frame, with tight tolerances.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posevid.errors import InputError


def test_frame_batches_equal_per_frame_generation(tiny_dreampose_release, synthetic_densepose, examples_dir, single_thread):
    from posevid.data.dreampose_poses import DensePoseSequence
    from posevid.pipelines.dreampose import DreamPosePipeline

    pipe = DreamPosePipeline.from_pretrained(tiny_dreampose_release)
    seq = DensePoseSequence.from_folder(synthetic_densepose)
    image = examples_dir / "key_frame.png"
    common = dict(s1=8.0, s2=3.0, num_inference_steps=2, seed=5, return_latents=True, show_progress=False)
    ref = pipe(image, seq, **common)
    calls: list[int] = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    streamed: list[int] = []
    try:
        out = pipe(image, seq, frame_batch_size=2, frame_callback=lambda i, n, raw, st: streamed.append(n), **common)
    finally:
        handle.remove()
    steps = len(pipe.scheduler.timesteps)
    assert calls == [6] * steps + [3] * steps  # frames {0, 1} in one UNet batch of 3 x 2 rows, then frame 2
    assert streamed == out.frame_numbers == ref.frame_numbers == [0, 1, 2]
    for mine, theirs in zip(out.latents, ref.latents, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)  # batch-size rounding only
    assert np.abs(out.frames.astype(int) - ref.frames.astype(int)).max() <= 1
    # streamed only: nothing kept (what is kept does not depend on the step count, so one step is enough here)
    lean = pipe(image, seq, frame_batch_size=3, return_frames=False, **{**common, "return_latents": False, "num_inference_steps": 1})
    assert lean.frames.shape[0] == 0 and lean.latents is None and lean.frame_numbers == [0, 1, 2]
    with pytest.raises(InputError, match="batch size"):
        pipe(image, seq, frame_batch_size=0)
