"""Fixtures for the speed / memory / long-video tests: tiny pipelines and the reference's golden UNet inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def make_tiny_pipe(fixtures_dir: Path) -> Callable:
    """Factory for a fresh reference-made tiny FYP pipeline (the options under test mutate it; ~0.3 s each)."""

    def make():
        from posevid.pipelines.followyourpose import FollowYourPosePipeline

        pipe = FollowYourPosePipeline.from_release(fixtures_dir / "fyp_tiny_pipeline" / "release_layout")
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return make


@pytest.fixture(scope="session")
def fyp_pipeline_golden(fixtures_dir: Path) -> dict:
    """Tensors recorded from the reference pipeline (4 frames, 512x512, 3 DDIM steps, CFG 12.5)."""
    from safetensors.torch import load_file

    return load_file(str(fixtures_dir / "fyp_tiny_pipeline" / "pipeline_io.safetensors"))


@pytest.fixture(scope="session")
def fyp_skeleton_path(fixtures_dir: Path) -> Path:
    return fixtures_dir / "fyp_tiny_pipeline" / "skeleton_256_ffv1.avi"


@pytest.fixture(scope="session")
def golden_step0_inputs(fyp_pipeline_golden: dict, fyp_skeleton_path: Path) -> dict:
    """Inputs of the reference's first UNet call: latents x2 (uncond, cond), t = 667, text, pose (1, 4, 3, 512, 512)."""
    import torch

    from posevid.pipelines.fyp_pose_input import prepare_pose

    g = fyp_pipeline_golden
    return {
        "model_in": torch.cat([g["init_latents"]] * 2),
        "t": int(g["timesteps"][0]),
        "text": g["text_embeddings_uncond_cond"],
        "pose": prepare_pose(fyp_skeleton_path, video_length=4, stride=5, height=512, width=512),
        "expected": g["step0_unet_out_uncond_cond"],
    }
