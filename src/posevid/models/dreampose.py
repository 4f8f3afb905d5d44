"""DreamPose models: the CLIP+VAE embedding adapter, the 14-channel UNet, and every loader for them.

DreamPose (Karras et al., ICCV 2023) turns Stable Diffusion 1.x into an image+pose -> image model:

* the text encoder is replaced by :class:`EmbeddingAdapter`, which mixes the 50 CLIP ViT-B/32 tokens of
  the reference image with 4 tokens made from its VAE latent, giving the UNet a (B, 50, 768) context;
* the UNet's ``conv_in`` takes ``4 + 2 * n_poses`` = 14 channels: the noisy latent plus 5 DensePose UV
  maps (frames t-2..t+2), see :func:`build_dreampose_unet`.

Checkpoints come in two layouts, both loaded by :func:`load_dreampose_components`:

* the **reference release** (``demo/custom-chkpts``): ``unet_epoch_N.pth``, ``adapter_N.pth``, optional
  ``vae_M.pth`` (old diffusers attention key names), and ``checkpoint-N/`` (a diffusers pipeline folder whose
  ``unet/config.json`` says ``in_channels: 4`` although the weights have 14 -> we read the real number from
  the weights). The CLIP encoder is not part of it (the reference downloads ``openai/clip-vit-base-patch32``).
* **posevid's own folder** (:func:`save_dreampose`): ``model_index.json`` + ``unet/ vae/ adapter/
  image_encoder/ image_processor/ scheduler/``, every weight in safetensors, configs that tell the truth.

All ``.pth`` files go through ``torch.load(weights_only=True)``; key renames come from
:mod:`posevid.models.convert`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from posevid.errors import CheckpointError, InputError
from posevid.models.convert import clip_vision_match_model, strip_module_prefix, vae_legacy_attention_to_current
from posevid.utils.checkpoint import load_into, load_state_dict_file

CLIP_HUB_ID = "openai/clip-vit-base-patch32"
SD14_HUB_ID = "CompVis/stable-diffusion-v1-4"
POSEVID_FORMAT = "posevid-dreampose"

#: ``unet/config.json`` of SD-1.4 (the base of every released DreamPose UNet); used when a release folder
#: has no readable UNet config.
SD14_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


# --------------------------------------------------------------------------------------------------
# Embedding adapter
# --------------------------------------------------------------------------------------------------
class EmbeddingAdapter(ModelMixin, ConfigMixin):
    """Mix CLIP image tokens and VAE-latent tokens into the UNet's cross-attention context.

    Forward (reference ``Embedding_Adapter``): max-pool the latent by ``pool_size``, flatten each latent channel
    row-major into one vector, project it to ``clip_dim`` with ``vae2clip`` (one token per channel), append
    these tokens after the CLIP tokens and mix over the *token* axis with ``linear1`` (54 -> 50).

    The sizes are configurable but hard-wired together in the released weights:
    ``vae2clip.in_features = (latent_size[0] // pool_size) * (latent_size[1] // pool_size)`` = (80/2)*(64/2) = 1280,
    i.e. a 640x512 (HxW) image with SD's /8 VAE; ``clip_dim`` = 768 = CLIP ViT-B/32 hidden size = SD-1.x
    ``cross_attention_dim``; ``clip_tokens`` = 50 = ViT-B/32 at 224 px (7x7 patches + CLS). Another image size
    therefore needs another (re-trained) adapter; :meth:`forward` refuses latents that do not fit.
    """

    @register_to_config
    def __init__(
        self,
        clip_tokens: int = 50,
        clip_dim: int = 768,
        latent_channels: int = 4,
        latent_size: tuple[int, int] | list[int] = (80, 64),
        pool_size: int = 2,
        out_tokens: int = 50,
    ) -> None:
        super().__init__()
        h, w = int(latent_size[0]), int(latent_size[1])
        self.vae_flat_dim = (h // pool_size) * (w // pool_size)
        self.pool = nn.MaxPool2d(pool_size)
        self.vae2clip = nn.Linear(self.vae_flat_dim, clip_dim)
        self.linear1 = nn.Linear(clip_tokens + latent_channels, out_tokens)
        with torch.no_grad():  # token k starts as a copy of CLIP token k; the VAE tokens start unused
            self.linear1.weight.copy_(torch.eye(out_tokens, clip_tokens + latent_channels))

    def vae_tokens(self, vae_latent: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) latent -> (B, C, clip_dim): one token per latent channel."""
        v = self.pool(vae_latent).flatten(2)
        if v.shape[-1] != self.vae_flat_dim:
            raise InputError(
                f"VAE latent of size {tuple(vae_latent.shape[-2:])} gives {v.shape[-1]} values per channel after pooling, "
                f"but this adapter expects {self.vae_flat_dim} (latent {tuple(self.config.latent_size)})",
                hint="DreamPose only works at the image size its adapter was trained for (640x512 for the released weights)",
            )
        return self.vae2clip(v)

    def forward(self, clip_last_hidden_state: torch.Tensor, vae_latent: torch.Tensor) -> torch.Tensor:
        """(B, 50, 768) CLIP ``last_hidden_state`` + (B, 4, 80, 64) scaled latent -> (B, 50, 768) context."""
        x = torch.cat([clip_last_hidden_state, self.vae_tokens(vae_latent)], dim=1)
        return self.linear1(x.transpose(1, 2)).transpose(1, 2)


def adapter_from_state(state: Mapping[str, torch.Tensor], *, source: str | os.PathLike = "adapter") -> EmbeddingAdapter:
    """Build an adapter whose sizes fit ``state`` and load it strictly.

    The latent size cannot be read back from ``vae2clip`` alone (1280 = 40*32 = 32*40 ...): the released
    value 80x64 is assumed when it fits, otherwise a square-ish factorisation is refused with a clear error.
    """
    state = strip_module_prefix(state)
    try:
        clip_dim, flat = state["vae2clip.weight"].shape
        out_tokens, mixed = state["linear1.weight"].shape
    except KeyError as exc:
        raise CheckpointError(f"{source} is not a DreamPose adapter (no {exc.args[0]})", hint="expected adapter_N.pth") from None
    if flat != 1280:
        raise CheckpointError(f"{source}: vae2clip takes {flat} inputs; only the 1280 (80x64 latent) layout is known")
    adapter = EmbeddingAdapter(clip_tokens=out_tokens, clip_dim=clip_dim, latent_channels=mixed - out_tokens, out_tokens=out_tokens)
    load_into(adapter, {k: v.float() for k, v in state.items()}, what="DreamPose embedding adapter", source=source)
    return adapter


# --------------------------------------------------------------------------------------------------
# UNet
# --------------------------------------------------------------------------------------------------
def _unet_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor kwargs from a (possibly old or frozen) UNet config; drops ``_name``-style keys."""
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


def build_dreampose_unet(
    sd_unet: UNet2DConditionModel | Mapping[str, Any], n_poses: int = 5, *, reference_bias_init: bool = False
) -> UNet2DConditionModel:
    """A ``UNet2DConditionModel`` with ``in_channels = 4 + 2 * n_poses`` (14) in its config.

    Given a pretrained SD UNet, every weight is copied; ``conv_in`` gets the SD weights on latent channels
    0..3 and zeros on the pose channels, so at start the model is exactly SD (poses are ignored). Differences
    to the reference ``get_unet``: the config says 14 (the reference leaves a stale 4), channel 3 keeps its
    pretrained weights (the reference's released training code zeroed it too; HEAD crashes), and the
    ``conv_in`` bias keeps SD's value (the reference re-initialises it at random) unless
    ``reference_bias_init`` is set. None of this matters when loading released weights, which overwrite all.
    Given a config mapping, a randomly initialised UNet of that shape is returned.
    """
    in_channels = 4 + 2 * n_poses
    if isinstance(sd_unet, UNet2DConditionModel):
        config = _unet_kwargs(sd_unet.config)
        latent_channels = int(config.get("in_channels", 4))
        config["in_channels"] = in_channels
        unet = UNet2DConditionModel(**config)
        state = dict(sd_unet.state_dict())
        old_w = state["conv_in.weight"]
        new_w = torch.zeros(old_w.shape[0], in_channels, *old_w.shape[2:], dtype=old_w.dtype)
        new_w[:, :latent_channels] = old_w
        state["conv_in.weight"] = new_w
        if reference_bias_init:
            state["conv_in.bias"] = unet.conv_in.bias.detach().clone()
        unet.load_state_dict(state, strict=True)
        return unet.to(dtype=sd_unet.dtype)
    config = _unet_kwargs(sd_unet)
    config["in_channels"] = in_channels
    return UNet2DConditionModel(**config)


def unet_from_state(
    state: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None, *, source: str | os.PathLike = "unet"
) -> UNet2DConditionModel:
    """UNet for a reference ``unet_epoch_N.pth`` state; ``in_channels`` is taken from ``conv_in.weight``."""
    state = strip_module_prefix(state)
    if "conv_in.weight" not in state:
        raise CheckpointError(f"{source} is not a UNet state dict (no conv_in.weight)", hint="expected unet_epoch_N.pth")
    kwargs = _unet_kwargs(config or SD14_UNET_CONFIG)
    kwargs["in_channels"] = int(state["conv_in.weight"].shape[1])
    unet = UNet2DConditionModel(**kwargs)
    load_into(unet, state, what="DreamPose UNet", source=source)
    return unet


# --------------------------------------------------------------------------------------------------
# VAE and CLIP
# --------------------------------------------------------------------------------------------------
def load_vae_weights(vae: AutoencoderKL, path: str | os.PathLike) -> AutoencoderKL:
    """Load a DreamPose ``vae_N.pth`` (``module.`` and old attention names handled) into ``vae`` in place."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"custom VAE not found: {path}", hint="check --custom-vae (e.g. demo/custom-chkpts/vae_1499.pth)")
    state = vae_legacy_attention_to_current(strip_module_prefix(load_state_dict_file(path)))
    dtype = vae.dtype
    load_into(vae, {k: v.to(dtype) for k, v in state.items()}, what="VAE", source=path)
    return vae


def clip_vision_subset(state: Mapping[str, torch.Tensor], expected_keys) -> dict[str, torch.Tensor]:
    """Keep the vision tower of a full ``CLIPModel`` checkpoint and match the installed prefix convention."""
    drop = ("text_model.", "text_projection", "visual_projection", "logit_scale")
    vision = {k: v for k, v in state.items() if not k.startswith(drop)}
    vision = clip_vision_match_model(vision, expected_keys)
    expected = set(expected_keys)
    return {k: v for k, v in vision.items() if k in expected or not k.endswith("position_ids")}


def load_clip_image_encoder(spec: str | os.PathLike = CLIP_HUB_ID, *, device: str | torch.device = "cpu"):
    """(``CLIPVisionModel``, image processor) from a hub id or a local folder, weights loaded safely.

    The folder may hold a full ``CLIPModel`` (the hub's ``openai/clip-vit-base-patch32``) or a bare
    ``CLIPVisionModel``, with transformers 4 (``vision_model.``) or 5 key names.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel

    how = f"download '{CLIP_HUB_ID}' once while online (huggingface-cli download {CLIP_HUB_ID}) or pass --clip DIR"
    names = ("model.safetensors", "pytorch_model.bin", "clip_vision.safetensors")
    folder = Path(_resolve(spec, what="CLIP image encoder", allow_patterns=["*.json", "*.txt", "model.safetensors"], how_to_get=how))
    if _first_existing(folder, names) is None and not Path(str(spec)).expanduser().exists():
        # the hub repo's main branch may only hold pytorch_model.bin (read with weights_only): fetch it only then
        folder = Path(_resolve(spec, what="CLIP image encoder", allow_patterns=["*.json", "*.txt", "pytorch_model.bin"], how_to_get=how))
    weights = _first_existing(folder, names)
    if weights is None:
        raise CheckpointError(f"no CLIP weights (model.safetensors) in {folder}", hint="pass the folder of a CLIP ViT-B/32 model")
    try:
        config = CLIPVisionConfig.from_pretrained(folder)
    except Exception as exc:
        raise CheckpointError(f"cannot read the CLIP config in {folder}: {str(exc).splitlines()[0][:160]}") from None
    model = CLIPVisionModel(config).eval()
    state = clip_vision_subset(load_state_dict_file(weights), model.state_dict().keys())
    own = model.state_dict()
    for k in own:  # non-persistent-like buffers that old checkpoints do not store
        if k.endswith("position_ids") and k not in state:
            state[k] = own[k]
    load_into(model, state, what="CLIP vision model", source=weights)
    return model.to(device), load_clip_processor(folder)


def load_clip_processor(folder: str | os.PathLike):
    """The CLIP image processor (PIL backend: no torchvision needed) from ``preprocessor_config.json``."""
    cls = _clip_processor_class()
    folder = Path(folder)
    for name in ("preprocessor_config.json", "clip_image_processor_config.json"):
        if (folder / name).is_file():
            return cls.from_dict(json.loads((folder / name).read_text()))
    raise CheckpointError(f"no CLIP image processor config (preprocessor_config.json) in {folder}")


def _clip_processor_class():
    try:
        from transformers import CLIPImageProcessorPil as cls  # transformers >= 5: PIL backend, no torchvision
    except ImportError:  # pragma: no cover - transformers 4
        from transformers import CLIPImageProcessor as cls
    return cls


# --------------------------------------------------------------------------------------------------
# Whole model: reference release folder or posevid folder
# --------------------------------------------------------------------------------------------------
@dataclass
class DreamPoseComponents:
    """Everything :class:`~posevid.pipelines.dreampose.DreamPosePipeline` needs, plus where it came from."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    adapter: EmbeddingAdapter
    image_encoder: Any
    image_processor: Any
    scheduler: Any
    source: dict[str, str]


_EPOCH_RE = re.compile(r"^unet_epoch_(\d+)\.pth$")


def release_epochs(folder: str | os.PathLike) -> list[int]:
    """Epoch numbers N with a ``unet_epoch_N.pth`` in a reference release folder, sorted."""
    folder = Path(folder)
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_RE.match(p.name))) if folder.is_dir() else []


