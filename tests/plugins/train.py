"""Fixtures for the training tests: prepared real Charades data, a UBC-style folder, and a CLI runner.

Training runs in subprocesses (``python -m posevid.training`` / ``torch.distributed.run``) with one torch
thread each, so SIGKILL, resume and two-process runs are exercised exactly as a user would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"

#: FYP stage-2 settings small enough for CPU tests: 4 frames of 64x64 (8x8 latents), stride 2.
FYP_SMALL = [
    "--set",
    "train_data.width=64",
    "--set",
    "train_data.height=64",
    "--set",
    "train_data.n_sample_frames=4",
    "--set",
    "train_data.sample_frame_rate=2",
    "--report-to",
    "none",
    "--validation-steps",
    "0",
]


@pytest.fixture(scope="session")
def charades_clip_dir() -> Path:
    """A real Charades clip (0RJKT, frames 200-247 downscaled to 72x96) and its caption CSV (with a BOM)."""
    return TRAIN_FIXTURES / "charades"


@pytest.fixture(scope="session")
def charades_data(charades_clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``posevid prepare`` output for the real clip (no pose extraction: stage 2 trains without poses)."""
    from posevid.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("charades_data")
    prepare_dataset(charades_clip_dir, out, kind="charades", captions=charades_clip_dir / "captions.csv", poses=False, progress=False)
    return out


@pytest.fixture(scope="session")
def fyp_train_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random FYP model in the official release layout (the folder holding ``checkpoints/``)."""
    from posevid.models.tiny import write_tiny_followyourpose

    return write_tiny_followyourpose(tmp_path_factory.mktemp("fyp_train_base") / "model", seed=0)


@pytest.fixture(scope="session")
def dreampose_train_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DreamPose release (reference layout, 128x160 images)."""
    from posevid.models.tiny_dreampose import write_tiny_dreampose

    return write_tiny_dreampose(tmp_path_factory.mktemp("dreampose_train_base") / "model", seed=0)


def write_ubc_folder(root: Path, examples_dir: Path, n: int = 3) -> Path:
    """UBC-Fashion-style frames: the real DreamPose key frame (and mirrored copies) + synthetic DensePose UV."""
    import numpy as np
    from PIL import Image

    src = root / "video_a"
    src.mkdir(parents=True, exist_ok=True)
    im = Image.open(examples_dir / "key_frame.png").convert("RGB").resize((128, 160))
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = im if i % 2 == 0 else im.transpose(Image.FLIP_LEFT_RIGHT)
        frame.save(src / f"frame_{i}.png")
        uv = np.zeros((2, 160, 128))
        uv[:, 30:140, 40:90] = rng.random((2, 110, 50))
        np.save(src / f"frame_{i}_densepose.npy", uv)
    return root


@pytest.fixture(scope="session")
def ubc_data(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    from posevid.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("ubc")
    write_ubc_folder(root / "src", examples_dir)
    prepare_dataset(root / "src", root / "data", kind="ubc", progress=False)
    return root / "data"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra or {})
    return env


def run_training(
    args: list[str], *, nproc: int = 1, env: dict[str, str] | None = None, timeout: float = 300, kill: tuple[str, int] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m posevid.training ARGS`` (``nproc`` > 1: under ``torch.distributed.run --standalone``).

    ``kill=(when, step)``: SIGKILL the run at that point (see ``train_faults.py``; one process only).
    """
    if kill is not None:
        cmd = [sys.executable, str(Path(__file__).with_name("train_faults.py")), kill[0], str(kill[1]), "--", *args]
    elif nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "posevid.training", *args]
    else:
        cmd = [sys.executable, "-m", "posevid.training", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(env), timeout=timeout)


def read_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def train_runner():
    return run_training
