"""Tiny random Follow-Your-Pose models in the official release layout (offline smoke tests, CI).

``write_tiny_followyourpose(OUT)`` writes ``OUT/checkpoints/{stable-diffusion-v1-4/{unet,vae,text_encoder,
tokenizer,scheduler}, followyourpose_checkpoint-1000/pytorch_model.bin, pose_encoder.pth}`` with the same
file formats as the real release (``.bin`` tensor dicts, legacy VAE names, transformers-4.x text keys,
slow-tokenizer vocabulary), so every loading path runs exactly as with the real weights, in seconds.

Sizes: UNet channels (8, 16, 16, 16) with SD's block types (3 cross-attention down blocks), 2 heads,
text width 16; VAE with 4 blocks (scale factor 8); a byte-level CLIP tokenizer that covers any prompt
through its 256 byte symbols (no merges, so every character is a token).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from posevid.models import TINY_SEED

TINY_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16, 16, 16),
    layers_per_block=2,
    norm_num_groups=4,
    cross_attention_dim=16,
    attention_head_dim=2,
)
TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 8, 16, 16),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    sample_size=512,
)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2/CLIP order)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = {b: b for b in printable}, 0
    for b in range(256):
        if b not in codes:
            codes[b] = 256 + extra
            extra += 1
    order = printable + [b for b in range(256) if b not in printable]
    return [chr(codes[b]) for b in order]


def tiny_clip_tokenizer():
    """A ``CLIPTokenizer`` over byte symbols only: ids 0-255 bytes, 256-511 word-final bytes, then BOS, EOS."""
    from transformers import CLIPTokenizer

    symbols = byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + 256 for i, s in enumerate(symbols)})
    vocab[BOS], vocab[EOS] = 512, 513
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_followyourpose_components(seed: int = TINY_SEED) -> dict:
    """Random tiny ``vae``, ``text_encoder``, ``tokenizer``, ``unet``, ``scheduler`` (the global RNG is untouched)."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    from posevid.models.fyp_unet import FollowYourPoseUNet

    tokenizer = tiny_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = FollowYourPoseUNet(**TINY_UNET)
        with torch.no_grad():  # conv_temporal starts as identity; make it matter so the path is exercised
            for name, param in unet.named_parameters():
                if name.endswith("conv_temporal.up.weight"):
                    param.normal_(0.0, 0.02)
        vae = AutoencoderKL(**TINY_VAE)
        text_config = CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=16,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        text_encoder = CLIPTextModel(text_config)
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        set_alpha_to_one=False, steps_offset=1, clip_sample=False,
    )  # fmt: skip
    return dict(vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer, unet=unet.eval(), scheduler=scheduler)


def tiny_example_command(model: str | os.PathLike) -> str:
    """A ``generate`` run on the tiny model that finishes in seconds (64x64, 8 frames, 4 steps) from a repo checkout."""
    return (
        f"posevid generate --model {model} --prompt 'a robot dancing' --pose examples/dance_skeleton.mp4 "
        "--frames 8 --stride 2 --height 64 --width 64 --steps 4 --out tiny.mp4"
    )


def write_tiny_followyourpose(out_dir: str | os.PathLike, seed: int = TINY_SEED, *, overwrite: bool = False) -> Path:
    """Write a tiny random FYP model in the official release layout; returns ``out_dir`` (holding ``checkpoints/``)."""
    from posevid.models.loading import save_followyourpose_reference

    out = save_followyourpose_reference(tiny_followyourpose_components(seed), out_dir, overwrite=overwrite)
    (out / "README.txt").write_text(
        f"Tiny RANDOM Follow-Your-Pose model (seed {seed}) written by `posevid make-tiny`, in the official release layout.\n"
        "It produces noise-like videos: use it to smoke-test an install or in tests, e.g. (seconds, from the repository root)\n"
        f"  {tiny_example_command(out)}\n",
        encoding="utf-8",
    )
    return out


__all__ = [
    "TINY_UNET",
    "TINY_VAE",
    "byte_symbols",
    "tiny_clip_tokenizer",
    "tiny_example_command",
    "tiny_followyourpose_components",
    "write_tiny_followyourpose",
]