def is_posevid_folder(folder: str | os.PathLike) -> bool:
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("_posevid_format") == POSEVID_FORMAT
    except (OSError, ValueError):
        return False


def load_dreampose_components(
    folder: str | os.PathLike,
    *,
    epoch: int | None = None,
    custom_vae: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DreamPoseComponents:
    """Load a DreamPose model from a reference release folder or a posevid folder (see module doc).

    ``clip``: hub id or folder of CLIP ViT-B/32; default: ``<folder>/clip`` (posevid tiny releases),
    ``<folder>/image_encoder`` (posevid format), else ``openai/clip-vit-base-patch32`` from the cache/hub.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"DreamPose model folder not found: {folder}", hint="pass --model/--folder DIR (e.g. demo/custom-chkpts)")
    if is_posevid_folder(folder):
        comps = _load_posevid_folder(folder, clip)
    else:
        comps = _load_release_folder(folder, epoch, clip)
    if custom_vae is not None:
        load_vae_weights(comps.vae, custom_vae)
        comps.source["custom_vae"] = str(custom_vae)
    for name in ("unet", "vae", "adapter"):
        module = getattr(comps, name).eval()
        module.to(device) if module.dtype == dtype else module.to(device=device, dtype=dtype)
    comps.image_encoder.to(device=device).eval()  # CLIP stays fp32, as in the reference
    return comps


def _load_release_folder(folder: Path, epoch: int | None, clip) -> DreamPoseComponents:
    from diffusers import PNDMScheduler

    epochs = release_epochs(folder)
    if not epochs:
        raise CheckpointError(
            f"{folder} holds no unet_epoch_N.pth and is not a posevid DreamPose folder", hint="pass the folder of a DreamPose release"
        )
    if epoch is None:
        if len(epochs) > 1:
            raise CheckpointError(f"{folder} holds several epochs {epochs}", hint="choose one with --epoch N")
        epoch = epochs[-1]
    unet_path = folder / f"unet_epoch_{epoch}.pth"
    if not unet_path.is_file():
        raise CheckpointError(f"no unet_epoch_{epoch}.pth in {folder} (available epochs: {epochs})", hint="fix --epoch")
    adapter_path = folder / f"adapter_{epoch}.pth"
    if not adapter_path.is_file():
        have = sorted(p.name for p in folder.glob("adapter_*.pth"))
        raise CheckpointError(
            f"{unet_path.name} has no matching {adapter_path.name} in {folder} (found: {', '.join(have) or 'no adapter'})",
            hint="UNet and adapter must come from the same epoch; re-download the release or fix --epoch",
        )
    ckpt = folder / f"checkpoint-{epoch}"
    if not ckpt.is_dir():
        have = sorted(p.name for p in folder.glob("checkpoint-*"))
        raise CheckpointError(
            f"no {ckpt.name}/ folder (VAE + scheduler) in {folder} (found: {', '.join(have) or 'none'})", hint="re-download the release"
        )
    unet_config = _read_json(ckpt / "unet" / "config.json") or SD14_UNET_CONFIG
    unet = unet_from_state(load_state_dict_file(unet_path), unet_config, source=unet_path)
    adapter = adapter_from_state(load_state_dict_file(adapter_path), source=adapter_path)
    vae = _load_vae_folder(ckpt / "vae")
    sched_config = _read_json(ckpt / "scheduler" / "scheduler_config.json")
    if sched_config is None:
        raise CheckpointError(f"no scheduler/scheduler_config.json in {ckpt}", hint="re-download the release")
    scheduler = PNDMScheduler.from_config(_reference_scheduler_config(sched_config))
    clip_spec = clip if clip is not None else (folder / "clip" if (folder / "clip").is_dir() else CLIP_HUB_ID)
    image_encoder, processor = load_clip_image_encoder(clip_spec)
    source = {"format": "reference", "folder": str(folder), "epoch": str(epoch), "clip": str(clip_spec)}
    return DreamPoseComponents(unet, vae, adapter, image_encoder, processor, scheduler, source)


def _reference_scheduler_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The reference pipeline constructor forces ``steps_offset=1`` and ``clip_sample=False``."""
    config = dict(config)
    config["steps_offset"] = 1
    if config.get("clip_sample", False):
        config["clip_sample"] = False
    return config


def _load_vae_folder(vae_dir: Path) -> AutoencoderKL:
    """A diffusers VAE folder of any age: config + weights (safetensors or weights-only .bin), legacy names converted."""
    config = _read_json(vae_dir / "config.json")
    if config is None:
        raise CheckpointError(f"no VAE config in {vae_dir}", hint="the checkpoint-N/vae folder is incomplete")
    names = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin")
    weights = _first_existing(vae_dir, names)
    if weights is None:
        raise CheckpointError(f"no VAE weights in {vae_dir}", hint="expected diffusion_pytorch_model.safetensors or .bin")
    vae = AutoencoderKL.from_config(_unet_kwargs(config))
    state = vae_legacy_attention_to_current(strip_module_prefix(load_state_dict_file(weights)))
    load_into(vae, {k: v.float() for k, v in state.items()}, what="VAE", source=weights)
    return vae


def _load_posevid_folder(folder: Path, clip) -> DreamPoseComponents:
    from diffusers import PNDMScheduler

    try:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet")
        vae = AutoencoderKL.from_pretrained(folder / "vae")
        adapter = EmbeddingAdapter.from_pretrained(folder / "adapter")
        scheduler = PNDMScheduler.from_pretrained(folder / "scheduler")
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot load the DreamPose folder {folder}: {str(exc).splitlines()[0][:200]}") from None
    clip_spec = clip if clip is not None else folder / "image_encoder"
    image_encoder, processor = load_clip_image_encoder(clip_spec)
    if clip is None and (folder / "image_processor").is_dir():
        processor = load_clip_processor(folder / "image_processor")
    source = {"format": "posevid", "folder": str(folder), "clip": str(clip_spec)}
    return DreamPoseComponents(unet, vae, adapter, image_encoder, processor, scheduler, source)


def save_dreampose(components: DreamPoseComponents | Any, out_dir: str | os.PathLike) -> Path:
    """Write posevid's folder format (safetensors everywhere, true configs); loadable by :func:`load_dreampose_components`.

    ``components`` may be a :class:`DreamPoseComponents` or a pipeline (anything with the same attributes).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    components.unet.save_pretrained(out / "unet", safe_serialization=True)
    components.vae.save_pretrained(out / "vae", safe_serialization=True)
    components.adapter.save_pretrained(out / "adapter", safe_serialization=True)
    components.scheduler.save_pretrained(out / "scheduler")
    components.image_encoder.save_pretrained(out / "image_encoder", safe_serialization=True)
    components.image_processor.save_pretrained(out / "image_encoder")
    components.image_processor.save_pretrained(out / "image_processor")
    index = {"_class_name": "DreamPosePipeline", "_posevid_format": POSEVID_FORMAT, "in_channels": int(components.unet.config.in_channels)}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out


# --------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def _first_existing(folder: Path, names) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _resolve(spec, **kwargs) -> Path:
    from posevid.utils.hub import resolve_model_path

    return resolve_model_path(spec, **kwargs)


__all__ = [
    "CLIP_HUB_ID",
    "SD14_UNET_CONFIG",
    "DreamPoseComponents",
    "EmbeddingAdapter",
    "adapter_from_state",
    "build_dreampose_unet",
    "clip_vision_subset",
    "is_posevid_folder",
    "load_clip_image_encoder",
    "load_clip_processor",
    "load_dreampose_components",
    "load_vae_weights",
    "release_epochs",
    "save_dreampose",
    "unet_from_state",
]
