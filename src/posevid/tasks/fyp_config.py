"""Read the reference's sampling config (``configs/pose_sample.yaml``) into :class:`~posevid.tasks.generate.GenerateSettings` values.

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

from posevid.errors import InputError
from posevid.utils.config import read_yaml

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


def read_sample_config(path: str | os.PathLike) -> dict[str, Any]:
    """Settings from a reference-style sampling YAML; only keys present in the file appear in the result.

    The model appears as ``pretrained_model_path`` / ``resume_from_checkpoint`` (resolved paths); turn them
    into a loadable layout with :func:`posevid.models.layout.layout_from_paths` (done only when no ``--model`` is given).
    """
    path = Path(path)
    raw = read_yaml(
        path, missing_hint="check the path, e.g. configs/pose_sample.yaml", hint="it must be a YAML mapping like configs/pose_sample.yaml"
    )
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
