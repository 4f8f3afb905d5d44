"""Every state-dict key renaming in posevid lives here.

Reference checkpoints were written by older diffusers/transformers releases or by custom modules, so a
few key families need renaming before they load strictly into the modules posevid builds on current
libraries. Keeping all renames in one module makes the mapping auditable and reversible:

* Follow-Your-Pose: the pose encoder lives inside the reference UNet under ``skeleton_adapter.`` with a
  flat ``body.N`` list (T2I-Adapter v1 layout). posevid holds it as a diffusers ``T2IAdapter`` under
  ``pose_encoder.`` where level ``N // 2`` has ``resnets.{N % 2}`` and the level's ``in_conv``. Every
  other UNet key (SD's and the temporal ``attn_temp``/``norm_temp``/``conv_temporal``) keeps its name.
* VAE: diffusers <= 0.13 stored the mid-block attention as ``query/key/value/proj_attn``; current
  diffusers calls them ``to_q/to_k/to_v/to_out.0`` (DreamPose's ``vae_N.pth``, SD-0.11 ``.bin`` files).
* CLIP vision: transformers 4.x ``CLIPVisionModel`` keys start with ``vision_model.``; 5.x drops it.
* DDP / accelerate: an optional ``module.`` prefix.

All functions are pure: they return a new dict and never modify their input. Tensors are not copied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch

from posevid.errors import CheckpointError
from posevid.models.fyp_layers import TEMPORAL_MODULE_NAMES

State = Mapping[str, torch.Tensor]

REFERENCE_ADAPTER_PREFIX = "skeleton_adapter."
POSEVID_ADAPTER_PREFIX = "pose_encoder.adapter."
TEMPORAL_KEY_PARTS = tuple(f".{name}." for name in TEMPORAL_MODULE_NAMES)  # the one list lives in fyp_layers

_REF_BODY = re.compile(r"^body\.(\d+)\.(block1|block2|in_conv)\.(.+)$")
_OURS_BODY = re.compile(r"^body\.(\d+)\.resnets\.(\d+)\.(block1|block2)\.(.+)$")
_OURS_IN_CONV = re.compile(r"^body\.(\d+)\.in_conv\.(.+)$")


def strip_module_prefix(state: State, prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a leading ``module.`` (DDP / accelerate wrappers) from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


# --------------------------------------------------------------------------------------------------
# Follow-Your-Pose pose encoder
# --------------------------------------------------------------------------------------------------
def _adapter_key_to_posevid(key: str, num_res_blocks: int = 2) -> str:
    """``body.3.block1.weight`` -> ``body.1.resnets.1.block1.weight``; ``conv_in.*`` unchanged."""
    if key.startswith("conv_in."):
        return key
    m = _REF_BODY.match(key)
    if not m:
        raise CheckpointError(f"unknown pose-encoder key {key!r}", hint="expected conv_in.* or body.N.{block1,block2,in_conv}.*")
    n, part, rest = int(m.group(1)), m.group(2), m.group(3)
    level, j = divmod(n, num_res_blocks)
    if part == "in_conv":
        if j != 0:
            raise CheckpointError(f"pose-encoder key {key!r}: in_conv only exists in the first block of a level")
        return f"body.{level}.in_conv.{rest}"
    return f"body.{level}.resnets.{j}.{part}.{rest}"


def _adapter_key_to_reference(key: str, num_res_blocks: int = 2) -> str:
    """Inverse of :func:`_adapter_key_to_posevid`."""
    if key.startswith("conv_in."):
        return key
    m = _OURS_BODY.match(key)
    if m:
        level, j, part, rest = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        return f"body.{level * num_res_blocks + j}.{part}.{rest}"
    m = _OURS_IN_CONV.match(key)
    if m:
        return f"body.{int(m.group(1)) * num_res_blocks}.in_conv.{m.group(2)}"
    raise CheckpointError(f"unknown pose-encoder key {key!r}", hint="expected conv_in.* or body.L.resnets.J.* / body.L.in_conv.*")


def pose_encoder_reference_to_posevid(state: State, num_res_blocks: int = 2) -> dict[str, torch.Tensor]:
    """Reference ``pose_encoder.pth`` keys (no prefix) -> keys of posevid's ``T2IAdapter`` (``adapter.*``)."""
    return {"adapter." + _adapter_key_to_posevid(k, num_res_blocks): v for k, v in state.items()}


