"""Fixtures for the evaluation tests: a real Charades cut, a degraded copy, tiny random metric networks.

The networks are built with the same classes ``posevid eval`` loads and saved in the accepted file
formats (torch ``.pth`` and ``.safetensors`` state dicts, a ``CLIPModel.save_pretrained`` folder), so the
tests exercise the real loading code. They are random: they check plumbing and orderings, not values.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

EVAL_PROMPT = "a man and a woman going down the stairs"


def degrade(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """Blur + noise + jitter (random per-frame shifts and a few swapped neighbour frames)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        g = cv2.GaussianBlur(f, (0, 0), 3.0).astype(np.float32)
        g += rng.normal(0, 25, g.shape)
        dx, dy = rng.integers(-6, 7, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        g = cv2.warpAffine(np.clip(g, 0, 255).astype(np.uint8), m, (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REFLECT)
        out.append(g)
    out = np.stack(out)
    for t in range(1, len(out) - 1, 7):
        out[[t, t + 1]] = out[[t + 1, t]]
    return out


@pytest.fixture(scope="session")
def eval_clip_path(fixtures_dir) -> Path:
    return fixtures_dir / "eval" / "charades_5D3X6_cut.mp4"


@pytest.fixture(scope="session")
def eval_videos(tmp_path_factory, eval_clip_path) -> dict[str, Path]:
    """Folders ``clean/``, ``degraded/`` and ``reference/``, each holding ``clip.mp4``."""
    from posevid.video import read_frames, write_video

    root = tmp_path_factory.mktemp("eval_videos")
    for name in ("clean", "reference"):
        (root / name).mkdir()
        shutil.copy(eval_clip_path, root / name / "clip.mp4")
    frames = read_frames(eval_clip_path)
    write_video(root / "degraded" / "clip.mp4", degrade(frames), fps=16, crf=18)
    return {"root": root, "clean": root / "clean", "degraded": root / "degraded", "reference": root / "reference", "frames": frames}


def _tiny_clip(folder: Path, tokenizer_dir: Path, frames: np.ndarray) -> Path:
    """Random tiny CLIP whose text projection maps EVAL_PROMPT onto the clean clip's mean image embedding.

    Random weights give no meaning to "text alignment"; this makes the prompt describe the clean clip, so
    that a degraded copy must align worse, while every line of the scoring code stays the real one. One
    vision layer with zeroed class/position embeddings makes the image embedding a function of the image
    content (with the default random init every image embeds within ~0.5 % of every other); the clean >
    degraded orderings held for each of the 6 seeds tried.
    """
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=77, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=64, patch_size=8),
        projection_dim=16,
    )  # fmt: skip
    model = CLIPModel(cfg).eval()
    with torch.no_grad():  # let image content, not the random class/position embeddings, dominate the image embedding
        model.vision_model.embeddings.class_embedding.zero_()
        model.vision_model.embeddings.position_embedding.weight.zero_()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    from posevid.eval.clip import ClipScorer

    scorer = ClipScorer(folder)
    target = scorer.embed_images(list(frames)).mean(0)
    ids = tok(EVAL_PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        pooled = model.text_model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).pooler_output[0]
        model.text_projection.weight.copy_(torch.outer(target, pooled) / pooled.dot(pooled))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def eval_weights(tmp_path_factory, fixtures_dir, eval_videos) -> dict[str, Path]:
    """Tiny random LPIPS (lin .pth + torchvision-layout backbone .pth), FID Inception (.pth), I3D (.safetensors), CLIP folder."""
    import torch
    from safetensors.torch import save_file

    from posevid.eval.nets import LPIPS, FIDInceptionV3, InceptionI3d

    root = tmp_path_factory.mktemp("eval_weights")
    torch.manual_seed(0)

    def he_init(net):  # default init shrinks activations layer after layer until features are ~0; He init keeps them alive
        for mod in net.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Conv3d)):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        return net

    lp = he_init(LPIPS("alex", width=0.25))
    state = lp.state_dict()
    torch.save({k: v.abs() for k, v in state.items() if k.startswith("lin")}, root / "lpips_alex_lin.pth")  # real lin weights are >= 0
    torch.save({k: v for k, v in state.items() if k.startswith("features.")}, root / "alexnet_backbone.pth")
    torch.save(he_init(FIDInceptionV3(width=1 / 16)).state_dict(), root / "pt_inception_tiny.pth")
    save_file({k: v.contiguous() for k, v in he_init(InceptionI3d(width=1 / 16)).state_dict().items()}, str(root / "i3d_tiny.safetensors"))
    clip = _tiny_clip(root / "clip", fixtures_dir / "eval" / "clip_tokenizer", eval_videos["frames"])
    return {
        "lpips": root / "lpips_alex_lin.pth",
        "lpips_backbone": root / "alexnet_backbone.pth",
        "inception": root / "pt_inception_tiny.pth",
        "i3d": root / "i3d_tiny.safetensors",
        "clip": clip,
    }


@pytest.fixture(scope="session")
def eval_keypoints(tmp_path_factory, eval_clip_path) -> Path:
    """Conditioning keypoints of the clean clip, made with ``posevid.pose.extract_keypoints`` (mediapipe)."""
    from posevid.pose import extract_keypoints

    path = tmp_path_factory.mktemp("eval_pose") / "keypoints.json"
    extract_keypoints(eval_clip_path, progress=False).save(path)
    return path
