"""Command-line front end shared by ``posevid train`` and ``python -m posevid.training`` (for ``accelerate launch -m``).

Flags accept both spellings (``--output-dir`` and the reference's ``--output_dir``), so the original
DreamPose commands (``--pretrained_model_name_or_path --instance_data_dir --train_batch_size ...``) and the
FYP ``--config configs/pose_train.yaml`` both work unchanged.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from posevid.training.config import RECIPES

# (canonical config key, flag names, type, help)
FLAGS: list[tuple[str, tuple[str, ...], Any, str]] = [
    (
        "pretrained_model_path",
        ("--pretrained-model", "--pretrained_model_path", "--pretrained_model_name_or_path", "--model"),
        str,
        "base model: FYP release/posevid folder (fyp-*), SD-1.x or DreamPose folder (dreampose-*)",
    ),
    ("train_data.data_dir", ("--data", "--instance_data_dir"), str, "prepared data folder (written by 'posevid prepare')"),
    ("output_dir", ("--output-dir", "--output_dir"), str, "run folder: checkpoints, logs, samples, exports"),
    (
        "resume",
        ("--resume", "--resume_from_checkpoint"),
        str,
        "'latest' (newest complete checkpoint of the run folder) or a checkpoint-N path",
    ),
    ("seed", ("--seed",), int, "global seed: data order, noise and timesteps are derived from it"),
    ("train_batch_size", ("--train-batch-size", "--train_batch_size"), int, "samples per process per micro-step"),
    (
        "gradient_accumulation_steps",
        ("--gradient-accumulation-steps", "--gradient_accumulation_steps"),
        int,
        "micro-steps per optimizer step",
    ),
    ("max_train_steps", ("--max-train-steps", "--max_train_steps"), int, "optimizer steps (overrides --num-train-epochs)"),
    ("num_train_epochs", ("--num-train-epochs", "--num_train_epochs"), int, "epochs, used when max_train_steps is unset"),
    ("learning_rate", ("--learning-rate", "--learning_rate"), float, "AdamW learning rate"),
    ("lr_scheduler", ("--lr-scheduler", "--lr_scheduler"), str, "diffusers schedule: constant, constant_with_warmup, linear, cosine, ..."),
    ("lr_warmup_steps", ("--lr-warmup-steps", "--lr_warmup_steps"), int, "warm-up optimizer steps"),
    ("max_grad_norm", ("--max-grad-norm", "--max_grad_norm"), float, "gradient clipping norm (0 = off)"),
    ("mixed_precision", ("--mixed-precision", "--mixed_precision"), str, "no | fp16 | bf16 (frozen models in that dtype, autocast)"),
    ("checkpointing_steps", ("--checkpointing-steps", "--checkpointing_steps"), int, "save a resumable checkpoint every N optimizer steps"),
    ("checkpoints_total_limit", ("--checkpoints-total-limit", "--checkpoints_total_limit"), int, "keep only the last K checkpoints"),
    ("validation_steps", ("--validation-steps", "--validation_steps"), int, "write validation samples every N steps (0 = never)"),
    ("dropout_rate", ("--dropout-rate", "--dropout_rate"), float, "DreamPose condition dropout rate r (pose / image / both)"),
    (
        "init_checkpoint",
        ("--init-checkpoint", "--custom_chkpt"),
        str,
        "start weights: FYP trainable tensors, DreamPose unet_epoch_N.pth or vae_N.pth",
    ),
    ("report_to", ("--report-to", "--report_to"), str, "tensorboard | none"),
    ("run_name", ("--run-name", "--run_name"), str, "sub-folder name of the TensorBoard logs"),
    ("revision", ("--revision",), str, "accepted for the reference commands; ignored (the model folder is used as given)"),
    ("clip_model", ("--clip",), str, "DreamPose: CLIP ViT-B/32 folder or hub id (default: from the model folder)"),
]
BOOL_FLAGS: list[tuple[str, tuple[str, ...], str]] = [
    ("gradient_checkpointing", ("--gradient-checkpointing", "--gradient_checkpointing"), "trade compute for memory"),
    ("use_8bit_adam", ("--use-8bit-adam", "--use_8bit_adam"), "bitsandbytes AdamW8bit (clear error when not installed)"),
    ("use_ema", ("--use-ema", "--use_ema"), "keep an EMA of the trained weights (exported instead of the raw ones)"),
    ("scale_lr", ("--scale-lr", "--scale_lr"), "multiply the learning rate by batch x accumulation x processes"),
    ("fix_subject_target", ("--fix-subject-target",), "dreampose-subject: train on frame_j with its own pose (reference: frame_i)"),
]
IGNORED = ("--resolution", "--instance_prompt", "--enable_xformers_memory_efficient_attention")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", choices=RECIPES, help="what to train (see docs/training.md)")
    parser.add_argument("--config", help="YAML config (reference keys accepted, e.g. configs/pose_train.yaml)")
    for key, names, typ, help_ in FLAGS:
        parser.add_argument(*names, dest=key, type=typ, default=None, help=help_)
    for key, names, help_ in BOOL_FLAGS:
        parser.add_argument(*names, dest=key, action="store_const", const=True, default=None, help=help_)
    for name in IGNORED:
        parser.add_argument(name, dest=f"ignored_{name.strip('-')}", nargs="?", const=True, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train_data.n_sample_frames=4 (repeatable)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the merged config and exit")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from posevid.training.config import build_config

    overrides = {key: getattr(args, key) for key, *_ in FLAGS}
    overrides.update({key: getattr(args, key) for key, *_ in BOOL_FLAGS})
    for name in IGNORED:
        if getattr(args, f"ignored_{name.strip('-')}", None) is not None:
            logging.getLogger("posevid.training").info("%s is accepted for compatibility and ignored (sizes come from train_data)", name)
    return build_config(args.recipe, config_file=args.config, overrides=overrides, sets=args.sets)


def run(args: argparse.Namespace) -> int:
    import json

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(args)
    if args.print_config:
        print(json.dumps(cfg, indent=2, default=str))
        return 0
    if cfg.get("report_to") == "tensorboard":  # before any model is loaded
        from posevid.utils.extras import require

        require("tensorboard", "training with --report-to tensorboard (the default)")
    from posevid.training.engine import train

    result = train(args.recipe, cfg)
    print(f"trained {args.recipe}: {result['global_step']} steps on {result['world_size']} process(es); outputs in {result['output_dir']}")
    for p in result["exported"]:
        print(f"  exported {p}")
    return 0
