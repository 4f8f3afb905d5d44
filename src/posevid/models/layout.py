"""Where a Follow-Your-Pose model's files are, without loading anything (no torch, no diffusers: milliseconds).

Why its own module: ``posevid generate`` checks that the weights exist before it imports the pipeline (seconds), so a
missing model is a one-line error at once; :mod:`posevid.models.loading` loads what :func:`locate_followyourpose` finds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.errors import CheckpointError

SD_HUB_ID = "CompVis/stable-diffusion-v1-4"
FYP_HUB_ID = "YueMafighting/FollowYourPose_v1"
SD_FOLDER = "stable-diffusion-v1-4"
FYP_CHECKPOINT_FOLDER = "followyourpose_checkpoint-1000"
POSE_ENCODER_FILE = "pose_encoder.pth"
POSEVID_FORMAT = "posevid-followyourpose"
CHECKPOINT_WEIGHTS = ("pytorch_model.bin", "model.safetensors")  # accelerate save_state, old and new default

HOW_TO_GET = (
    f"download the hub repos {SD_HUB_ID} and {FYP_HUB_ID} on a machine with internet access and pass the folder "
    f"holding checkpoints/{{{SD_FOLDER},{FYP_CHECKPOINT_FOLDER},{POSE_ENCODER_FILE}}} with --model DIR"
)
# Only what inference needs: no safety checker, no optimizer state, no duplicate weight formats.
SD_ALLOW_PATTERNS = [
    "model_index.json", "scheduler/*", "tokenizer/*", "unet/config.json", "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors",
]  # fmt: skip
FYP_ALLOW_PATTERNS = [f"{FYP_CHECKPOINT_FOLDER}/pytorch_model.bin", POSE_ENCODER_FILE]


@dataclass(frozen=True)
class FollowYourPoseLayout:
    """Where the pieces of one FYP model live on disk."""

    sd_dir: Path  # holds unet/ vae/ text_encoder/ tokenizer/ scheduler/
    checkpoint: Path | None  # full video-UNet state (reference names), overrides everything
    pose_encoder: Path | None  # adapter-only state, used only without a checkpoint
    source: str  # what the user passed, for messages



# ------------------------------------------------------------------------------------------------------
# locating
# ------------------------------------------------------------------------------------------------------
def locate_followyourpose(model: str | os.PathLike | None = None) -> FollowYourPoseLayout:
    """Resolve ``model`` (None, a hub id, or a folder) to the files of one FYP model."""
    from posevid.utils.hub import resolve_model_path

    if model is None:
        sd_dir = resolve_model_path(SD_HUB_ID, what="Stable Diffusion v1-4", allow_patterns=SD_ALLOW_PATTERNS, how_to_get=HOW_TO_GET)
        fyp_dir = resolve_model_path(FYP_HUB_ID, what="Follow-Your-Pose weights", allow_patterns=FYP_ALLOW_PATTERNS, how_to_get=HOW_TO_GET)
        return FollowYourPoseLayout(
            sd_dir, _checkpoint_file(fyp_dir / FYP_CHECKPOINT_FOLDER), _existing(fyp_dir / POSE_ENCODER_FILE), f"{SD_HUB_ID} + {FYP_HUB_ID}"
        )

    root = resolve_model_path(model, what="Follow-Your-Pose model", how_to_get=HOW_TO_GET)
    if root.is_file():
        raise CheckpointError(f"--model must be a folder, got the file {root}", hint=HOW_TO_GET)
    for base in (root / "checkpoints", root):
        if (base / SD_FOLDER / "unet" / "config.json").is_file():
            return FollowYourPoseLayout(base / SD_FOLDER, _find_checkpoint(base), _existing(base / POSE_ENCODER_FILE), str(model))
    if (root / "unet" / "config.json").is_file():  # our own format (or a bare SD folder + pose encoder beside it)
        return FollowYourPoseLayout(root, None, _existing(root / POSE_ENCODER_FILE), str(model))
    raise CheckpointError(
        f"{model} is not a Follow-Your-Pose model folder: found neither checkpoints/{SD_FOLDER}/, {SD_FOLDER}/ nor unet/config.json",
        hint=HOW_TO_GET,
    )


def layout_from_paths(pretrained: Path | None, checkpoint: Path | None, source: str) -> FollowYourPoseLayout | None:
    """The model the reference config names: SD folder + FYP checkpoint folder (+ ``pose_encoder.pth`` beside SD).

    Returns a :class:`FollowYourPoseLayout`, or None when the config names neither. Without ``resume_from_checkpoint``
    the reference samples SD + pose encoder with untrained temporal layers; the loader refuses that unless
    ``--allow-untrained-temporal`` is given. A path that does not exist is reported as "not found"; ``source`` names
    where the paths come from in messages (``config FILE``).
    """
    if pretrained is None and checkpoint is None:
        return None
    sd_dir = pretrained if pretrained is not None else checkpoint.parent / SD_FOLDER
    for key, folder in (("pretrained_model_path", sd_dir), ("resume_from_checkpoint", checkpoint)):
        if folder is not None and not folder.exists():
            raise CheckpointError(
                f"{source}: {key} {folder} not found",
                hint="download the Follow-Your-Pose release into ./checkpoints, fix the path in the config, or pass --model DIR",
            )
    if not (sd_dir / "unet" / "config.json").is_file():
        raise CheckpointError(
            f"{source}: pretrained_model_path {sd_dir} is not a Stable Diffusion v1-4 folder (no unet/config.json)",
            hint="point it to checkpoints/stable-diffusion-v1-4 of the Follow-Your-Pose release, or pass --model DIR",
        )
    weights = None
    if checkpoint is not None:
        weights = _checkpoint_file(checkpoint)
        if weights is None:
            raise CheckpointError(
                f"{source}: resume_from_checkpoint {checkpoint} holds no {' or '.join(CHECKPOINT_WEIGHTS)}",
                hint="point it to checkpoints/followyourpose_checkpoint-1000, or pass --model DIR",
            )
    return FollowYourPoseLayout(sd_dir, weights, _existing(sd_dir.parent / POSE_ENCODER_FILE), source)


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _checkpoint_file(folder: Path) -> Path | None:
    for name in CHECKPOINT_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    return None


def _find_checkpoint(base: Path) -> Path | None:
    """``followyourpose_checkpoint-1000`` first, else the highest ``*checkpoint-N`` with weights."""
    preferred = _checkpoint_file(base / FYP_CHECKPOINT_FOLDER)
    if preferred:
        return preferred
    numbered = []
    for folder in base.glob("*checkpoint-*"):
        m = re.search(r"checkpoint-(\d+)$", folder.name)
        if m and folder.is_dir() and _checkpoint_file(folder):
            numbered.append((int(m.group(1)), folder))
    return _checkpoint_file(max(numbered)[1]) if numbered else None


def read_model_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"missing config file {path}", hint="the model folder is incomplete") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read config {path}: {str(exc).splitlines()[0]}", hint="the file is corrupt") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"config {path} is not a JSON object")
    return data

