"""A tiny random Wan2.2-Animate model in the diffusers layout, for tests, demos and smoke tests offline.

``write_tiny_wan_animate(OUT)`` writes what ``WanAnimatePipeline.save_pretrained`` writes for the real
``Wan-AI/Wan2.2-Animate-14B-Diffusers`` (``model_index.json`` + ``tokenizer/ text_encoder/ image_encoder/
image_processor/ vae/ transformer/ scheduler/``, weights as safetensors), so every loading path runs as with
the real weights, and a two-segment video generates on a CPU in well under a second.

The components follow diffusers' own tiny test pipeline for Wan-Animate (sizes of the transformer, VAE and
4-dim CLIP vision tower), with the release's classes where the test differs, and nothing from the hub:

* the text encoder is a ``UMT5EncoderModel`` built from a small config (the release's class) instead of a
  downloaded tiny T5; the tokenizer is a word-level ``tokenizers`` model trained in memory on a few prompt
  words (any other word becomes ``<unk>``), wrapped in ``PreTrainedTokenizerFast``;
* the image encoder is a ``CLIPVisionModel`` (the release's class and the one the pipeline's signature names;
  the test's ``CLIPVisionModelWithProjection`` makes diffusers warn about an unexpected type);
* the scheduler is the release's: flow-matching UniPC with shift 5;
* ``model_index.json`` names the tokenizer and image processor by the classes every transformers version knows
  (:data:`PORTABLE_CLASSES`).

Every weight is random and seeded: the same seed writes the same tensors; outputs are noise, only the
plumbing is real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from posevid.models import TINY_SEED

# diffusers' tiny test transformer (tests/pipelines/wan/test_wan_animate.py), sizes only, but for the RoPE table.
TINY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=36,
    latent_channels=16,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=4,
    rope_max_seq_len=1024,  # the release's; diffusers' test uses 32, which caps frames at 512 pixels (crash at 528)
    motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16},
    motion_encoder_size=16,
    motion_style_dim=8,
    motion_dim=4,
    motion_encoder_dim=16,
    face_encoder_hidden_dim=16,
    face_encoder_num_heads=2,
    inject_face_latents_blocks=2,
)
TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
TINY_TEXT_ENCODER = dict(d_model=32, d_kv=16, d_ff=37, num_layers=2, num_heads=2, relative_attention_num_buckets=8)
TINY_IMAGE_ENCODER = dict(
    hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=4, intermediate_size=16, patch_size=1
)
# The release's scheduler (diffusers' conversion script: UniPC, flow prediction, flow sigmas, shift 5 for Animate).
SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=5.0)

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"  # ids 0, 1, 2: T5's order
VOCAB_TEXT = (
    "a person dancing in a room with a red shirt, blue jeans and white shoes; the man the woman walks turns jumps "
    "waves arms legs hands face smiles camera video high quality realistic detailed blurry low worst static"
)


def tiny_wan_tokenizer(max_length: int = 512):
    """A word-level tokenizer trained in memory (lower-cased words, ``</s>`` appended like T5); no download."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([VOCAB_TEXT], trainer=WordLevelTrainer(special_tokens=[PAD, EOS, UNK], min_frequency=1, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=max_length)


def tiny_wan_animate_components(seed: int = TINY_SEED) -> dict:
    """The seven components of a ``WanAnimatePipeline``, tiny and random (the global RNG is left untouched)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanAnimateTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    from posevid.utils.progress import quiet_transformers

    tokenizer = tiny_wan_tokenizer()
    with quiet_transformers():  # without torchvision, CLIPImageProcessor says it falls back to its PIL twin
        from transformers import CLIPImageProcessor

        image_processor = CLIPImageProcessor(crop_size=4, size=4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = WanAnimateTransformer3DModel(**TINY_TRANSFORMER)
        vae = AutoencoderKLWan(**TINY_VAE)
        text_config = UMT5Config(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **TINY_TEXT_ENCODER
        )
        text_encoder = UMT5EncoderModel(text_config)
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_IMAGE_ENCODER))
    return dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder.eval(),
        vae=vae.eval(),
        scheduler=UniPCMultistepScheduler(**SCHEDULER),
        image_processor=image_processor,
        image_encoder=image_encoder.eval(),
        transformer=transformer.eval(),
    )


def tiny_wan_animate_pipeline(seed: int = TINY_SEED):
    """A ``WanAnimatePipeline`` of :func:`tiny_wan_animate_components` (in memory, nothing written)."""
    from diffusers import WanAnimatePipeline

    return WanAnimatePipeline(**tiny_wan_animate_components(seed))


def write_tiny_wan_animate(out_dir: str | os.PathLike, seed: int = TINY_SEED) -> Path:
    """Write the tiny pipeline with ``save_pretrained`` (safetensors) into ``out_dir`` and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from posevid.utils.progress import quiet_transformers

    with quiet_transformers():  # no per-shard "Writing model shards" bars for 100 kB files
        tiny_wan_animate_pipeline(seed).save_pretrained(out, safe_serialization=True)
    _portable_class_names(out)
    info = {"kind": "wan-animate", "seed": seed, "face_size": TINY_TRANSFORMER["motion_encoder_size"], "size_multiple": 16}
    (out / "posevid_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "README.txt").write_text(
        f"Tiny RANDOM Wan2.2-Animate model (seed {seed}) written by `posevid make-tiny --kind wan-animate`, in the diffusers\n"
        "layout of Wan-AI/Wan2.2-Animate-14B-Diffusers. It produces noise: use it to smoke-test an install or in tests.\n"
        "Load it like the real folder:\n"
        f"  from posevid.pipelines.wan_animate import load_wan_animate; pipe = load_wan_animate({str(out)!r})\n",
        encoding="utf-8",
    )
    return out


# What save_pretrained records under transformers 5 without torchvision -> the names every transformers version loads
# (transformers 5 still has both; 4.x has neither "TokenizersBackend" nor "CLIPImageProcessorPil").
PORTABLE_CLASSES = {"tokenizer": "PreTrainedTokenizerFast", "image_processor": "CLIPImageProcessor"}


def _portable_class_names(out: Path) -> None:
    index_path = out / "model_index.json"
    index = json.loads(index_path.read_text())
    for component, class_name in PORTABLE_CLASSES.items():
        index[component] = ["transformers", class_name]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    tok_path = out / "tokenizer" / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    tok["tokenizer_class"] = PORTABLE_CLASSES["tokenizer"]
    tok_path.write_text(json.dumps(tok, indent=2) + "\n")


__all__ = [
    "SCHEDULER",
    "TINY_TRANSFORMER",
    "TINY_VAE",
    "tiny_wan_animate_components",
    "tiny_wan_animate_pipeline",
    "tiny_wan_tokenizer",
    "write_tiny_wan_animate",
]
