"""``posevid animate``: image + DensePose -> video with DreamPose.

Two spellings give the same pixels:

* ``posevid animate --image key_frame.png --densepose poses/ --out out.mp4 --model demo/custom-chkpts --epoch 499
  --custom-vae demo/custom-chkpts/vae_1499.pth --s1 8 --s2 3 --steps 100`` writes ``out.mp4``, ``out.gif``,
  ``out.json`` (settings sidecar) and ``out_frames/frame_N.png``;
* the reference ``test.py`` spelling ``--epoch 499 --folder demo/custom-chkpts --pose_folder demo/sample/poses
  --key_frame_path demo/sample/key_frame.png --s1 8 --s2 3 --n_steps 100 --output_dir results
  --custom_vae demo/custom-chkpts/vae_1499.pth`` writes ``results/pred_#N.png`` like test.py, plus
  ``results/dreampose.mp4/.gif/.json``.

PNGs and video carry the reference's per-frame min-max stretch by default (what test.py writes);
``--no-stretch`` keeps the decoder output as is. Inputs are checked before the model is loaded, and nothing
is written unless every frame was generated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from posevid.commands import _flags
from posevid.commands.densepose import add_model_arguments
from posevid.tasks.animate import AnimateSettings

D = AnimateSettings()  # the defaults, defined once in the task

def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "animate",
        help="image + DensePose -> video (DreamPose)",
        description=(
            "Animate the person in --image with the DensePose sequence --densepose (a folder of frame_N_densepose.npy, "
            "UV/IUV images, or a detectron2 apply_net dump .pkl). Reference-compatible: the test.py flags "
            "(--folder --epoch --pose_folder --key_frame_path --n_steps --output_dir --custom_vae) work too."
        ),
        formatter_class=formatter_class,
    )
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--image", "--key_frame_path", dest="image", metavar="IMG", help="reference image of the person (PNG/JPEG; RGBA/grey converted)"
    )
    g.add_argument(
        "--densepose",
        "--pose_folder",
        dest="densepose",
        metavar="DIR_OR_PKL",
        help="folder of frame_N_densepose.npy (reference format), UV/IUV images, or an apply_net dump .pkl",
    )
    g.add_argument(
        "--driving-video", metavar="VIDEO",
        help="instead of --densepose: a video of someone moving; DensePose is extracted from it first (cached, see posevid densepose)",
    )  # fmt: skip
    # posevid densepose's own --weights, --person and --short-side, as --densepose-*: one definition of each flag and default
    add_model_arguments(g, prefix="densepose-", when="with --driving-video: ", names=("weights", "person", "short_side"), defaults=D)
    g.add_argument("--pose-format", choices=("auto", "npy", "uv", "iuv"), default=D.pose_format, help="how to read the pose folder")
    g.add_argument("--allow-gaps", action="store_true", help="accept missing frame numbers (the window then uses the --window rule there)")
    g.add_argument(
        "--window",
        choices=("reference", "nearest"),
        default=D.window,
        help="missing neighbour in the t-2..t+2 window: centre pose (reference) or nearest existing frame",
    )
    g.add_argument(
        "--frames", metavar="A:B", help="generate only these frames: a slice A:B[:S] of the sorted frame list, or one frame number"
    )
    g.add_argument("--densepose-size", metavar="WxH", help="image size for a dump .pkl whose images are not at hand")
    g.add_argument("--densepose-images", metavar="DIR", help="folder of the images a dump .pkl was made from (their size sets the canvas)")
    g.add_argument(
        "--densepose-empty", choices=("error", "zeros"), default=D.densepose_empty, help="frames with nobody: stop or use an empty pose"
    )
    g.add_argument("--densepose-out", metavar="DIR", help="keep the .npy files converted from a dump .pkl in DIR")

    m = p.add_argument_group("model")
    m.add_argument(
        "--model", "--folder", dest="model", metavar="DIR", help="DreamPose release folder (unet_epoch_N.pth ...) or posevid folder"
    )
    m.add_argument("--epoch", type=int, help="checkpoint epoch N of unet_epoch_N.pth / adapter_N.pth / checkpoint-N (needed if several)")
    m.add_argument("--custom-vae", "--custom_vae", dest="custom_vae", metavar="PATH", help="finetuned VAE state dict (e.g. vae_1499.pth)")
    m.add_argument(
        "--clip",
        metavar="ID_OR_DIR",
        help="CLIP ViT-B/32 image encoder, hub id or folder; unset: MODEL/clip if present, else openai/clip-vit-base-patch32",
    )
    from posevid.pipelines.schedulers import DREAMPOSE_SCHEDULERS

    _flags.add_scheduler(m, choices=DREAMPOSE_SCHEDULERS, default=D.scheduler, aliases=("--sampler",))
    _flags.add_device(m, default=D.device)
    _flags.add_dtype(m, default=D.dtype, extra=("auto",), what="precision; auto = fp16 on a GPU, fp32 on the CPU; CLIP stays fp32")

    s = p.add_argument_group("sampling")
    s.add_argument("--s1", type=float, default=D.s1, help="image guidance scale (README demo 8; test.py default 0.5)")
    s.add_argument("--s2", type=float, default=D.s2, help="pose guidance scale (README demo 3; test.py default 0.5)")
    s.add_argument("--steps", "--n_steps", dest="steps", type=int, default=D.steps, help="denoising steps")
    _flags.add_seed(s, default=D.seed, help="seed of the CPU generator for every random draw")
    s.add_argument(
        "--frame-batch",
        type=int,
        default=D.frame_batch,
        metavar="K",
        help="frames per UNet call (same frames with the deterministic schedulers; faster on GPUs, memory grows with K)",
    )

    o = p.add_argument_group("outputs")
    o.add_argument(
        "--out",
        metavar="OUT.mp4",
        help=f"output video; also writes OUT.gif, OUT.json and OUT_frames/frame_N.png (default: {D.default_dir}/<image name>.mp4)",
    )
    o.add_argument(
        "--output_dir", "--output-dir", dest="output_dir", metavar="DIR", help="test.py layout: DIR/pred_#N.png plus DIR/dreampose.mp4"
    )
    o.add_argument("--fps", type=float, default=D.fps, help="frame rate of the mp4/gif")
    o.add_argument(
        "--no-stretch", action="store_true", help="write the decoder output as is, not the reference's per-frame min-max stretch"
    )
    o.add_argument("--no-gif", action="store_true", help="do not write the GIF")
    _flags.add_quiet(o)
    _flags.add_overwrite(o)

    legacy = p.add_argument_group("test.py compatibility")
    legacy.add_argument("--j", type=int, help=argparse.SUPPRESS)
    legacy.add_argument("--min_j", type=int, help="first index into the sorted frame list (test.py)")
    legacy.add_argument("--max_j", type=int, help="end index into the sorted frame list (test.py; -1 = to the end)")
    for flag in ("--strength", "--iters", "--batch_size", "--test_poses", "--pose_path"):
        legacy.add_argument(flag, help=argparse.SUPPRESS)  # accepted and ignored, as in test.py
    p.set_defaults(func=run)


def _note(msg: str) -> None:
    print(f"posevid animate: note: {msg}", file=sys.stderr)


def _frame_spec(args) -> str | None:
    if args.frames:
        return args.frames
    if args.j is not None and args.j >= 0:
        return f"{args.j}:{args.j + 1}"
    if args.min_j is not None or (args.max_j is not None and args.max_j != -1):
        end = "" if args.max_j in (None, -1) else str(args.max_j)
        return f"{args.min_j or 0}:{end}"
    return None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``posevid animate ARGV`` parsed, not run (a batch job's line): a bad flag or value is a one-line InputError."""
    from posevid.commands.fields import command_parser

    return command_parser("animate").parse_args(list(argv))


