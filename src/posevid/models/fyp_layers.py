"""The video-specific pieces of the Follow-Your-Pose UNet, as small deltas over diffusers modules.

The UNet runs with the frames of each clip folded into the batch, ``(b*f, c, h, w)``. Everything that is
per-frame (convs, the transformer's input GroupNorm, cross-attention, feed-forward) is then the stock
diffusers code. What is *not* per-frame in the reference lives here:

* :class:`ClipGroupNorm` — resnet ``norm1``/``norm2`` and ``conv_norm_out`` normalise over all frames of
  a clip (the reference applies ``nn.GroupNorm`` to the 5-D ``(b, c, f, h, w)`` tensor);
* :class:`SparseCausalAttnProcessor` — ``attn1``: frame *i* attends to frame 0 and frame *i-1*;
* :class:`FollowYourPoseTransformerBlock` — the stock block followed by temporal self-attention
  (``norm_temp``/``attn_temp``) and the temporal conv bottleneck (``conv_temporal``).

The number of frames reaches the attention code as the ``num_frames`` cross-attention kwarg, and the
GroupNorms through a :class:`FrameInfo` object shared with the UNet (resnets get no kwargs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

# Name parts of the layers that FYP adds to SD; used to split temporal from 2-D weights.
TEMPORAL_MODULE_NAMES = ("attn_temp", "norm_temp", "conv_temporal")


@dataclass
class FrameInfo:
    """Frames per clip of the batch being processed; set by the UNet before every forward.

    It is read again when gradient checkpointing recomputes a block during backward, so it stays set
    after the forward returns.
    """

    num_frames: int | None = None


def _frames_of(batch: int, num_frames: int | None, what: str) -> int:
    if num_frames is None:
        raise ValueError(f"{what} needs the number of frames: call it through FollowYourPoseUNet, or pass num_frames")
    if num_frames < 1 or batch % num_frames:
        raise ValueError(f"{what}: batch of {batch} folded frames is not a multiple of num_frames={num_frames}")
    return num_frames


class ClipGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics span every frame of a clip, as in the reference's 5-D GroupNorm.

    Input is ``(b*f, c, h, w)``; the frames are unfolded to ``(b, c, f, h, w)`` so that ``F.group_norm``
    reduces over (channels-in-group x frames x h x w) in the same memory order as the reference.
    With one frame this is exactly ``nn.GroupNorm``.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *, frames: FrameInfo) -> None:
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)
        self.frames = frames

    @classmethod
    def like(cls, norm: nn.GroupNorm, frames: FrameInfo) -> ClipGroupNorm:
        """A clip-wide twin of ``norm``: same groups, eps and (unless on the meta device) parameters."""
        new = cls(norm.num_groups, norm.num_channels, norm.eps, norm.affine, frames=frames)
        if norm.affine and norm.weight.device.type != "meta":
            new.to(device=norm.weight.device, dtype=norm.weight.dtype).load_state_dict(norm.state_dict())
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = _frames_of(x.shape[0], self.frames.num_frames, "ClipGroupNorm")
        if f == 1:
            return super().forward(x)
        bf, c, *spatial = x.shape
        clip = x.reshape(bf // f, f, c, *spatial).transpose(1, 2)  # (b, c, f, h, w)
        out = F.group_norm(clip.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
        return out.transpose(1, 2).reshape(bf, c, *spatial)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", over all frames of a clip"


class FrameAwareAttnProcessor(AttnProcessor2_0):
    """Stock SDPA attention that declares ``num_frames`` so diffusers neither drops it with a warning
    nor passes it on. Used for ``attn2`` (cross-attention is per frame) and ``attn_temp`` (the block has
    already regrouped tokens so that the sequence axis is the frame axis)."""

    def __call__(  # type: ignore[override]
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


class SparseCausalAttnProcessor:
    """``attn1`` of FYP: queries of frame *i* attend to the tokens of frame 0 and of frame *i-1*.

    The reference's "previous frame" list is ``[0, 0, 1, ..., f-2]``, so frame 0 attends to [K0; K0]
    (identical to attending to K0), frame 1 to [K0; K0] (only frame 0, not itself), frame i >= 2 to
    [K0; K(i-1)], never to itself. Keys/values are projected once per frame (the last frame is never a
    key and is skipped) and gathered into a ``(b*f, 2*d, C)`` set for a single fused SDPA call; the
    attention matrix itself is never materialised. The attention mask is ignored, as in the reference.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int | None = None,
        **kwargs,
    ) -> torch.Tensor:
        bf, d, c = hidden_states.shape
        f = _frames_of(bf, num_frames, "sparse-causal attention")
        b, heads = bf // f, attn.heads

        query = attn.to_q(hidden_states)
        sources = hidden_states.view(b, f, d, c)[:, : max(f - 1, 1)]  # frames that serve as keys
        key, value = attn.to_k(sources), attn.to_v(sources)  # (b, f', d, inner)
        anchor_k, anchor_v = self.anchor_key_value(key[:, :1], value[:, :1], b)
        previous = torch.tensor([0] + list(range(f - 1)), device=key.device)
        inner = key.shape[-1]
        key = torch.cat([anchor_k.expand(b, f, d, inner), key.index_select(1, previous)], dim=2)
        value = torch.cat([anchor_v.expand(b, f, d, inner), value.index_select(1, previous)], dim=2)

        dh = inner // heads
        query = query.view(bf, d, heads, dh).transpose(1, 2)
        key = key.reshape(bf, 2 * d, heads, dh).transpose(1, 2)
        value = value.reshape(bf, 2 * d, heads, dh).transpose(1, 2)
        out = self.attend(query, key, value, attn.scale)
        out = out.transpose(1, 2).reshape(bf, d, inner).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor

    # Hooks for subclasses (posevid.models.attention_fast): where the anchor frame's K/V come from, and
    # which attention kernel runs. The defaults are the reference's behaviour with one fused SDPA call.
    def anchor_key_value(self, key: torch.Tensor, value: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K/V ``(b, 1, d, inner)`` of the anchor frame; by default this clip's frame 0."""
        return key, value

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        return F.scaled_dot_product_attention(query, key, value, scale=scale)


class TemporalConv(nn.Module):
    """``conv_temporal``: ``x + up(down(x))`` along frames, two bias-free k=3 Conv1d, no activation.

    Rank ``r = rank`` unless ``rank > channels``, then ``channels // 2`` (the reference's rule). ``down``
    starts N(0, 1/r) (std 1/r), ``up`` at zero, so a freshly inflated model is the 2-D model.
    """

    def __init__(self, channels: int, rank: int = 160) -> None:
        super().__init__()
        r = rank if rank <= channels else channels // 2
        self.down = nn.Conv1d(channels, r, kernel_size=3, padding=1, bias=False)
        self.up = nn.Conv1d(r, channels, kernel_size=3, padding=1, bias=False)
        nn.init.normal_(self.down.weight, std=1.0 / r)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, channels, frames)``."""
        return x + self.up(self.down(x))


class FollowYourPoseTransformerBlock(BasicTransformerBlock):
    """Stock ``BasicTransformerBlock`` (sparse-causal attn1, attn2, ff) + temporal attention + temporal conv.

    Created by :meth:`inflate` from the block diffusers builds, so every SD weight keeps its name. The
    forward signature is the stock one: gradient checkpointing calls blocks positionally.
    """

    @classmethod
    def inflate(cls, block: BasicTransformerBlock, temporal_conv_rank: int = 160) -> FollowYourPoseTransformerBlock:
        """Turn a stock block into an FYP block in place (adds ``norm_temp``, ``attn_temp``, ``conv_temporal``)."""
        block.__class__ = cls
        block.build_temporal_layers(temporal_conv_rank)
        return block

    def build_temporal_layers(self, temporal_conv_rank: int = 160) -> None:
        """(Re)create ``norm_temp``, ``attn_temp``, ``conv_temporal`` with the reference's initialisation."""
        dim = self.dim
        # heads and dim_head as attn1 (the reference reuses them); LayerNorm eps 1e-5; q/k/v without bias.
        self.norm_temp = nn.LayerNorm(dim, eps=1e-5)
        self.attn_temp = Attention(
            query_dim=dim, heads=self.num_attention_heads, dim_head=self.attention_head_dim, bias=self.attention_bias
        )
        self.conv_temporal = TemporalConv(dim, temporal_conv_rank)
        self.set_video_processors()

    def set_video_processors(self) -> None:
        self.attn1.set_processor(SparseCausalAttnProcessor())
        if self.attn2 is not None:
            self.attn2.set_processor(FrameAwareAttnProcessor())
        self.attn_temp.set_processor(FrameAwareAttnProcessor())

    def has_video_processors(self) -> bool:
        """False when something (``set_attn_processor``, xformers, fused QKV, slicing) replaced ours."""
        # isinstance: subclasses (posevid.models.attention_fast: chunked/math back-ends, window anchors) are ours too.
        ok = isinstance(self.attn1.processor, SparseCausalAttnProcessor) and isinstance(self.attn_temp.processor, FrameAwareAttnProcessor)
        return ok and (self.attn2 is None or isinstance(self.attn2.processor, FrameAwareAttnProcessor))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        timestep: torch.LongTensor | None = None,
        cross_attention_kwargs: dict | None = None,
        class_labels: torch.LongTensor | None = None,
        added_cond_kwargs: dict | None = None,
    ) -> torch.Tensor:
        hidden_states = super().forward(
            hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask, timestep,
            cross_attention_kwargs, class_labels, added_cond_kwargs,
        )  # fmt: skip
        bf, d, c = hidden_states.shape
        f = _frames_of(bf, (cross_attention_kwargs or {}).get("num_frames"), "temporal attention")
        b = bf // f

        # Temporal self-attention over the f frames at every spatial position: no positional encoding, no mask.
        x = hidden_states.view(b, f, d, c).transpose(1, 2).reshape(b * d, f, c)
        x = self.attn_temp(self.norm_temp(x), num_frames=f) + x
        # Temporal conv bottleneck, after the attention residual, no norm.
        x = self.conv_temporal(x.transpose(1, 2)).transpose(1, 2)
        return x.reshape(b, d, f, c).transpose(1, 2).reshape(bf, d, c)
