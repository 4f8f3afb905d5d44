"""``posevid app``: the local web app (pose extraction, text -> video, image -> video, history)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from posevid.app.server import AppConfig  # gradio-free
from posevid.commands import _flags
from posevid.errors import InputError
from posevid.tasks.backbones import BACKBONES

D = AppConfig()  # the defaults, defined once

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, as opposed to a local path


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "app",
        help="start the web app (Gradio) in your browser",
        description="Start the posevid web app: extract poses, generate videos from text (Follow-Your-Pose) or from an image ("
        + ", ".join(b.title for b in BACKBONES.values())
        + "), and browse/re-run this session's results. Works offline; serves on 127.0.0.1 by default.",
        formatter_class=formatter_class,
    )
    p.add_argument("--model", metavar="FYP_DIR", default=D.model,
                   help="Follow-Your-Pose release folder (or hub id) for the text -> video tab; loaded once, on first use")
    add_backbone_arguments(p)
    p.add_argument("--preload", action="store_true", default=D.preload, help="load the models at start-up instead of on the first request")
    p.add_argument("--host", default=D.host,
                   help="address to listen on; 0.0.0.0 exposes the app to your network (there is no login)")
    p.add_argument("--port", type=int, default=D.port, help="port to listen on")
    p.add_argument("--output-dir", default=D.output_dir, type=Path,
                   help="folder for uploads and results (a sub-folder per session and request); the only folder the app serves files from")
    p.add_argument("--max-upload-mb", type=float, default=D.max_upload_mb, help="largest accepted upload, in MB")
    p.add_argument("--concurrency", type=int, default=D.concurrency,
                   help="how many jobs run at the same time; the others wait in a first-come first-served queue")
    _flags.add_device(p, default=D.device, what="where the models run")
    from posevid.tasks.animate import AnimateSettings
    from posevid.tasks.generate import GenerateSettings

    dtypes = ", ".join(f"{b.accelerator_dtype} on a GPU for {b.name}" for b in BACKBONES.values())
    _flags.add_dtype(p, default=D.dtype, what=f"precision of the models; unset: each task's own (text -> video {GenerateSettings.dtype}, "
                     f"image -> video {AnimateSettings.dtype} = {dtypes}, fp32 on the CPU, as posevid animate)")
    p.add_argument("--examples-dir", default=D.examples_dir, type=Path, metavar="DIR",
                   help="folder of example videos shown in the pose tab; none = ./examples when it exists")
    p.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> AppConfig:
    """Parsed flags -> the app's config, checked (ranges, model paths, the device) before anything starts."""
    from posevid.utils.devices import pick_device

    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if not 0 <= args.port < 65536:
        raise InputError(f"--port must be between 0 and 65535, got {args.port}")
    models, options = backbone_config(args)
    for flag, value in (("--model", args.model), *paths_given(args)):
        if value and not Path(value).expanduser().exists() and not (flag.endswith("-model") and _HUB_ID.match(value)):
            raise InputError(f"{flag}: not found: {value}", hint="pass the path of the downloaded model (its folder, or the weights file)")
    pick_device(args.device)  # a device that is not there fails here, at start-up; the tasks resolve "auto" themselves
    return AppConfig(
        model=args.model, animate_models=models, animate_options=options,
        host=args.host, port=args.port, output_dir=str(args.output_dir),
        max_upload_mb=args.max_upload_mb, concurrency=args.concurrency, device=args.device, dtype=args.dtype,
        examples_dir=str(args.examples_dir) if args.examples_dir else None, preload=args.preload,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from posevid.utils.extras import require

    require("gradio", "posevid app")
    from posevid.app.server import launch

    launch(collect_settings(args), block=True)
    return 0


def _model_dest(name: str) -> str:
    return f"{name.replace('-', '_')}_model"


def _startup_options(backbone):
    """The backbone's options that ``posevid app`` sets once at start-up (``Flag.app``): (field, flag, app flag)."""
    return [(f.name, f.metadata["flag"], f.metadata["flag"].app) for f in backbone.fields() if f.metadata["flag"].app]


def add_backbone_arguments(parser) -> None:
    """Per image -> video backbone (the registry): ``--NAME-model`` and its start-up options (``--dreampose-epoch`` ...)."""
    for b in BACKBONES.values():
        parser.add_argument(f"--{b.name}-model", dest=_model_dest(b.name), metavar="DIR", default=D.animate_models.get(b.name),
                            help=f"{b.title} for the image -> video tab: {b.model_text()}; loaded once, on first use")  # fmt: skip
        for name, flag, app_flag in _startup_options(b):
            default = b.default_of(name)
            shown = None if default is None or isinstance(default, bool) else str(default)
            _flags.add_backbone_option(parser, f"{b.name}:{name}", flag, names=(app_flag,), default_text=shown,
                                       when=f"for the image -> video tab ({b.title}): ")  # fmt: skip


def backbone_config(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, dict]]:
    """``AppConfig.animate_models`` and ``animate_options`` from the flags of :func:`add_backbone_arguments`."""
    models = {b.name: getattr(args, _model_dest(b.name)) for b in BACKBONES.values() if getattr(args, _model_dest(b.name))}
    options = {}
    for b in BACKBONES.values():
        given = {name: getattr(args, f"{b.name}:{name}") for name, _, _ in _startup_options(b) if hasattr(args, f"{b.name}:{name}")}
        if given:
            options[b.name] = {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}
    return models, options


def paths_given(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(flag, value) of every model folder and start-up file given (checked before the app starts)."""
    out = [(f"--{b.name}-model", getattr(args, _model_dest(b.name))) for b in BACKBONES.values()]
    for b in BACKBONES.values():
        for name, flag, app_flag in _startup_options(b):
            if flag.metavar == "PATH":
                out.append((app_flag, str(getattr(args, f"{b.name}:{name}", "") or "")))
    return out
