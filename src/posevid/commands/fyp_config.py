"""Read the reference's sampling config (``configs/pose_sample.yaml``) into ``posevid generate`` settings.

Users of the original repository know ``txt2video.py --config configs/pose_sample.yaml --skeleton_path
video.mov``; ``posevid generate`` accepts the same file. Keys the reference reads are mapped; keys it
reads but that mean nothing here (xformers, inversion, training-only values) are accepted quietly or
with a note; anything else gets a warning naming the key instead of a crash, so a config written for a
fork still runs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posevid.errors import InputError, short_reason

# validation_data key -> generate setting
VALIDATION_KEYS = {
    "prompts": "prompts",
    "prompt": "prompts",
    "negative_prompt": "negative_prompt",
    "video_length": "video_length",
    "width": "width",
    "height": "height",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "frame_skeleton_stride": "stride",
    "frame_stride": "stride",
    "num_videos_per_prompt": "num_videos_per_prompt",
}
# top-level key -> generate setting
TOP_KEYS = {
    "seed": "seed",
    "output_dir": "output_dir",
    "skeleton_path": "pose",
    "scheduler": "scheduler",
    "fps": "fps",
}
# read by the reference scripts, meaningless for posevid inference: accepted without a word
IGNORED_TOP = {
    "train_batch_size",
    "validation_steps",
    "gradient_checkpointing",
    "enable_xformers_memory_efficient_attention",
    "use_8bit_adam",
    "train_data",
    "learning_rate",
    "max_train_steps",
    "checkpointing_steps",
    "trainable_modules",
    "gradient_accumulation_steps",
    "lr_scheduler",
    "lr_warmup_steps",
    "adam_beta1",
    "adam_beta2",
    "adam_weight_decay",
    "adam_epsilon",
    "max_grad_norm",
    "scale_lr",
}
IGNORED_VALIDATION = {"num_inv_steps", "dataset_set", "use_inv_latent"}
MIXED_PRECISION = {"no": "fp32", "fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}


def _resolve(path_value: Any, config_dir: Path) -> Path:
    """Relative paths mean the working directory (as in the reference); fall back to the config's folder."""
    path = Path(str(path_value)).expanduser()
    if path.is_absolute() or path.exists():
        return path
    alt = config_dir / path
    return alt if alt.exists() else path


def layout_from_paths(pretrained: Path | None, checkpoint: Path | None, source: str):
    """The model the reference config names: SD folder + FYP checkpoint folder (+ ``pose_encoder.pth`` beside SD).

    Returns a :class:`~posevid.models.loading.FollowYourPoseLayout`, or None when the config names neither.
    Without ``resume_from_checkpoint`` the reference samples SD + pose encoder with untrained temporal
    layers; the loader refuses that unless ``--allow-untrained-temporal`` is given. A path that does not
    exist is reported as "not found".
    """
    from posevid.errors import CheckpointError
    from posevid.models.loading import CHECKPOINT_WEIGHTS, POSE_ENCODER_FILE, SD_FOLDER, FollowYourPoseLayout

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
        weights = next((checkpoint / name for name in CHECKPOINT_WEIGHTS if (checkpoint / name).is_file()), None)
        if weights is None:
            raise CheckpointError(
                f"{source}: resume_from_checkpoint {checkpoint} holds no {' or '.join(CHECKPOINT_WEIGHTS)}",
                hint="point it to checkpoints/followyourpose_checkpoint-1000, or pass --model DIR",
            )
    pose_encoder = sd_dir.parent / POSE_ENCODER_FILE
    return FollowYourPoseLayout(sd_dir, weights, pose_encoder if pose_encoder.is_file() else None, source)


def read_sample_config(path: str | os.PathLike) -> dict[str, Any]:
    """Settings from a reference-style sampling YAML; only keys present in the file appear in the result.

    The model appears as ``pretrained_model_path`` / ``resume_from_checkpoint`` (resolved paths); turn them
    into a loadable layout with :func:`layout_from_paths` (done only when no ``--model`` is given).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}", hint="check the path, e.g. configs/pose_sample.yaml")
    try:
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(OmegaConf.load(str(path)), resolve=True)
    except Exception as exc:
        reason = short_reason(exc)
        raise InputError(f"cannot parse config {path}: {reason}", hint="it must be a YAML mapping like configs/pose_sample.yaml") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InputError(f"config {path} is not a YAML mapping", hint="see configs/pose_sample.yaml")
    config_dir = path.resolve().parent
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        if key == "validation_data":
            if not isinstance(value, Mapping):
                raise InputError(f"config {path}: validation_data must be a mapping")
            for vkey, vvalue in value.items():
                if vkey in VALIDATION_KEYS:
                    out[VALIDATION_KEYS[vkey]] = vvalue
                elif vkey == "use_inv_latent" and vvalue:
                    warnings.warn(
                        f"{path}: use_inv_latent is not supported (DDIM inversion is dead code in the reference); ignored", stacklevel=2
                    )
                elif vkey not in IGNORED_VALIDATION:
                    unknown.append(f"validation_data.{vkey}")
        elif key in TOP_KEYS:
            out[TOP_KEYS[key]] = value
        elif key == "pretrained_model_path":
            out["pretrained_model_path"] = _resolve(value, config_dir)
        elif key == "resume_from_checkpoint":
            if value and str(value) != "latest":
                out["resume_from_checkpoint"] = _resolve(value, config_dir)
        elif key == "mixed_precision":
            if value is not None:
                if str(value) not in MIXED_PRECISION:
                    raise InputError(f"config {path}: mixed_precision must be one of no, fp16, bf16 (got {value!r})")
                out["dtype"] = MIXED_PRECISION[str(value)]
        elif key not in IGNORED_TOP:
            unknown.append(str(key))
    for key in unknown:
        warnings.warn(f"{path}: unknown key {key!r} ignored", stacklevel=2)
    if "prompts" in out:
        prompts = out["prompts"]
        out["prompts"] = [prompts] if isinstance(prompts, str) else [str(p) for p in (prompts or [])]
    if "pose" in out:
        out["pose"] = str(_resolve(out["pose"], config_dir))
    return out
