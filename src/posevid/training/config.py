"""Training configuration: reference keys accepted as they are, one flat namespace with a few groups.

Precedence: recipe defaults < ``--config`` YAML (the reference ``configs/pose_train.yaml`` works as is) <
explicit command-line flags < ``--set key=value`` overrides. Reference spellings are mapped here once
(``pretrained_model_path`` = ``pretrained_model_name_or_path``, ``instance_data_dir`` / ``train_data.video_path``
= ``train_data.data_dir``, ``resume_from_checkpoint`` = ``resume``, ``custom_chkpt`` = ``init_checkpoint``),
so recipes only read the canonical names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from posevid.errors import InputError
from posevid.utils.config import parse_value, read_yaml

COMMON: dict[str, Any] = {
    "pretrained_model_path": None,
    "output_dir": "runs/train",
    "seed": 33,
    "train_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "max_train_steps": None,
    "num_train_epochs": None,
    "learning_rate": 3e-5,
    "scale_lr": False,
    "lr_scheduler": "constant",
    "lr_warmup_steps": 0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_weight_decay": 1e-2,
    "adam_epsilon": 1e-8,
    "max_grad_norm": 1.0,
    "use_8bit_adam": False,
    "use_ema": False,
    "ema_decay": 0.9999,
    "mixed_precision": "no",
    "gradient_checkpointing": False,
    "enable_xformers_memory_efficient_attention": False,
    "checkpointing_steps": 1000,
    "checkpoints_total_limit": None,
    "resume": None,
    "validation_steps": 100,
    "prediction_type": None,  # None = the scheduler's (epsilon for SD-1.x); "v_prediction" to switch
    "report_to": "tensorboard",
    "dataloader_num_workers": 0,
    "init_checkpoint": None,
    "export": True,  # write the reference-layout and posevid exports at the end
    "export_every_checkpoint": False,
    "run_name": None,
    "revision": None,
    "train_data": {},
    "validation_data": {},
}

RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fyp-temporal": {
        "learning_rate": 3e-5,
        "max_train_steps": 5000,
        "trainable_modules": ["attn1.to_q", "attn2.to_q", "attn_temp", "conv_temporal"],
        "temporal_init": "checkpoint",  # "fresh": SD + pose_encoder.pth, temporal layers at init (the reference's start)
        "train_data": {
            "data_dir": None,
            "n_sample_frames": 8,
            "width": 512,
            "height": 512,
            "sample_start_idx": 0,
            "sample_frame_rate": 4,
            "short_clips": "fallback",
        },
        "validation_data": {
            "prompts": ["A Iron man on the beach"],
            "video_length": 8,
            "width": 512,
            "height": 512,
            "num_inference_steps": 50,
            "guidance_scale": 12.5,
            "skeleton_path": None,
            "frame_skeleton_stride": 5,
        },
    },
    "fyp-pose-encoder": {
        "learning_rate": 1e-5,
        "max_train_steps": 100000,
        "uncond_rate": 0.05,  # probability of dropping the text (caption -> "")
        "pose_dropout_rate": 0.0,  # probability of dropping the pose (features skipped)
        "init_pose_encoder": None,
        "train_data": {"data_dir": None, "width": 512, "height": 512},
        "validation_data": {"prompts": [], "num_inference_steps": 20, "guidance_scale": 7.5},
    },
    "dreampose-base": {
        "learning_rate": 5e-6,
        "num_train_epochs": 300,
        "dropout_rate": 0.15,
        "image_range": "-1_1",
        "pose_range": "2uv-1",
        "train_data": {"data_dir": None, "width": 512, "height": 640},
        "validation_data": {"num_inference_steps": 20, "s1": 8.0, "s2": 3.0},
    },
    "dreampose-subject": {
        "learning_rate": 1e-5,
        "num_train_epochs": 500,
        "dropout_rate": 0.0,
        "image_range": "0_1",
        "pose_range": "uv",
        "fix_subject_target": False,
        "train_data": {"data_dir": None, "width": 512, "height": 640},
        "validation_data": {"num_inference_steps": 20, "s1": 8.0, "s2": 3.0},
    },
    "dreampose-vae": {
        "learning_rate": 5e-5,
        "num_train_epochs": 1500,
        "train_batch_size": 4,
        "train_data": {"data_dir": None, "width": 512, "height": 640},
        "validation_data": {},
    },
}

RECIPES = tuple(RECIPE_DEFAULTS)

# reference spelling -> canonical key
ALIASES = {
    "pretrained_model_name_or_path": "pretrained_model_path",
    "resume_from_checkpoint": "resume",
    "custom_chkpt": "init_checkpoint",
    "instance_data_dir": "train_data.data_dir",
    "data": "train_data.data_dir",
}


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    dotted = ALIASES.get(dotted, dotted)
    parts = dotted.split(".")
    node = cfg
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise InputError(f"config key {dotted!r}: {p!r} is not a group", hint="check the --set key")
    node[parts[-1]] = value


def _nested(over: dict[str, Any]) -> dict[str, Any]:
    """Reference aliases and dotted keys (``train_data.data_dir: x``) -> a plain nested mapping."""
    out: dict[str, Any] = {}
    for k, v in over.items():
        k = ALIASES.get(k, k)
        v = _nested(v) if isinstance(v, dict) else v
        parts = k.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(v, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = OmegaConf.to_container(OmegaConf.merge(node[parts[-1]], v))
        else:
            node[parts[-1]] = v
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: OmegaConf's merge (mappings merged recursively, everything else replaced)."""
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(_nested(over))), resolve=False)