def collect_settings(args: argparse.Namespace) -> AnimateSettings:
    """Parsed flags -> the task's settings (a batch runner calls this, then ``tasks.animate.animate``)."""
    return AnimateSettings(
        image=args.image, densepose=args.densepose, driving_video=args.driving_video,
        densepose_weights=str(args.densepose_weights) if args.densepose_weights else None,
        densepose_person=args.densepose_person, densepose_short_side=args.densepose_short_side, model=args.model, out=args.out,
        output_dir=args.output_dir,
        pose_format=args.pose_format, allow_gaps=args.allow_gaps, window=args.window, frames=_frame_spec(args),
        densepose_size=args.densepose_size, densepose_images=args.densepose_images, densepose_empty=args.densepose_empty,
        densepose_out=args.densepose_out, epoch=args.epoch, custom_vae=args.custom_vae, clip=args.clip, scheduler=args.scheduler,
        device=args.device, dtype=args.dtype, s1=args.s1, s2=args.s2, steps=args.steps, seed=args.seed, frame_batch=args.frame_batch,
        fps=args.fps, stretch=not args.no_stretch, gif=not args.no_gif, quiet=args.quiet,
    )  # fmt: skip


def run(args) -> int:
    from posevid.tasks.animate import animate

    r = animate(collect_settings(args), note=_note)
    h, w = r.size_hw
    written = ", ".join(str(p) for p in r.files)
    print(f"wrote {written} ({len(r.frame_files)} frames, {w}x{h}) and {len(r.frame_files)} PNGs in {r.frames_dir}")
    return 0