def pose_encoder_posevid_to_reference(state: State, num_res_blocks: int = 2) -> dict[str, torch.Tensor]:
    """``T2IAdapter`` state (``adapter.*``) -> the reference ``pose_encoder.pth`` layout."""
    out = {}
    for k, v in state.items():
        if not k.startswith("adapter."):
            raise CheckpointError(f"unexpected T2IAdapter key {k!r}", hint="expected keys starting with 'adapter.'")
        out[_adapter_key_to_reference(k[len("adapter."):], num_res_blocks)] = v
    return out


def fyp_reference_to_posevid(state: State, num_res_blocks: int = 2) -> dict[str, torch.Tensor]:
    """A reference FYP UNet3D state dict (``pytorch_model.bin``) -> ``FollowYourPoseUNet`` keys.

    An optional ``module.`` prefix is stripped; ``skeleton_adapter.*`` becomes ``pose_encoder.adapter.*``;
    every other key is already a valid name (SD's and the temporal layers').
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in strip_module_prefix(state).items():
        if k.startswith(REFERENCE_ADAPTER_PREFIX):
            k = POSEVID_ADAPTER_PREFIX + _adapter_key_to_posevid(k[len(REFERENCE_ADAPTER_PREFIX):], num_res_blocks)
        out[k] = v
    return out


def fyp_posevid_to_reference(state: State, num_res_blocks: int = 2) -> dict[str, torch.Tensor]:
    """Inverse of :func:`fyp_reference_to_posevid`: a state dict the reference code loads strictly."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith(POSEVID_ADAPTER_PREFIX):
            k = REFERENCE_ADAPTER_PREFIX + _adapter_key_to_reference(k[len(POSEVID_ADAPTER_PREFIX):], num_res_blocks)
        out[k] = v
    return out


def split_fyp_state(state: State) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a posevid-named FYP state into ``(spatial_2d, temporal, pose_encoder)`` parts.

    ``spatial_2d`` is exactly the SD ``UNet2DConditionModel`` subset, ``temporal`` the MotionAdapter-like
    layers, ``pose_encoder`` the adapter keys (prefix kept).
    """
    spatial, temporal, pose = {}, {}, {}
    for k, v in state.items():
        if k.startswith("pose_encoder."):
            pose[k] = v
        elif any(p in k for p in TEMPORAL_KEY_PARTS):
            temporal[k] = v
        else:
            spatial[k] = v
    return spatial, temporal, pose


# --------------------------------------------------------------------------------------------------
# VAE legacy attention names
# --------------------------------------------------------------------------------------------------
_VAE_LEGACY = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_VAE_LEGACY_RE = re.compile(r"^((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$")


def vae_legacy_attention_to_current(state: State) -> dict[str, torch.Tensor]:
    """Rename diffusers <= 0.13 VAE mid-block attention keys to current names.

    ``{encoder,decoder}.mid_block.attentions.N.{query,key,value,proj_attn}`` ->
    ``...to_q/to_k/to_v/to_out.0``. Current names pass through unchanged, so it is safe to call on any VAE
    state. Linear weights keep their 2-D shape; a 1x1-conv-shaped legacy weight (4-D) is squeezed.
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        m = _VAE_LEGACY_RE.match(k)
        if m:
            k = f"{m.group(1)}.{_VAE_LEGACY[m.group(2)]}.{m.group(3)}"
            if v.ndim == 4 and v.shape[-2:] == (1, 1):
                v = v[:, :, 0, 0]
        out[k] = v
    return out