def build_config(
    recipe: str, *, config_file: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None, sets: list[str] | None = None
) -> dict[str, Any]:
    """Merge defaults, YAML, flags and ``key=value`` strings into one plain dict."""
    if recipe not in RECIPE_DEFAULTS:
        raise InputError(f"unknown training recipe {recipe!r}", hint=f"use one of {', '.join(RECIPES)}")
    cfg = _merge(COMMON, RECIPE_DEFAULTS[recipe])
    if config_file:
        path = Path(config_file)
        loaded = read_yaml(path, missing_hint="pass --config with a YAML file such as configs/pose_train.yaml")
        if not isinstance(loaded, dict):
            raise InputError(f"config {path} is not a mapping of keys", hint="see configs/pose_train.yaml")
        td = loaded.get("train_data") or {}
        if isinstance(td, dict) and "video_path" in td and "data_dir" not in td:
            td = dict(td)
            td["data_dir"] = td.pop("video_path")
            loaded = {**loaded, "train_data": td}
        cfg = _merge(cfg, loaded)
    for k, v in (overrides or {}).items():
        if v is not None:
            _set(cfg, k, v)
    for item in sets or []:
        if "=" not in item:
            raise InputError(f"--set {item!r} is not key=value", hint="e.g. --set train_data.n_sample_frames=4")
        key, value = item.split("=", 1)
        _set(cfg, key.strip(), parse_value(value))
    cfg["recipe"] = recipe
    if isinstance(cfg.get("trainable_modules"), str):
        cfg["trainable_modules"] = [s.strip() for s in cfg["trainable_modules"].split(",") if s.strip()]
    if cfg.get("mixed_precision") in (None, "none", False):
        cfg["mixed_precision"] = "no"
    if cfg["mixed_precision"] not in ("no", "fp16", "bf16"):
        raise InputError(f"mixed_precision {cfg['mixed_precision']!r} is not one of no, fp16, bf16", hint="fix --mixed-precision")
    if not cfg.get("pretrained_model_path"):
        raise InputError(f"no base model for {recipe}", hint="pass --pretrained-model PATH (or pretrained_model_path in the config)")
    if not cfg["train_data"].get("data_dir"):
        raise InputError(f"no training data for {recipe}", hint="pass --data DATA (a folder written by 'posevid prepare')")
    if cfg.get("max_train_steps") is None and cfg.get("num_train_epochs") is None:
        raise InputError("neither max_train_steps nor num_train_epochs is set", hint="pass --max-train-steps N")
    return cfg
