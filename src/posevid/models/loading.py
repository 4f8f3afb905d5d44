"""Load and save Follow-Your-Pose models: the official release layout, hub ids, and posevid's own format.

Accepted ``model`` values for :func:`load_followyourpose_components`:

* ``None`` — the official release from the hub: SD-1.4 (``CompVis/stable-diffusion-v1-4``) plus the FYP
  weights (``YueMafighting/FollowYourPose_v1``), cache first, one-line error when offline;
* a folder in the official layout, ``DIR/checkpoints/{stable-diffusion-v1-4, followyourpose_checkpoint-1000,
  pose_encoder.pth}`` or that ``checkpoints`` folder itself;
* a folder written by :func:`save_followyourpose` (``model_index.json``, safetensors per component);
* a :class:`FollowYourPoseLayout`, e.g. from :func:`layout_from_paths` (the SD and checkpoint folders a reference
  sampling config names).

Unlike the reference, every weight file is read pickle-free (:func:`load_state_dict_file`) and loaded
strictly: missing or unexpected keys are named in a :class:`CheckpointError`, never ignored. The reference
semantics are kept: the FYP ``pytorch_model.bin`` overrides every UNet tensor, and only without it does
the model fall back to SD's 2-D weights + ``pose_encoder.pth`` + identity-initialised temporal layers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from posevid.errors import CheckpointError, InputError, PosevidError, short_reason
from posevid.models.convert import (
    clip_text_match_model,
    clip_text_to_reference,
    fyp_posevid_to_reference,
    fyp_reference_to_posevid,
    pose_encoder_reference_to_posevid,
    split_fyp_state,
    vae_current_to_legacy_attention,
    vae_legacy_attention_to_current,
)
from posevid.models.fyp_unet import FollowYourPoseUNet, unet_config_from_reference
from posevid.models.layout import (  # where the files are (torch-free); this module loads them
    CHECKPOINT_WEIGHTS,
    FYP_CHECKPOINT_FOLDER,
    FYP_HUB_ID,
    HOW_TO_GET,
    POSE_ENCODER_FILE,
    POSEVID_FORMAT,
    SD_FOLDER,
    SD_HUB_ID,
    FollowYourPoseLayout,
    locate_followyourpose,
    read_model_json,
)
from posevid.utils.checkpoint import check_keys, check_shapes, load_into, load_state_dict_file

logger = logging.getLogger(__name__)


UNET_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
VAE_WEIGHTS = UNET_WEIGHTS
TEXT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


T = TypeVar("T")


def _weights_file(folder: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"no {what} weights in {folder} (expected {' or '.join(names)})", hint="the model folder is incomplete")



def _guard(what: str, path: Path, fn: Callable[[], T]) -> T:
    """Run a library loader; turn its multi-line exceptions into one-line CheckpointErrors."""
    try:
        return fn()
    except PosevidError:
        raise
    except Exception as exc:
        reason = short_reason(exc)
        raise CheckpointError(f"cannot load the {what} from {path}: {reason}", hint="the folder is incomplete or corrupt") from None


# ------------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------------
def load_followyourpose_components(
    model: str | os.PathLike | FollowYourPoseLayout | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    allow_untrained_temporal: bool = False,
) -> dict[str, Any]:
    """``dict(vae=, text_encoder=, tokenizer=, unet=, scheduler=)`` for a Follow-Your-Pose model (eval mode).

    ``model`` may also be a :class:`FollowYourPoseLayout` naming the SD folder and the checkpoint separately
    (what a reference config file does). Without the FYP checkpoint the temporal layers would be untrained
    (a half-downloaded release): that is an error unless ``allow_untrained_temporal=True``. The weight files
    read are listed by :func:`weights_read`.
    """
    layout = model if isinstance(model, FollowYourPoseLayout) else locate_followyourpose(model)
    unet = load_followyourpose_unet(layout, allow_untrained_temporal=allow_untrained_temporal)
    vae = load_vae(layout.sd_dir / "vae")
    text_encoder = load_clip_text_encoder(layout.sd_dir / "text_encoder")
    tokenizer = load_clip_tokenizer(layout.sd_dir / "tokenizer")
    scheduler = load_ddim_scheduler(layout.sd_dir / "scheduler")
    for module in (unet, vae, text_encoder):
        module.to(device=device)
        if next(module.parameters()).dtype != dtype:  # casting to the same dtype makes diffusers log a warning
            module.to(dtype=dtype)
        module.eval().requires_grad_(False)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)


WEIGHTS_READ_ATTR = "posevid_weights_read"


def _mark_read(module: T, *paths: Path) -> T:
    """Remember on the module which weight files filled it (for the sidecar: what exactly was run)."""
    setattr(module, WEIGHTS_READ_ATTR, [str(p) for p in paths])
    return module


def weights_read(components: Mapping[str, Any]) -> list[str]:
    """The weight files read to build ``components`` (UNet, VAE, text encoder), in loading order."""
    seen: list[str] = []
    for name in ("unet", "vae", "text_encoder"):
        for path in getattr(components.get(name), WEIGHTS_READ_ATTR, []):
            if path not in seen:
                seen.append(path)
    return seen


def load_followyourpose_unet(layout: FollowYourPoseLayout, *, allow_untrained_temporal: bool = False) -> FollowYourPoseUNet:
    """Build the video UNet from the SD UNet config and load its weights strictly (reference precedence).

    Without a FYP checkpoint the reference falls back to SD's 2-D weights + ``pose_encoder.pth`` with
    identity temporal layers; posevid does so only when ``allow_untrained_temporal`` is set (training
    starts there on purpose; for sampling it is almost always an incomplete download).
    """
    unet_dir = layout.sd_dir / "unet"
    config = unet_config_from_reference(read_model_json(unet_dir / "config.json"))
    if layout.checkpoint is not None:
        state = fyp_reference_to_posevid(load_state_dict_file(layout.checkpoint))
        _check_is_video_unet(state, layout.checkpoint)
        return _mark_read(_unet_from_state(config, state, layout.checkpoint), layout.checkpoint)

    weights = _weights_file(unet_dir, UNET_WEIGHTS, "UNet")
    state = fyp_reference_to_posevid(load_state_dict_file(weights))
    spatial, temporal, pose = split_fyp_state(state)
    if temporal and pose:  # a complete video UNet (posevid format)
        return _mark_read(_unet_from_state(config, state, weights), weights)
    if temporal:
        raise CheckpointError(f"{weights} has temporal layers but no pose encoder", hint="the checkpoint is incomplete")
    if layout.pose_encoder is None:
        raise CheckpointError(
            f"{layout.source}: no Follow-Your-Pose checkpoint ({FYP_CHECKPOINT_FOLDER}/pytorch_model.bin) and no {POSE_ENCODER_FILE}",
            hint=HOW_TO_GET,
        )
    if not allow_untrained_temporal:
        expected = layout.sd_dir.parent / FYP_CHECKPOINT_FOLDER / CHECKPOINT_WEIGHTS[0]
        raise CheckpointError(
            f"{layout.source}: the Follow-Your-Pose checkpoint {expected} is missing, so the temporal layers would be untrained",
            hint=f"an incomplete download? get it from {FYP_HUB_ID}; to sample the inflated image model with identity temporal "
            "layers instead, pass --allow-untrained-temporal to posevid generate (allow_untrained_temporal=True in Python)",
        )
    logger.warning(
        "No Follow-Your-Pose checkpoint in %s: using the SD 2-D UNet weights + %s with identity-initialised temporal "
        "layers (an untrained video model, as the reference before loading its checkpoint)",
        layout.source,
        layout.pose_encoder,
    )
    pose = pose_encoder_reference_to_posevid(load_state_dict_file(layout.pose_encoder), config.get("pose_encoder_num_res_blocks", 2))
    pose = {"pose_encoder." + k: v for k, v in pose.items()}
    with torch.device("meta"):
        unet = _guard("UNet config", unet_dir, lambda: FollowYourPoseUNet(**config))
    expected = {k: v for k, v in unet.state_dict().items() if not unet.is_temporal_key(k)}
    check_keys(
        (k for k in expected if k.startswith("pose_encoder.")), pose, what="pose encoder of the FYP UNet", source=layout.pose_encoder
    )
    check_keys((k for k in expected if not k.startswith("pose_encoder.")), spatial, what="SD UNet of the FYP model", source=weights)
    both = {**spatial, **pose}
    check_shapes(expected, both, what="FYP UNet", source=f"{weights} + {layout.pose_encoder}")
    missing = unet.load_state_dict(both, strict=False, assign=True).missing_keys
    assert all(unet.is_temporal_key(k) for k in missing), missing
    unet.reset_temporal_layers()  # real init as the reference: conv_temporal.up = 0 => identity
    _check_materialised(unet)
    return _mark_read(unet, weights, layout.pose_encoder)


def _check_is_video_unet(state: Mapping[str, torch.Tensor], source: Path) -> None:
    _, temporal, pose = split_fyp_state(state)
    if not temporal:
        raise CheckpointError(
            f"{source} is not a Follow-Your-Pose video UNet checkpoint: it has no temporal layers (attn_temp/conv_temporal)",
            hint="is it an image (2-D) UNet, e.g. a DreamPose or plain Stable Diffusion checkpoint?",
        )
    if not pose:
        raise CheckpointError(f"{source} has no pose encoder (skeleton_adapter.*) keys", hint="is this a Follow-Your-Pose checkpoint?")


def _unet_from_state(config: dict[str, Any], state: Mapping[str, torch.Tensor], source: Path) -> FollowYourPoseUNet:
    """Strict load into a UNet built on the meta device (no wasted random init of ~1e9 parameters)."""
    with torch.device("meta"):
        unet = _guard("UNet config", source, lambda: FollowYourPoseUNet(**config))
    expected = unet.state_dict()
    check_keys(expected.keys(), state.keys(), what="Follow-Your-Pose UNet built from its config", source=source)
    check_shapes(expected, state, what="Follow-Your-Pose UNet built from its config", source=source)
    unet.load_state_dict(dict(state), strict=True, assign=True)
    _check_materialised(unet)
    return unet


def _check_materialised(unet: torch.nn.Module) -> None:
    leftover = [n for n, t in [*unet.named_parameters(), *unet.named_buffers()] if t.is_meta]
    if leftover:  # pragma: no cover - would be a posevid bug (a non-persistent buffer)
        raise RuntimeError(f"FollowYourPoseUNet tensors left uninitialised: {leftover[:3]}")


def load_vae(folder: Path):
    """``AutoencoderKL`` from config + weights; legacy (diffusers <= 0.13) attention names are converted."""
    from diffusers import AutoencoderKL

    config = read_model_json(folder / "config.json")
    vae = _guard("VAE", folder, lambda: AutoencoderKL.from_config(config))
    path = _weights_file(folder, VAE_WEIGHTS, "VAE")
    load_into(vae, vae_legacy_attention_to_current(load_state_dict_file(path)), what="VAE built from its config", source=path)
    return _mark_read(vae, path)


def load_clip_text_encoder(folder: Path):
    """``CLIPTextModel`` from config + weights, from either transformers 4.x or 5.x key layouts."""
    from transformers import CLIPTextConfig, CLIPTextModel

    read_model_json(folder / "config.json")
    config = _guard("text encoder config", folder, lambda: CLIPTextConfig.from_pretrained(str(folder)))
    model = _guard("text encoder", folder, lambda: CLIPTextModel(config))
    path = _weights_file(folder, TEXT_WEIGHTS, "text encoder")
    state = clip_text_match_model(load_state_dict_file(path), model.state_dict().keys())
    load_into(model, state, what="CLIP text encoder built from its config", source=path)
    return _mark_read(model, path)


def load_clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    if not folder.is_dir():
        raise CheckpointError(f"missing tokenizer folder {folder}", hint="the model folder is incomplete")
    return _guard("tokenizer", folder, lambda: CLIPTokenizer.from_pretrained(str(folder)))


def load_ddim_scheduler(folder: Path):
    """DDIM from the SD scheduler config with ``steps_offset=1`` and ``clip_sample=False`` forced, as the reference."""
    from diffusers import DDIMScheduler

    config = read_model_json(folder / "scheduler_config.json")
    return _guard("scheduler", folder, lambda: DDIMScheduler.from_config(config, steps_offset=1, clip_sample=False))


# ------------------------------------------------------------------------------------------------------
# saving
# ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _output_folder(out_dir: str | os.PathLike, overwrite: bool) -> Iterator[Path]:
    """The staged folder of a model written to ``out_dir``: it replaces ``out_dir`` only when complete (OutputSet)."""
    from posevid.utils.outputs import OutputSet

    out = Path(out_dir)
    if out.exists() and (out.is_file() or any(out.iterdir())) and not overwrite:
        raise InputError(f"output folder {out} already exists and is not empty", hint="choose another --out or pass --overwrite")
    with OutputSet(out) as outputs:
        staged = outputs.path(out)
        staged.mkdir()
        yield staged
        outputs.commit()


def save_followyourpose(components: Mapping[str, Any], out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write posevid's format: ``model_index.json`` + one safetensors-based folder per component.

    Staged and moved into place at the end, so a failure never leaves a half model.
    """
    with _output_folder(out_dir, overwrite) as tmp:
        components["unet"].save_pretrained(tmp / "unet", safe_serialization=True)
        components["vae"].save_pretrained(tmp / "vae", safe_serialization=True)
        components["text_encoder"].save_pretrained(tmp / "text_encoder", safe_serialization=True)
        save_clip_tokenizer(components["tokenizer"], tmp / "tokenizer")
        components["scheduler"].save_pretrained(tmp / "scheduler")
        index = {
            "_class_name": "FollowYourPosePipeline",
            "_posevid_format": POSEVID_FORMAT,
            "unet": ["posevid", "FollowYourPoseUNet"],
            "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", type(components["scheduler"]).__name__],
        }
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return Path(out_dir)


