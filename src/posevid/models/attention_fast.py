"""Attention back-ends for the Follow-Your-Pose UNet: SDPA, query-chunked SDPA, explicit "math", and an
anchor-frame cache for windowed long-video sampling.

Why a second set of processors? The stock ones (:mod:`posevid.models.fyp_layers`) run one fused
``scaled_dot_product_attention`` call per layer, which is the fastest choice on a GPU and on a CPU with
enough memory. Two needs are not covered there:

* **memory** — when SDPA cannot use a fused kernel (fp16 on CPU, old GPUs, some masks) it materialises the
  whole ``(batch, heads, queries, keys)`` score matrix; the temporal attention's batch is ``b * h * w``
  positions. Chunking the queries (attn1/attn2) or the positions (attn_temp) bounds that peak; each chunk
  is an independent exact computation, so the output is the same up to kernel rounding;
* **windows** — sampling a long video in overlapping windows must keep frame 0 *of the whole video* as the
  sparse-causal anchor of every window (the reference model was trained with frame 0 as the anchor). The
  window that holds frame 0 records frame 0's keys/values at every ``attn1`` layer (:class:`AnchorState`,
  ``mode="record"``); the other windows, run afterwards in the same denoising step, attend to those
  recorded keys/values (``mode="use"``) instead of their own first frame. A window that contains every
  frame is the plain path, bit for bit.

In ``mode="use"`` the window's first frame (global index ``s > 0``) attends to [anchor; itself] because its
previous frame ``s - 1`` lies outside the window; with overlapping windows and triangular fusion weights
that frame gets the smallest weight, and the neighbouring window supplies the better estimate.

Install with :func:`configure_attention`; the UNet accepts these processors as its own (they subclass
the stock ones), so its "processors were replaced" guard does not undo them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from posevid.models.fyp_layers import FollowYourPoseTransformerBlock, FrameAwareAttnProcessor, SparseCausalAttnProcessor

BACKENDS = ("sdpa", "chunked", "math")
DEFAULT_QUERY_CHUNK = 1024


@dataclass
class AnchorState:
    """Frame-0 keys/values of every ``attn1`` layer, shared across the windows of one denoising step.

    ``mode``: ``None`` (plain sparse-causal attention), ``"record"`` (this window's first frame is the video's
    frame 0: store its K/V), ``"use"`` (attend to the stored K/V instead of the window's first frame).
    ``branch`` names the classifier-free-guidance branch being run ("all", "uncond", "cond"), so that
    split-CFG passes of batch 1 never mix with batched ones.
    """

    mode: str | None = None
    branch: str = "all"
    store: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def clear(self) -> None:
        self.store.clear()

    def put(self, layer: object, key: torch.Tensor, value: torch.Tensor) -> None:
        self.store[(id(layer), self.branch)] = (key, value)

    def get(self, layer: object, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            key, value = self.store[(id(layer), self.branch)]
        except KeyError:
            raise RuntimeError("anchor K/V not recorded: run the window holding frame 0 first (mode='record')") from None
        if key.shape[0] != batch:
            raise RuntimeError(f"anchor K/V were recorded for batch {key.shape[0]} but this call has batch {batch}")
        return key, value


@dataclass
class AttentionOptions:
    """Shared by all processors of one UNet: change the fields to switch behaviour without re-installing."""

    backend: str = "sdpa"
    query_chunk: int | None = None
    anchor: AnchorState = field(default_factory=AnchorState)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown attention backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.query_chunk is not None and self.query_chunk < 1:
            raise ValueError(f"query_chunk must be >= 1, got {self.query_chunk}")


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, options: AttentionOptions) -> torch.Tensor:
    """Softmax attention on ``(batch, heads, n, dh)`` tensors with the chosen back-end.

    ``math`` is the reference's formula (scores, softmax in the input dtype, weighted sum), chunked over
    queries when ``query_chunk`` is set; ``chunked`` runs SDPA per query chunk (default 1024 queries).
    """
    if options.backend == "sdpa":
        return F.scaled_dot_product_attention(query, key, value, scale=scale)
    chunk = options.query_chunk or (DEFAULT_QUERY_CHUNK if options.backend == "chunked" else query.shape[2])
    if options.backend == "chunked" and chunk >= query.shape[2]:
        return F.scaled_dot_product_attention(query, key, value, scale=scale)
    out = torch.empty_like(query[..., :1].expand(*query.shape[:-1], value.shape[-1]))
    for start in range(0, query.shape[2], chunk):
        q = query[:, :, start : start + chunk]
        if options.backend == "chunked":
            out[:, :, start : start + chunk] = F.scaled_dot_product_attention(q, key, value, scale=scale)
        else:
            scores = torch.matmul(q, key.transpose(-1, -2)) * scale
            out[:, :, start : start + chunk] = torch.matmul(scores.softmax(dim=-1), value)
    return out


class FastSparseCausalAttnProcessor(SparseCausalAttnProcessor):
    """Sparse-causal ``attn1`` (frame i -> frames 0 and i-1) with selectable back-end and an external anchor.

    Keys/values are projected once per frame; the per-frame key set ``[K_anchor; K_prev]`` is built with an
    ``expand`` view for the anchor and one gather for the previous frames (the same tensors as the stock
    processor, so ``sdpa`` without an anchor is bit-identical to it).
    """

    def __init__(self, options: AttentionOptions) -> None:
        self.options = options

    def anchor_key_value(self, key: torch.Tensor, value: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.options.anchor
        if state.mode == "record":  # copies: a view would keep the whole window's K/V alive until the step ends
            state.put(self, key.clone(), value.clone())
        elif state.mode == "use":
            return state.get(self, batch)
        return key, value

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        return attend(query, key, value, scale, self.options)


class FastFrameAwareAttnProcessor(FrameAwareAttnProcessor):
    """``attn2`` / ``attn_temp`` with selectable back-end. ``sdpa`` defers to the stock processor (identical)."""

    def __init__(self, options: AttentionOptions) -> None:
        self.options = options

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
        if self.options.backend == "sdpa" or attention_mask is not None or attn.spatial_norm is not None or attn.group_norm is not None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, num_frames, *args, **kwargs)
        batch, n, _ = hidden_states.shape
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        inner = key.shape[-1]
        dh = inner // attn.heads
        query = query.view(batch, -1, attn.heads, dh).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, dh).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, dh).transpose(1, 2)
        if n >= key.shape[2] or self.options.backend == "math":
            out = attend(query, key, value, attn.scale, self.options)
        else:
            # Temporal attention: few queries (frames) but a batch of b*h*w positions -> chunk the batch.
            rows = max(1, (self.options.query_chunk or DEFAULT_QUERY_CHUNK) * 16 // max(n, 1))
            out = torch.cat(
                [F.scaled_dot_product_attention(query[i : i + rows], key[i : i + rows], value[i : i + rows], scale=attn.scale)
                 for i in range(0, batch, rows)]
            )  # fmt: skip
        out = out.transpose(1, 2).reshape(batch, -1, inner).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def video_blocks(unet: torch.nn.Module) -> list[FollowYourPoseTransformerBlock]:
    return [m for m in unet.modules() if isinstance(m, FollowYourPoseTransformerBlock)]


def configure_attention(unet: torch.nn.Module, backend: str | None = None, query_chunk: int | None = None) -> AttentionOptions:
    """Install (once) the fast processors in every FYP transformer block and set their options.

    Returns the shared :class:`AttentionOptions` (also at ``unet.attention_options``); calling again only
    updates the given fields. ``backend=None`` keeps the current one (``sdpa`` at first install).
    """
    options: AttentionOptions | None = getattr(unet, "attention_options", None)
    if options is None:
        options = AttentionOptions()
        unet.attention_options = options
    if backend is not None:
        options.backend = backend
    if query_chunk is not None:
        options.query_chunk = query_chunk
    AttentionOptions.__post_init__(options)
    for block in video_blocks(unet):
        if not (isinstance(block.attn1.processor, FastSparseCausalAttnProcessor) and block.attn1.processor.options is options):
            block.attn1.set_processor(FastSparseCausalAttnProcessor(options))
            if block.attn2 is not None:
                block.attn2.set_processor(FastFrameAwareAttnProcessor(options))
            block.attn_temp.set_processor(FastFrameAwareAttnProcessor(options))
    return options


__all__ = [
    "BACKENDS",
    "AnchorState",
    "AttentionOptions",
    "FastFrameAwareAttnProcessor",
    "FastSparseCausalAttnProcessor",
    "attend",
    "configure_attention",
]
