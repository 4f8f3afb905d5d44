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
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from posevid.errors import InputError

HOW_TO_GET_WEIGHTS = (
    "download the DreamPose demo checkpoints (demo/custom-chkpts: unet_epoch_499.pth, adapter_499.pth, checkpoint-499/, vae_1499.pth) "
    "and pass --model DIR; for a smoke test: posevid make-tiny --kind dreampose tiny_dp/"
)


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
    )
    g.add_argument("--densepose-weights", metavar="PATH", help="with --driving-video: DensePose R-CNN weights (.pkl or .safetensors)")
    g.add_argument("--densepose-person", choices=("top-score", "largest", "track"), default="top-score",
                   help="with --driving-video: which person to follow (see posevid densepose --person)")
    g.add_argument("--pose-format", choices=("auto", "npy", "uv", "iuv"), default="auto", help="how to read the pose folder (see docs)")
    g.add_argument("--allow-gaps", action="store_true", help="accept missing frame numbers (the window then uses the --window rule there)")
    g.add_argument(
        "--window",
        choices=("reference", "nearest"),
        default="reference",
        help="missing neighbour in the t-2..t+2 window: centre pose (reference) or nearest existing frame",
    )
    g.add_argument(
        "--frames", metavar="A:B", help="generate only these frames: a slice A:B[:S] of the sorted frame list, or one frame number"
    )
    g.add_argument("--densepose-size", metavar="WxH", help="image size for a dump .pkl whose images are not at hand")
    g.add_argument("--densepose-images", metavar="DIR", help="folder of the images a dump .pkl was made from (their size sets the canvas)")
    g.add_argument(
        "--densepose-empty", choices=("error", "zeros"), default="error", help="dump frames without a person: stop, or use an empty pose"
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
    m.add_argument(
        "--scheduler",
        "--sampler",
        dest="scheduler",
        default="pndm",
        type=str.lower,
        help="pndm (reference), ddim, dpm++, euler, euler-a, unipc, lms, ddpm",
    )
    m.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where to run (auto: cuda > mps > cpu)")
    m.add_argument(
        "--dtype",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="precision (auto: fp16 on GPU, fp32 on CPU; CLIP stays fp32)",
    )

    s = p.add_argument_group("sampling")
    s.add_argument("--s1", type=float, default=8.0, help="image guidance scale (README demo 8; test.py default 0.5)")
    s.add_argument("--s2", type=float, default=3.0, help="pose guidance scale (README demo 3; test.py default 0.5)")
    s.add_argument("--steps", "--n_steps", dest="steps", type=int, default=100, help="denoising steps")
    s.add_argument("--seed", type=int, default=0, help="seed of the CPU generator for every random draw")
    s.add_argument(
        "--frame-batch",
        type=int,
        default=1,
        metavar="K",
        help="frames per UNet call (same frames with the deterministic schedulers; faster on GPUs, memory grows with K)",
    )

    o = p.add_argument_group("outputs")
    o.add_argument("--out", metavar="OUT.mp4", help="output video; also writes OUT.gif, OUT.json and OUT_frames/frame_N.png")
    o.add_argument(
        "--output_dir", "--output-dir", dest="output_dir", metavar="DIR", help="test.py layout: DIR/pred_#N.png plus DIR/dreampose.mp4"
    )
    o.add_argument("--fps", type=float, default=30.0, help="frame rate of the mp4/gif")
    o.add_argument(
        "--no-stretch", action="store_true", help="write the decoder output as is, not the reference's per-frame min-max stretch"
    )
    o.add_argument("--no-gif", action="store_true", help="do not write the GIF")
    o.add_argument("--quiet", action="store_true", help="no progress bars")

    legacy = p.add_argument_group("test.py compatibility")
    legacy.add_argument("--j", type=int, help=argparse.SUPPRESS)
    legacy.add_argument("--min_j", type=int, help="first index into the sorted frame list (test.py)")
    legacy.add_argument("--max_j", type=int, help="end index into the sorted frame list (test.py; -1 = to the end)")
    for flag in ("--strength", "--iters", "--batch_size", "--test_poses", "--pose_path"):
        legacy.add_argument(flag, help=argparse.SUPPRESS)  # accepted and ignored, as in test.py
    p.set_defaults(func=run)


def _note(msg: str) -> None:
    print(f"posevid animate: note: {msg}", file=sys.stderr)


def _pick_device(name: str) -> str:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but no CUDA GPU is available", hint="use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps was asked but Apple MPS is not available", hint="use --device cpu or auto")
    return name


def _frame_spec(args) -> str | None:
    if args.frames:
        return args.frames
    if args.j is not None and args.j >= 0:
        return f"{args.j}:{args.j + 1}"
    if args.min_j is not None or (args.max_j is not None and args.max_j != -1):
        end = "" if args.max_j in (None, -1) else str(args.max_j)
        return f"{args.min_j or 0}:{end}"
    return None


def _outputs(args) -> dict[str, Path | str]:
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() != ".mp4":
            raise InputError(f"--out {out} must end in .mp4", hint="e.g. --out result.mp4")
        return {"video": out, "frames_dir": out.with_name(out.stem + "_frames"), "png": "frame_{n}.png"}
    if args.output_dir:
        d = Path(args.output_dir)
        return {"video": d / "dreampose.mp4", "frames_dir": d, "png": "pred_#{n}.png"}
    raise InputError("no output given", hint="pass --out OUT.mp4 (or --output_dir DIR as in test.py)")


def run(args) -> int:
    import numpy as np
    import torch

    from posevid.data.densepose import DensePoseSequence, parse_size, resolve_pose_source
    from posevid.models.dreampose import load_vae_weights  # noqa: F401  (import early: fail fast on a broken install)
    from posevid.pipelines.dreampose import SCHEDULERS, DreamPosePipeline
    from posevid.utils.outputs import write_sidecar
    from posevid.video import VideoWriter, write_gif

    # ---- cheap checks first: nothing is loaded before the inputs make sense
    if not args.image:
        raise InputError("no reference image given", hint="pass --image IMG (or --key_frame_path)")
    if not Path(args.image).is_file():
        raise InputError(f"reference image not found: {args.image}", hint="check --image")
    if args.densepose and args.driving_video:
        raise InputError("give either --densepose or --driving-video, not both")
    if not args.densepose and not args.driving_video:
        raise InputError("no pose input given", hint="pass --densepose DIR_OR_PKL (or --pose_folder) or --driving-video VIDEO")
    if args.driving_video and not Path(args.driving_video).is_file():
        raise InputError(f"driving video not found: {args.driving_video}", hint="check --driving-video")
    if not args.model:
        raise InputError("no model given", hint=HOW_TO_GET_WEIGHTS)
    if args.custom_vae and not Path(args.custom_vae).is_file():
        raise InputError(f"custom VAE not found: {args.custom_vae}", hint="check --custom-vae (e.g. demo/custom-chkpts/vae_1499.pth)")
    if args.scheduler.replace("_", "-") not in SCHEDULERS + ("dpmpp",):
        raise InputError(f"unknown scheduler {args.scheduler!r}", hint=f"use one of {', '.join(SCHEDULERS)}")
    if args.steps < 1:
        raise InputError(f"--steps {args.steps} must be at least 1")
    outs = _outputs(args)
    device = _pick_device(args.device)
    dtype_name = args.dtype if args.dtype != "auto" else ("fp32" if device == "cpu" else "fp16")
    if device == "cpu" and dtype_name == "fp16":
        raise InputError("--dtype fp16 is not supported on CPU", hint="use --dtype fp32 or bf16 on CPU")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]

    with tempfile.TemporaryDirectory(prefix="posevid-dp-") as tmp:
        work = Path(args.densepose_out) if args.densepose_out else Path(tmp) / "poses"
        size = parse_size(args.densepose_size) if args.densepose_size else None
        if args.driving_video:  # DensePose extracted once per video and cached; the pipeline resizes it to the image size
            from posevid.densepose.extract import densepose_folder_for

            pose_dir = densepose_folder_for(
                args.driving_video, weights=args.densepose_weights, person=args.densepose_person, device=device
            )
        else:
            pose_dir = resolve_pose_source(
                args.densepose, work, image_size=size, image_root=args.densepose_images, empty=args.densepose_empty
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seq = DensePoseSequence.from_folder(pose_dir, pose_format=args.pose_format, window=args.window, allow_gaps=args.allow_gaps)
        for w in caught:
            _note(str(w.message))
        frames = seq.select(_frame_spec(args))

        t_load = time.time()
        pipe = DreamPosePipeline.from_pretrained(
            args.model, epoch=args.epoch, custom_vae=args.custom_vae, clip=args.clip, scheduler=args.scheduler, device=device, dtype=dtype
        )
        pil, notes = pipe.prepare_image(args.image)
        for n in notes:
            _note(n)
        load_s = time.time() - t_load

        stretch = not args.no_stretch
        frames_dir = Path(outs["frames_dir"])
        stage = Path(tempfile.mkdtemp(prefix=".posevid-frames-", dir=_existing_parent(frames_dir)))
        video = VideoWriter(outs["video"], fps=args.fps)
        kept: list[np.ndarray] = []
        from PIL import Image

        def on_frame(i: int, number: int, raw, stretched) -> None:
            frame = stretched if stretch else raw
            Image.fromarray(frame).save(stage / outs["png"].format(n=number))
            video.write(frame)
            if not args.no_gif:
                kept.append(frame)

        t_gen = time.time()
        try:
            generate = pipe
            if args.frame_batch != 1:
                from functools import partial

                from posevid.pipelines.dreampose_batch import generate_batched

                generate = partial(generate_batched, pipe, batch_size=args.frame_batch)
            result = generate(
                pil,
                seq,
                frames=frames,
                s1=args.s1,
                s2=args.s2,
                num_inference_steps=args.steps,
                seed=args.seed,
                return_frames=False,
                frame_callback=on_frame,
                show_progress=not args.quiet,
            )
            gen_s = time.time() - t_gen
            video_path = video.close()
            gif_path = write_gif(Path(outs["video"]).with_suffix(".gif"), kept, fps=args.fps) if not args.no_gif else None
            frames_dir.mkdir(parents=True, exist_ok=True)
            pngs = []
            for f in sorted(stage.iterdir()):
                shutil.move(str(f), frames_dir / f.name)
                pngs.append(f.name)
        except BaseException:
            video.abort()
            raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    settings = {
        "method": "dreampose",
        "image": str(args.image),
        "densepose": str(args.densepose) if args.densepose else None,
        "driving_video": str(args.driving_video) if args.driving_video else None,
        "pose_format": seq.pose_format,
        "window": args.window,
        "frames": result.frame_numbers,
        "windows": {str(n): seq.window_of(n) for n in result.frame_numbers},
        "model": getattr(pipe, "source", {"folder": str(args.model)}),
        "scheduler": args.scheduler,
        "frame_batch": args.frame_batch,
        "steps": args.steps,
        "s1_image_guidance": args.s1,
        "s2_pose_guidance": args.s2,
        "seed": args.seed,
        "device": device,
        "dtype": dtype_name,
        "size_hw": list(pipe.image_size),
        "minmax_stretch": stretch,
        "fps": args.fps,
        "video": Path(video_path).name,
        "gif": Path(gif_path).name if gif_path else None,
        "frames_dir": str(frames_dir),
        "frame_files": pngs,
        "notes": notes,
        "seconds": {"load": round(load_s, 3), "generate": round(gen_s, 3), "per_frame": round(gen_s / max(1, len(pngs)), 3)},
    }
    write_sidecar(video_path, settings, kind="animate")
    print(f"wrote {video_path} ({len(pngs)} frames, {pipe.image_size[1]}x{pipe.image_size[0]}) and {len(pngs)} PNGs in {frames_dir}")
    return 0


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(tempfile.gettempdir())
