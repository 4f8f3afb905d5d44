"""CLIP-based scores: frame consistency, text alignment, image alignment.

Definitions (all on L2-normalised CLIP projection embeddings, reported x100 like the CLIP score used by
Tune-A-Video / Follow-Your-Pose, so 100 = identical direction):

* ``clip_consistency``: mean cosine between the embeddings of consecutive frames (t, t+1);
* ``clip_text_alignment``: mean over frames of cos(frame, prompt). No clamping at 0 and no 2.5 factor
  (unlike Hessel et al.'s CLIPScore), so values are comparable with the FYP/Tune-A-Video tables;
* ``clip_image_alignment``: mean over frames of cos(frame, reference image) (DreamPose: does the
  generated person still look like the input photo).

Frames are preprocessed as ``CLIPImageProcessor`` does: bicubic resize of the short side to the model's
input size, centre crop, scale to [0, 1], normalise with the folder's ``preprocessor_config.json``
mean/std (OpenAI's constants when absent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from posevid.errors import CheckpointError, short_reason
from posevid.eval.defaults import EVAL_DEFAULTS
from posevid.utils.hub import resolve_model_path
from posevid.utils.progress import quiet_transformers

DEFAULT_CLIP = EVAL_DEFAULTS.clip
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _features(output) -> torch.Tensor:
    """transformers < 5 returns a tensor from ``get_*_features``; 5.x returns an output whose pooler is projected."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


def _check_full_clip(folder: Path) -> None:
    """A vision-only (or text-only) folder would load with random weights for the missing half: refuse it first."""
    config = folder / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return  # from_pretrained reports a missing or unreadable config in its own words
    if model_type not in (None, "clip"):
        raise CheckpointError(
            f"{folder} holds a {model_type}, not a full CLIP model (vision + text)",
            hint=f"the CLIP scores need both towers: pass a CLIPModel folder with --clip, e.g. a copy of {DEFAULT_CLIP}",
        )


class ClipScorer:
    """Embeds frames and text with a transformers ``CLIPModel`` folder or hub id."""

    def __init__(self, spec: str | os.PathLike = DEFAULT_CLIP, *, device: str = "cpu", batch_size: int = EVAL_DEFAULTS.batch_size) -> None:
        from transformers import CLIPModel, CLIPTokenizer

        folder = resolve_model_path(
            spec, what="CLIP model", allow_patterns=["*.json", "*.txt", "*.safetensors"],
            how_to_get=f"pass a local CLIP folder (CLIPModel.save_pretrained layout) with --clip, or cache {DEFAULT_CLIP} once online",
        )  # fmt: skip
        _check_full_clip(Path(folder))
        try:
            with quiet_transformers():
                self.model = CLIPModel.from_pretrained(folder).to(device).eval().requires_grad_(False)
        except Exception as exc:
            reason = short_reason(exc)
            raise CheckpointError(f"cannot load a CLIP model from {folder}: {reason}", hint="pass a CLIPModel folder with --clip") from None
        self.folder = Path(folder)
        self._tokenizer_cls = CLIPTokenizer
        self._tokenizer = None
        self.device = device
        self.batch_size = batch_size
        self.size = int(self.model.config.vision_config.image_size)
        mean, std = _OPENAI_MEAN, _OPENAI_STD
        pre = self.folder / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def _preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        from PIL import Image

        out = []
        for frame in frames:
            img = Image.fromarray(np.asarray(frame, dtype=np.uint8))
            w, h = img.size
            s = self.size / min(w, h)
            img = img.resize((max(self.size, round(w * s)), max(self.size, round(h * s))), Image.BICUBIC)
            left, top = (img.size[0] - self.size) // 2, (img.size[1] - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
            out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1))
        return (torch.stack(out) - self.mean) / self.std

    @torch.no_grad()
    def embed_images(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """``(T, D)`` unit-norm image embeddings."""
        chunks = []
        for i in range(0, len(frames), self.batch_size):
            pixels = self._preprocess(frames[i : i + self.batch_size]).to(self.device)
            chunks.append(_features(self.model.get_image_features(pixel_values=pixels)).float().cpu())
        emb = torch.cat(chunks)
        return emb / emb.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def embed_text(self, text: str) -> torch.Tensor:
        """``(D,)`` unit-norm text embedding (truncated to the model's 77 tokens)."""
        if self._tokenizer is None:
            try:
                self._tokenizer = self._tokenizer_cls.from_pretrained(self.folder)
            except Exception as exc:
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise CheckpointError(
                    f"no CLIP tokenizer in {self.folder}: {reason}", hint="the --clip folder needs vocab.json and merges.txt"
                ) from None
        max_len = int(self.model.config.text_config.max_position_embeddings)
        ids = self._tokenizer(text, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        out = self.model.get_text_features(input_ids=ids.input_ids.to(self.device), attention_mask=ids.attention_mask.to(self.device))
        emb = _features(out)
        emb = emb[0].float().cpu()
        return emb / emb.norm()


def consistency_per_frame(emb: torch.Tensor) -> np.ndarray:
    """100 x cos(frame t, frame t+1) for t = 0..T-2."""
    return (100.0 * (emb[:-1] * emb[1:]).sum(-1)).numpy().astype(np.float64)


def alignment_per_frame(emb: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """100 x cos(frame t, target) for every frame."""
    return (100.0 * emb @ target.flatten()).numpy().astype(np.float64)
