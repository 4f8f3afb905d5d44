"""``posevid animate``: image + pose -> video with a chosen backbone (``--backbone``, DreamPose by default).

Two spellings give the same pixels with DreamPose:

* ``posevid animate --image key_frame.png --densepose poses/ --out out.mp4 --model demo/custom-chkpts --epoch 499
  --custom-vae demo/custom-chkpts/vae_1499.pth --s1 8 --s2 3 --steps 100`` writes ``out.mp4``, ``out.gif``,
  ``out.json`` (settings sidecar) and ``out_frames/frame_N.png``;
* the reference ``test.py`` spelling ``--epoch 499 --folder demo/custom-chkpts --pose_folder demo/sample/poses
  --key_frame_path demo/sample/key_frame.png --s1 8 --s2 3 --n_steps 100 --output_dir results
  --custom_vae demo/custom-chkpts/vae_1499.pth`` writes ``results/pred_#N.png`` like test.py, plus
  ``results/dreampose.mp4/.gif/.json``.

The flags common to every backbone are defined here; each backbone's own flags come from its registration
(:mod:`posevid.tasks.backbones`), a flag several backbones take is defined once (its help lists each one's default),
and a flag of another backbone than the chosen one is a one-line error. Inputs are checked before the model is
loaded, and nothing is written unless every frame was generated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from posevid.commands import _flags
from posevid.tasks.animate import COMMON, AnimateSettings, settings_from_values
from posevid.tasks.backbones import BACKBONES, defaults_text, owners

D = AnimateSettings()  # the common defaults, defined once in the task


def register(subparsers, formatter_class) -> None:
    names = ", ".join(BACKBONES)
    p = subparsers.add_parser(
        "animate",
        help=f"image + pose -> video ({names})",
        description="Animate the person in --image with the chosen --backbone: "
        + "; ".join(f"{b.name}: {b.summary}" for b in BACKBONES.values())
        + ". Reference-compatible: DreamPose's test.py flags (--folder --epoch --pose_folder --key_frame_path --n_steps "
        "--output_dir --custom_vae) work too.",
        formatter_class=formatter_class,
    )
    g = p.add_argument_group("inputs")
    g.add_argument("--backbone", default=D.backbone, metavar="{" + ",".join(BACKBONES) + "}",
                   help=f"the image + pose -> video model (default: {D.backbone})")  # fmt: skip
    g.add_argument(
        "--image", "--key_frame_path", dest="image", metavar="IMG", help="reference image of the person (PNG/JPEG; RGBA/grey converted)"
    )
    g.add_argument("--driving-video", metavar="VIDEO",
                   help="a video of someone moving (dreampose: instead of --densepose, DensePose is extracted from it first, cached; "
                        "see posevid densepose)")  # fmt: skip

    m = p.add_argument_group("model")
    m.add_argument("--model", "--folder", dest="model", metavar="DIR",
                   help="the backbone's weights: " + "; ".join(f"{b.name}: {b.model_text()}" for b in BACKBONES.values()))  # fmt: skip
    _flags.add_device(m, default=D.device)
    dtypes = ", ".join(f"{b.accelerator_dtype} on a GPU for {b.name}" for b in BACKBONES.values())
    _flags.add_dtype(m, default=D.dtype, extra=("auto",), what=f"precision; auto = {dtypes}, fp32 on the CPU")
    _flags.add_seed(m, default=D.seed, help="seed of the CPU generator for every random draw")

    o = p.add_argument_group("outputs")
    o.add_argument(
        "--out",
        metavar="OUT.mp4",
        help=f"output video; also writes OUT.gif, OUT.json and OUT_frames/frame_N.png (default: {D.default_dir}/<image name>.mp4)",
    )
    o.add_argument("--output_dir", "--output-dir", dest="output_dir", metavar="DIR",
                   help="test.py layout: DIR/pred_#N.png plus DIR/<backbone>.mp4")  # fmt: skip
    o.add_argument("--fps", type=float, default=D.fps,
                   help="frame rate of the mp4/gif (also the rate a backbone resamples the driving video to, where it does)")
    o.add_argument("--no-gif", action="store_true", help="do not write the GIF")
    _flags.add_quiet(o)
    _flags.add_overwrite(o)
    add_backbone_flags(p)
    p.set_defaults(func=run)


def add_backbone_flags(parser) -> None:
    """Every backbone's options as flags: one group per backbone, and one for the options several backbones take."""
    shared = {}  # option name -> flag names (the union of the backbones' spellings)
    for b in BACKBONES.values():
        for f in b.fields():
            if len(owners(f.name)) > 1:
                shared[f.name] = tuple(dict.fromkeys((*shared.get(f.name, ()), *f.metadata["flag"].names)))
    if shared:
        group = parser.add_argument_group("options of several backbones (each backbone's default)")
        for name, spellings in shared.items():
            _flags.add_backbone_option(group, name, owners(name)[0].flag(name), names=spellings, default_text=defaults_text(name))
    for b in BACKBONES.values():
        group = parser.add_argument_group(f"{b.title} (--backbone {b.name})")
        for f in b.fields():
            if f.name not in shared:
                shown = None if f.default in (None, "") or isinstance(f.default, bool) else str(f.default)
                _flags.add_backbone_option(group, f.name, f.metadata["flag"], default_text=shown)
        for dest, flag in b.extra_flags:
            _flags.add_backbone_option(group, dest, flag)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``posevid animate ARGV`` parsed, not run (a batch job's line): a bad flag or value, an unknown backbone or an
    option of another backbone is a one-line InputError."""
    from posevid.commands.fields import command_parser

    args = command_parser("animate").parse_args(list(argv))
    collect_settings(args)
    return args


def collect_settings(args: argparse.Namespace) -> AnimateSettings:
    """Parsed flags -> the task's settings (a batch runner calls this, then ``tasks.animate.animate``)."""
    values = {k: v for k, v in vars(args).items() if k in (*COMMON, "backbone") or owners(k)}
    values["gif"] = not args.no_gif
    return settings_from_values(values)


def _note(msg: str) -> None:
    print(f"posevid animate: note: {msg}", file=sys.stderr)


def run(args) -> int:
    from posevid.tasks.animate import animate

    r = animate(collect_settings(args), note=_note)
    h, w = r.size_hw
    written = ", ".join(str(p) for p in r.files)
    print(f"wrote {written} ({len(r.frame_files)} frames, {w}x{h}) and {len(r.frame_files)} PNGs in {r.frames_dir}")
    return 0
