"""DreamPose test fixtures: the tiny random release, a reference-layout release built from the goldens, poses."""

from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_dreampose_release(tmp_path_factory) -> Path:
    """``posevid make-tiny --kind dreampose`` output: reference file layout, random tiny weights."""
    from posevid.models.tiny_dreampose import write_tiny_dreampose

    return write_tiny_dreampose(tmp_path_factory.mktemp("tiny_dreampose") / "custom-chkpts", seed=0)


@pytest.fixture(scope="session")
def dreampose_golden_release(tmp_path_factory, fixtures_dir) -> Path:
    """The golden weights laid out like the reference release (epoch 0), so tests go through the public loader.

    UNet keys get a DDP ``module.`` prefix; the checkpoint's unet/config.json carries the reference's stale
    ``in_channels: 4``; the VAE keeps its old attention names; CLIP keeps the transformers-4 ``vision_model.`` prefix.
    """
    import torch
    from safetensors.torch import load_file

    g, gp = fixtures_dir / "dreampose_tiny", fixtures_dir / "dreampose_tiny_pipeline"
    out = tmp_path_factory.mktemp("dreampose_golden") / "release"
    ckpt = out / "checkpoint-0"
    for sub in ("unet", "vae", "scheduler"):
        (ckpt / sub).mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in load_file(g / "unet.safetensors").items()}, out / "unet_epoch_0.pth")
    torch.save(load_file(g / "adapter.safetensors"), out / "adapter_0.pth")
    config = json.loads((g / "unet_config.json").read_text())
    (ckpt / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 4}))
    shutil.copy(gp / "vae_config.json", ckpt / "vae" / "config.json")
    shutil.copy(gp / "vae.safetensors", ckpt / "vae" / "diffusion_pytorch_model.safetensors")
    shutil.copy(gp / "scheduler_config.json", ckpt / "scheduler" / "scheduler_config.json")
    clip = out / "clip"
    clip.mkdir()
    shutil.copy(gp / "clip_vision_config.json", clip / "config.json")
    shutil.copy(gp / "clip_vision.safetensors", clip / "model.safetensors")
    shutil.copy(gp / "clip_image_processor_config.json", clip / "preprocessor_config.json")
    return out


def write_synthetic_densepose(folder: Path, numbers, size=(90, 72), seed: int = 0, name: str = "frame_{n}_densepose.npy") -> Path:
    """Reference-format UV maps: an ellipse 'body' that moves with the frame number, U/V in (0, 1], 0 elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for n in numbers:
        cy, cx = h / 2, w / 2 + 3 * np.sin(n)
        body = ((yy - cy) / (0.4 * h)) ** 2 + ((xx - cx) / (0.25 * w)) ** 2 <= 1
        uv = np.zeros((2, h, w))
        uv[0][body] = np.clip(yy[body] / h + 0.05 * rng.random(body.sum()), 0.01, 1)
        uv[1][body] = np.clip(xx[body] / w, 0.01, 1)
        np.save(folder / name.format(n=n), uv)
    return folder


@pytest.fixture()
def synthetic_densepose(tmp_path) -> Path:
    return write_synthetic_densepose(tmp_path / "poses", range(3))


@pytest.fixture()
def fake_densepose_modules():
    """Register densepose/detectron2 result classes under their real module names, only while pickling."""
    names = ["densepose", "densepose.structures", "densepose.structures.chart_result"]
    mods = {n: types.ModuleType(n) for n in names}

    @dataclass
    class DensePoseChartResultWithConfidences:
        labels: object
        uv: object
        sigma_1: object = None

    DensePoseChartResultWithConfidences.__module__ = "densepose.structures.chart_result"
    DensePoseChartResultWithConfidences.__qualname__ = "DensePoseChartResultWithConfidences"
    mods["densepose.structures.chart_result"].DensePoseChartResultWithConfidences = DensePoseChartResultWithConfidences
    sys.modules.update(mods)
    try:
        yield DensePoseChartResultWithConfidences
    finally:
        for n in names:
            sys.modules.pop(n, None)