def save_followyourpose_reference(components: Mapping[str, Any], out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the official release layout ``OUT/checkpoints/...`` that the reference code loads.

    ``stable-diffusion-v1-4/`` gets a 2-D SD UNet (config without ``mid_block_type``, ``.bin`` weights),
    the VAE with legacy attention names, a transformers-4.x style text encoder and a slow-tokenizer
    vocabulary; ``followyourpose_checkpoint-1000/pytorch_model.bin`` the full video UNet (reference
    names) and ``pose_encoder.pth`` the adapter alone. All ``.bin/.pth`` are plain tensor dicts.
    """
    with _output_folder(out_dir, overwrite) as tmp:
        root = tmp / "checkpoints"
        sd = root / SD_FOLDER
        unet: FollowYourPoseUNet = components["unet"]
        ref_state = {k: v.detach().cpu().contiguous() for k, v in fyp_posevid_to_reference(unet.state_dict()).items()}
        spatial = {k: v for k, v in ref_state.items() if not k.startswith("skeleton_adapter.") and not unet.is_temporal_key(k)}
        adapter = {k[len("skeleton_adapter."):]: v for k, v in ref_state.items() if k.startswith("skeleton_adapter.")}

        (sd / "unet").mkdir(parents=True)
        _write_json(sd / "unet" / "config.json", reference_unet2d_config(unet))
        torch.save(spatial, sd / "unet" / "diffusion_pytorch_model.bin")
        (sd / "vae").mkdir()
        vae = components["vae"]
        _write_json(sd / "vae" / "config.json", {"_class_name": "AutoencoderKL", **_public(vae.config)})
        torch.save(_cpu(vae_current_to_legacy_attention(vae.state_dict())), sd / "vae" / "diffusion_pytorch_model.bin")
        (sd / "text_encoder").mkdir()
        text_encoder = components["text_encoder"]
        text_encoder.config.to_json_file(str(sd / "text_encoder" / "config.json"))
        torch.save(_cpu(clip_text_to_reference(text_encoder.state_dict())), sd / "text_encoder" / "pytorch_model.bin")
        save_clip_tokenizer(components["tokenizer"], sd / "tokenizer")
        (sd / "scheduler").mkdir()
        _write_json(sd / "scheduler" / "scheduler_config.json", sd_scheduler_config(components["scheduler"]))
        (root / FYP_CHECKPOINT_FOLDER).mkdir()
        torch.save(ref_state, root / FYP_CHECKPOINT_FOLDER / "pytorch_model.bin")
        torch.save(adapter, root / POSE_ENCODER_FILE)
    return Path(out_dir)


def reference_unet2d_config(unet: FollowYourPoseUNet) -> dict[str, Any]:
    """SD-1.4-style ``unet/config.json`` (2-D block names, no ``mid_block_type``) that the reference accepts."""
    keys = (
        "act_fn", "attention_head_dim", "block_out_channels", "center_input_sample", "cross_attention_dim", "down_block_types",
        "downsample_padding", "flip_sin_to_cos", "freq_shift", "in_channels", "layers_per_block", "mid_block_scale_factor",
        "norm_eps", "norm_num_groups", "out_channels", "sample_size", "up_block_types",
    )  # fmt: skip
    cfg = _public({k: unet.config[k] for k in keys})
    return {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.2.2", **cfg}


def sd_scheduler_config(scheduler: Any) -> dict[str, Any]:
    """The SD-1.4 scheduler config (PNDM class name, as in the release) for the scheduler's betas."""
    cfg = _public(scheduler.config)
    keep = (
        "beta_end", "beta_schedule", "beta_start", "num_train_timesteps", "set_alpha_to_one", "steps_offset",
        "trained_betas", "clip_sample",
    )  # fmt: skip
    return {"_class_name": "PNDMScheduler", "skip_prk_steps": True, **{k: cfg[k] for k in keep if k in cfg}}


def save_clip_tokenizer(tokenizer: Any, folder: Path) -> None:
    """Save for current transformers (``tokenizer.json``) and the slow 4.x tokenizer (``vocab.json``/``merges.txt``)."""
    folder = Path(folder)
    tokenizer.save_pretrained(str(folder))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer already wrote vocab.json/merges.txt
        return
    bpe = json.loads(backend.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe.get("merges", [])]
    (folder / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")


def _public(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}


def _cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


__all__ = [
    "FYP_HUB_ID",
    "SD_HUB_ID",
    "FollowYourPoseLayout",
    "load_clip_text_encoder",
    "load_clip_tokenizer",
    "load_ddim_scheduler",
    "load_followyourpose_components",
    "load_followyourpose_unet",
    "load_vae",
    "locate_followyourpose",
    "save_clip_tokenizer",
    "save_followyourpose",
    "save_followyourpose_reference",
    "weights_read",
]
