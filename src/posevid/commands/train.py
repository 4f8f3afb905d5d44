"""``posevid train RECIPE``: FYP stage 1/2 and DreamPose base/subject/VAE training on one device.

For several processes use ``accelerate launch -m posevid.training RECIPE ...`` (same flags).
"""

from __future__ import annotations

import argparse


def register(subparsers, formatter_class) -> None:
    from posevid.training.cli import add_arguments

    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune (fyp-pose-encoder, fyp-temporal, dreampose-base, dreampose-subject, dreampose-vae)",
        description=__doc__,
        formatter_class=formatter_class,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posevid.training.cli import run as run_training

    return run_training(args)