def vae_current_to_legacy_attention(state: State) -> dict[str, torch.Tensor]:
    """Inverse of :func:`vae_legacy_attention_to_current` (used to write reference-style test files)."""
    inverse = {v: k for k, v in _VAE_LEGACY.items()}
    pattern = re.compile(r"^((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$")
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        m = pattern.match(k)
        if m:
            k = f"{m.group(1)}.{inverse[m.group(2)]}.{m.group(3)}"
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------------
# CLIP vision prefix (transformers 4.x vs 5.x)
# --------------------------------------------------------------------------------------------------
CLIP_VISION_PREFIX = "vision_model."


def clip_vision_add_prefix(state: State, prefix: str = CLIP_VISION_PREFIX) -> dict[str, torch.Tensor]:
    """Add ``vision_model.`` to keys that lack it (transformers 5.x -> 4.x naming)."""
    return {(k if k.startswith(prefix) else prefix + k): v for k, v in state.items()}


def clip_vision_strip_prefix(state: State, prefix: str = CLIP_VISION_PREFIX) -> dict[str, torch.Tensor]:
    """Remove ``vision_model.`` from keys that have it (transformers 4.x -> 5.x naming)."""
    return strip_module_prefix(state, prefix)


def clip_vision_match_model(state: State, expected_keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """Add or strip ``vision_model.`` so ``state`` uses the same convention as ``expected_keys``.

    Pass ``model.state_dict().keys()`` of the installed transformers' ``CLIPVisionModel``; this makes
    a checkpoint from either transformers major version load without knowing which one is installed.
    A stored ``position_ids`` buffer (4.x) is dropped when the model does not expect it.
    """
    return _match_prefix(state, expected_keys, CLIP_VISION_PREFIX)


# --------------------------------------------------------------------------------------------------
# CLIP text encoder (same story: transformers 4.x ``text_model.`` prefix + persistent position_ids)
# --------------------------------------------------------------------------------------------------
CLIP_TEXT_PREFIX = "text_model."


def clip_text_match_model(state: State, expected_keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """Add or strip ``text_model.`` (and drop an unexpected ``position_ids``) to fit ``expected_keys``."""
    return _match_prefix(state, expected_keys, CLIP_TEXT_PREFIX)


def clip_text_to_reference(state: State, max_position_embeddings: int | None = None) -> dict[str, torch.Tensor]:
    """transformers 5.x ``CLIPTextModel`` state -> the 4.x layout (``text_model.`` prefix, position_ids buffer)."""
    out = clip_vision_add_prefix(state, CLIP_TEXT_PREFIX)
    key = CLIP_TEXT_PREFIX + "embeddings.position_ids"
    if max_position_embeddings is None:
        emb = out.get(CLIP_TEXT_PREFIX + "embeddings.position_embedding.weight")
        max_position_embeddings = emb.shape[0] if emb is not None else None
    if key not in out and max_position_embeddings is not None:
        out[key] = torch.arange(max_position_embeddings).unsqueeze(0)
    return out


def _match_prefix(state: State, expected_keys: Iterable[str], prefix: str) -> dict[str, torch.Tensor]:
    expected = set(expected_keys)
    want_prefix = any(k.startswith(prefix) for k in expected)
    out = clip_vision_add_prefix(state, prefix) if want_prefix else strip_module_prefix(state, prefix)
    return {k: v for k, v in out.items() if not (k.endswith("embeddings.position_ids") and k not in expected)}


__all__ = [
    "POSEVID_ADAPTER_PREFIX",
    "REFERENCE_ADAPTER_PREFIX",
    "TEMPORAL_KEY_PARTS",
    "CLIP_TEXT_PREFIX",
    "CLIP_VISION_PREFIX",
    "clip_text_match_model",
    "clip_text_to_reference",
    "clip_vision_add_prefix",
    "clip_vision_match_model",
    "clip_vision_strip_prefix",
    "fyp_posevid_to_reference",
    "fyp_reference_to_posevid",
    "pose_encoder_posevid_to_reference",
    "pose_encoder_reference_to_posevid",
    "split_fyp_state",
    "strip_module_prefix",
    "vae_current_to_legacy_attention",
    "vae_legacy_attention_to_current",
]
