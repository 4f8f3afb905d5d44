"""Fixtures for the Follow-Your-Pose model: the ``fyp_tiny`` golden and a tiny release-layout model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fyp_golden(fixtures_dir: Path) -> dict:
    """``fyp_tiny`` golden: ``config`` (reference config.json), ``state`` (reference key names), ``io`` tensors."""
    from safetensors.torch import load_file

    root = fixtures_dir / "fyp_tiny"
    return {
        "config": json.loads((root / "config.json").read_text()),
        "state": load_file(str(root / "state_dict.safetensors")),
        "io": load_file(str(root / "io.safetensors")),
    }


@pytest.fixture
def fyp_golden_unet(fyp_golden: dict):
    """A fresh ``FollowYourPoseUNet`` holding the golden weights (eval mode); cheap (~0.1 s)."""
    from posevid.models.convert import fyp_reference_to_posevid
    from posevid.models.fyp_unet import FollowYourPoseUNet, unet_config_from_reference

    unet = FollowYourPoseUNet(**unet_config_from_reference(fyp_golden["config"]["unet"]))
    unet.load_state_dict(fyp_reference_to_posevid(fyp_golden["state"]), strict=True)
    return unet.eval()


@pytest.fixture(scope="session")
def fyp_release_fixture(fixtures_dir: Path) -> Path:
    """The reference-made miniature release: ``.../release_layout/checkpoints`` (read-only; copy before editing)."""
    return fixtures_dir / "fyp_tiny_pipeline" / "release_layout" / "checkpoints"


@pytest.fixture(scope="session")
def tiny_fyp_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random FYP model in the official release layout, written once per session.

    Returns the folder that contains ``checkpoints/`` (pass it as ``--model``).
    """
    from posevid.models.tiny import write_tiny_followyourpose

    return write_tiny_followyourpose(tmp_path_factory.mktemp("tiny_fyp_release"), seed=0)


@pytest.fixture
def single_thread():
    """Run a test with one intra-op thread: the tiny models gain nothing from threads, and on a shared,
    loaded 2-core machine OpenMP barriers made each forward 20-100x slower. Restores the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
