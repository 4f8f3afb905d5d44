"""Follow-Your-Pose video UNet: SD's ``UNet2DConditionModel`` with frames folded into the batch.

The reference inflates every SD block into a 3-D copy. Almost all of that is per-frame 2-D work, so this
model keeps diffusers' UNet untouched and only swaps in the few video-aware pieces from
:mod:`posevid.models.fyp_layers` (clip-wide GroupNorm, sparse-causal ``attn1``, temporal attention and
conv in every transformer block) and holds the pose encoder as a diffusers ``T2IAdapter`` whose features
enter through ``down_intrablock_additional_residuals`` (the reference's injection points).

State-dict names equal the reference's except the pose encoder (``pose_encoder.adapter.*`` instead of
``skeleton_adapter.*``; see :mod:`posevid.models.convert`). See ``docs/architecture.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from diffusers import T2IAdapter, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
from torch import nn

from posevid.errors import InputError
from posevid.models.fyp_layers import TEMPORAL_MODULE_NAMES, ClipGroupNorm, FollowYourPoseTransformerBlock, FrameInfo
from posevid.utils.checkpoint import check_keys, check_shapes

logger = logging.getLogger(__name__)

# Reference (Tune-A-Video style) block names -> the diffusers 2-D blocks that run them with folded frames.
REFERENCE_BLOCK_NAMES = {
    "CrossAttnDownBlock3D": "CrossAttnDownBlock2D",
    "DownBlock3D": "DownBlock2D",
    "CrossAttnUpBlock3D": "CrossAttnUpBlock2D",
    "UpBlock3D": "UpBlock2D",
    "UNetMidBlock3DCrossAttn": "UNetMidBlock2DCrossAttn",
}
FYP_CONFIG_KEYS = ("pose_encoder_in_channels", "pose_encoder_num_res_blocks", "pose_encoder_downscale_factor", "temporal_conv_rank")
DEFAULT_TRAINABLE = ("attn1.to_q", "attn2.to_q", "attn_temp", "conv_temporal")


def unet_config_from_reference(config: Mapping[str, Any]) -> dict[str, Any]:
    """A reference/SD UNet config -> kwargs for :class:`FollowYourPoseUNet`.

    Maps 3-D block names to 2-D ones (``mid_block_type`` too, present or not), drops private keys
    (``_class_name``, ``_diffusers_version``...) and keys current diffusers no longer accepts.
    """
    known = ConfigMixin._get_init_keys(UNet2DConditionModel) | set(FYP_CONFIG_KEYS)
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith("_") or key not in known:
            continue
        if key in ("down_block_types", "up_block_types"):
            value = [REFERENCE_BLOCK_NAMES.get(v, v) for v in value]
        elif key == "mid_block_type" and value is not None:
            value = REFERENCE_BLOCK_NAMES.get(value, value)
        out[key] = value
    return out


class FollowYourPoseUNet(UNet2DConditionModel):
    """Text + pose conditioned video UNet (Follow Your Pose), ``(b, 4, f, h, w)`` in and out.

    Construct with SD's ``UNet2DConditionModel`` kwargs plus the FYP extras below; ``save_pretrained`` /
    ``from_pretrained`` round-trip both. ``attention_head_dim`` is the number of heads, as in SD-1.x.

    Args:
        pose_encoder_in_channels: channels of the skeleton frames (RGB).
        pose_encoder_num_res_blocks: resnet blocks per level of the T2I-Adapter-style encoder.
        pose_encoder_downscale_factor: pixel-unshuffle factor; equals the VAE scale factor.
        temporal_conv_rank: bottleneck width of ``conv_temporal`` (``channels // 2`` when larger than channels).
    """

    def __init__(
        self,
        *,
        pose_encoder_in_channels: int = 3,
        pose_encoder_num_res_blocks: int = 2,
        pose_encoder_downscale_factor: int = 8,
        temporal_conv_rank: int = 160,
        **unet_kwargs: Any,
    ) -> None:
        super().__init__(**unet_kwargs)
        self.register_to_config(
            pose_encoder_in_channels=pose_encoder_in_channels,
            pose_encoder_num_res_blocks=pose_encoder_num_res_blocks,
            pose_encoder_downscale_factor=pose_encoder_downscale_factor,
            temporal_conv_rank=temporal_conv_rank,
        )
        self.frame_info = FrameInfo()
        self._video_blocks: list[FollowYourPoseTransformerBlock] = []
        for module in list(self.modules()):
            if isinstance(module, ResnetBlock2D):
                module.norm1 = ClipGroupNorm.like(module.norm1, self.frame_info)
                module.norm2 = ClipGroupNorm.like(module.norm2, self.frame_info)
            elif type(module) is BasicTransformerBlock:
                self._video_blocks.append(FollowYourPoseTransformerBlock.inflate(module, temporal_conv_rank))
        if isinstance(self.conv_norm_out, nn.GroupNorm):
            self.conv_norm_out = ClipGroupNorm.like(self.conv_norm_out, self.frame_info)
        # Channels follow the UNet (the reference hard-coded SD's); one feature per down block.
        self.pose_encoder = T2IAdapter(
            in_channels=pose_encoder_in_channels,
            channels=list(self.config.block_out_channels),
            num_res_blocks=pose_encoder_num_res_blocks,
            downscale_factor=pose_encoder_downscale_factor,
            adapter_type="full_adapter",
        )

    @staticmethod
    def _get_init_keys(input_class: type) -> set[str]:
        # ConfigMixin reads accepted config keys from the __init__ signature; ours forwards SD's via **kwargs.
        keys = ConfigMixin._get_init_keys(input_class)
        if isinstance(input_class, type) and issubclass(input_class, FollowYourPoseUNet):
            keys |= ConfigMixin._get_init_keys(UNet2DConditionModel)
        return keys

    # ------------------------------------------------------------------------------------------------
    # attention processors
    # ------------------------------------------------------------------------------------------------
    def set_video_attn_processors(self) -> None:
        """(Re-)install the sparse-causal / frame-aware processors in every transformer block."""
        for block in self._video_blocks:
            block.set_video_processors()

    def _ensure_video_processors(self) -> None:
        # set_attn_processor, xformers, attention slicing or fused QKV silently replace attn1's processor,
        # which would turn sparse-causal attention into per-frame self-attention without any error.
        if not all(block.has_video_processors() for block in self._video_blocks):
            logger.warning("FollowYourPoseUNet: attention processors were replaced; restoring sparse-causal/temporal ones")
            self.set_video_attn_processors()

    # ------------------------------------------------------------------------------------------------
    # pose
    # ------------------------------------------------------------------------------------------------
    def encode_pose(self, skeleton: torch.Tensor) -> list[torch.Tensor]:
        """Pose-encoder features for a skeleton clip; independent of the timestep (compute once per video).

        Args:
            skeleton: ``(b, f, 3, H, W)`` float in [0, 1], frames before channels (as the reference).
        Returns:
            one ``(b, C_i, f, H / 8 / 2**i, W / 8 / 2**i)`` tensor per down block.
        """
        if skeleton.ndim != 5 or skeleton.shape[2] != self.config.pose_encoder_in_channels:
            raise InputError(
                f"pose tensor has shape {tuple(skeleton.shape)}; expected (batch, frames, {self.config.pose_encoder_in_channels}, H, W)"
            )
        b, f = skeleton.shape[:2]
        param = self.pose_encoder.adapter.conv_in.weight
        x = skeleton.reshape(b * f, *skeleton.shape[2:]).to(device=param.device, dtype=param.dtype)
        return [feat.reshape(b, f, *feat.shape[1:]).transpose(1, 2) for feat in self.pose_encoder(x)]

    def _fold_pose_features(
        self, features: Sequence[torch.Tensor], batch: int, frames: int, latent_hw: tuple[int, int]
    ) -> list[torch.Tensor]:
        if len(features) != len(self.down_blocks):
            raise InputError(f"got {len(features)} pose feature maps but the UNet has {len(self.down_blocks)} down blocks")
        if tuple(features[0].shape[-2:]) != latent_hw:
            h, w = features[0].shape[-2:]
            s = self.config.pose_encoder_downscale_factor  # feature map 0 is at 1/s of the pose resolution
            raise InputError(
                f"pose frames of {h * s}x{w * s} pixels do not fit latents of {latent_hw[0]}x{latent_hw[1]}",
                hint=f"the pose video must be resized to {latent_hw[0] * s}x{latent_hw[1] * s} pixels (H x W)",
            )
        folded = []
        for feat in features:
            fb, _, ff = feat.shape[:3]
            if ff != frames:
                raise InputError(f"pose has {ff} frames but the latents have {frames}", hint="use as many pose frames as video frames")
            if fb != batch:
                if batch % fb:
                    raise InputError(f"pose batch {fb} does not divide the latent batch {batch}")
                feat = feat.repeat_interleave(batch // fb, dim=0) if fb > 1 else feat.expand(batch, *feat.shape[1:])
            folded.append(feat.transpose(1, 2).reshape(batch * frames, *feat.shape[1:2], *feat.shape[3:]))
        return folded

    # ------------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        *,
        pose: torch.Tensor | None = None,
        pose_features: Sequence[torch.Tensor] | None = None,
        inject_pose: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> UNet2DConditionOutput | tuple[torch.Tensor]:
        """Predict noise for a batch of video latents.

        Args:
            sample: ``(b, c, f, h, w)`` latents.
            timestep: scalar / 0-d, or ``(b,)`` one per video (repeated over its frames).
            encoder_hidden_states: ``(b, n, d)`` text states shared by all frames of a video (batch 1 broadcasts).
            pose: raw skeleton ``(b, f, 3, 8h, 8w)`` in [0, 1], encoded here; or
            pose_features: precomputed :meth:`encode_pose` output (preferred in a sampling loop).
                Both None: no pose is injected. Pose batch 1 broadcasts (e.g. the same pose for CFG branches).
            inject_pose: False reproduces the reference's train mode (features not added).
        """
        b, c, f, h, w = sample.shape
        self._ensure_video_processors()
        self.frame_info.num_frames = f

        residuals = None
        if inject_pose and (pose is not None or pose_features is not None):
            if pose_features is None:
                pose_features = self.encode_pose(pose)
            residuals = self._fold_pose_features(pose_features, b, f, (h, w))

        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.ndim > 0 and timestep.numel() > 1:
            timestep = timestep.repeat_interleave(f)
        if encoder_hidden_states.shape[0] == 1 and b > 1:
            encoder_hidden_states = encoder_hidden_states.expand(b, *encoder_hidden_states.shape[1:])
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(f, dim=0)
        attn_kwargs = {**(cross_attention_kwargs or {}), "num_frames": f}

        folded = sample.transpose(1, 2).reshape(b * f, c, h, w)
        out = super().forward(
            folded,
            timestep,
            encoder_hidden_states,
            cross_attention_kwargs=attn_kwargs,
            down_intrablock_additional_residuals=residuals,
            return_dict=False,
        )[0]
        out = out.reshape(b, f, *out.shape[1:]).transpose(1, 2)
        return UNet2DConditionOutput(sample=out) if return_dict else (out,)

    # ------------------------------------------------------------------------------------------------
    # temporal weights and training helpers
    # ------------------------------------------------------------------------------------------------
    def reset_temporal_layers(self) -> None:
        """Fresh temporal layers (identity ``conv_temporal``), e.g. to inflate an image model; 2-D weights are kept."""
        device = self.conv_in.weight.device if self.conv_in.weight.device.type != "meta" else None
        for block in self._video_blocks:
            block.build_temporal_layers(self.config.temporal_conv_rank)
        if device is not None:
            self.to(device)

    @staticmethod
    def is_temporal_key(key: str) -> bool:
        return any(f".{name}." in f".{key}" for name in TEMPORAL_MODULE_NAMES)

    def temporal_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the temporal layers (``attn_temp``, ``norm_temp``, ``conv_temporal``), kept apart from 2-D weights."""
        return {k: v for k, v in self.state_dict().items() if self.is_temporal_key(k)}

    def load_temporal_state_dict(self, state: Mapping[str, torch.Tensor], *, source: str = "temporal weights") -> None:
        """Strictly load :meth:`temporal_state_dict`-style weights; other weights are untouched."""
        own = self.temporal_state_dict()
        check_keys(own.keys(), state.keys(), what="temporal layers of the FYP UNet", source=source)
        check_shapes(own, state, what="temporal layers of the FYP UNet", source=source)
        result = self.load_state_dict(dict(state), strict=False)
        assert not result.unexpected_keys, result.unexpected_keys

    def trainable_modules(self, names: Iterable[str] = DEFAULT_TRAINABLE) -> list[nn.Parameter]:
        """Parameters of every module whose name ends with one of ``names`` (the reference's rule)."""
        names = tuple(names)
        params: dict[int, nn.Parameter] = {}
        for module_name, module in self.named_modules():
            if module_name.endswith(names):
                for p in module.parameters():
                    params.setdefault(id(p), p)
        return list(params.values())


__all__ = ["FollowYourPoseUNet", "unet_config_from_reference", "REFERENCE_BLOCK_NAMES", "DEFAULT_TRAINABLE"]
