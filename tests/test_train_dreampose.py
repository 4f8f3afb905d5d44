"""DreamPose training with the tiny release: base (UNet + adapter), subject fine-tune, VAE decoder; the exports
load into :class:`DreamPosePipeline` (reference layout and ours) and ``posevid animate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posevid.training.config import build_config
from posevid.training.engine import Trainer
from posevid.training.recipes import get_recipe


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train(recipe_name: str, base: Path, data: Path, out: Path, **overrides):
    values = {
        "pretrained_model_path": str(base),
        "train_data.data_dir": str(data),
        "output_dir": str(out),
        "max_train_steps": 2,
        "checkpointing_steps": 0,
        "validation_steps": 0,
        "report_to": "none",
        "learning_rate": 1e-3,
    }
    values.update(overrides)
    sets = ["train_data.height=160", "train_data.width=128", "validation_data.num_inference_steps=1"]
    cfg = build_config(recipe_name, overrides=values, sets=sets)
    recipe = get_recipe(recipe_name)(cfg)
    result = Trainer(recipe, cfg).run()
    return recipe, result


def _pose(h: int = 160, w: int = 128) -> torch.Tensor:
    uv = torch.zeros(1, 10, h, w) - 1
    uv[:, :, 30:140, 40:90] = 0.3
    return uv


def test_base_training_exports_load_into_pipeline_and_animate(
    tmp_path: Path, dreampose_train_base: Path, ubc_data: Path, examples_dir: Path
) -> None:
    from PIL import Image

    from posevid.cli import main
    from posevid.pipelines.dreampose import DreamPosePipeline
    from posevid.utils.checkpoint import load_state_dict_file

    out = tmp_path / "base"
    recipe, result = _train("dreampose-base", dreampose_train_base, ubc_data, out, dropout_rate=1.0)
    assert result["global_step"] == 2
    release = out / "release"
    names = sorted(p.name for p in release.iterdir())
    assert names == ["adapter_0.pth", "checkpoint-0", "clip", "unet_epoch_0.pth"]
    unet_state = load_state_dict_file(release / "unet_epoch_0.pth")
    assert unet_state["conv_in.weight"].shape[1] == 14 and not any(k.startswith("module.") for k in unet_state)
    trained = {k: v.float() for k, v in recipe.unet.state_dict().items()}
    image = Image.open(examples_dir / "key_frame.png").convert("RGB")
    for folder in (release, out / "posevid"):
        pipe = DreamPosePipeline.from_pretrained(folder)
        assert max(float((pipe.unet.state_dict()[k] - trained[k]).abs().max()) for k in trained) == 0.0
        res = pipe(image, [_pose()], num_inference_steps=1, seed=0, show_progress=False)
        assert np.asarray(res.frames[0]).shape == (160, 128, 3)
    dp = ubc_data.parent / "src" / "video_a"
    rc = main(
        [
            "animate",
            "--model",
            str(release),
            "--image",
            str(examples_dir / "key_frame.png"),
            "--densepose",
            str(dp),
            "--steps",
            "1",
            "--out",
            str(tmp_path / "anim.mp4"),
            "--quiet",
        ]
    )
    assert rc == 0 and (tmp_path / "anim.mp4").stat().st_size > 0


def test_subject_finetune_from_reference_checkpoint(tmp_path: Path, dreampose_train_base: Path, ubc_data: Path) -> None:
    from posevid.models.dreampose import load_dreampose_components

    # the reference --custom_chkpt: unet_epoch_N.pth (DDP 'module.' keys) + adapter_N.pth beside it
    base = load_dreampose_components(dreampose_train_base)
    recipe, result = _train(
        "dreampose-subject",
        dreampose_train_base,
        ubc_data,
        tmp_path / "subject",
        max_train_steps=1,
        init_checkpoint=str(dreampose_train_base / "unet_epoch_499.pth"),
    )
    assert result["global_step"] == 1
    moved = max(float((recipe.unet.state_dict()[k] - v).abs().max()) for k, v in base.unet.state_dict().items())
    assert moved > 0
    assert (tmp_path / "subject" / "release" / "unet_epoch_0.pth").is_file()


def test_vae_decoder_finetune_exports_reference_vae(tmp_path: Path, dreampose_train_base: Path, ubc_data: Path, examples_dir: Path) -> None:
    from PIL import Image

    from posevid.pipelines.dreampose import DreamPosePipeline
    from posevid.utils.checkpoint import load_state_dict_file

    recipe, _ = _train("dreampose-vae", dreampose_train_base, ubc_data, tmp_path / "vae", max_train_steps=1, train_batch_size=2)
    trainable = {n for n, p in recipe.vae.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("decoder.") for n in trainable)  # post_quant_conv and the encoder stay frozen
    vae_file = tmp_path / "vae" / "release" / "vae_0.pth"
    state = load_state_dict_file(vae_file)
    assert any(".query." in k for k in state)  # legacy attention names: loads into the reference --custom_vae
    pipe = DreamPosePipeline.from_pretrained(dreampose_train_base, custom_vae=vae_file)
    for name, p in recipe.vae.named_parameters():
        assert torch.equal(pipe.vae.state_dict()[name], p.detach().float()), name
    res = pipe(Image.open(examples_dir / "key_frame.png").convert("RGB"), [_pose()], num_inference_steps=1, seed=0, show_progress=False)
    assert np.asarray(res.frames[0]).shape == (160, 128, 3)


def test_base_from_stable_diffusion_folder_with_validation(tmp_path: Path, dreampose_train_base: Path, ubc_data: Path) -> None:
    """``dreampose-base`` from a plain SD-1.x folder: 14-channel conv_in built from SD's, new adapter, validation PNG."""
    import shutil

    from diffusers import UNet2DConditionModel

    from posevid.models.tiny_dreampose import TINY_UNET_CONFIG

    sd = tmp_path / "sd"
    sd_unet = UNet2DConditionModel(**{**TINY_UNET_CONFIG, "in_channels": 4})
    sd_unet.save_pretrained(sd / "unet")
    for part in ("vae", "scheduler"):
        shutil.copytree(dreampose_train_base / "checkpoint-499" / part, sd / part)
    shutil.copytree(dreampose_train_base / "clip", sd / "clip")
    recipe, result = _train("dreampose-base", sd, ubc_data, tmp_path / "run", max_train_steps=1, validation_steps=1, export=False)
    assert recipe.base_kind == "sd" and result["global_step"] == 1
    assert recipe.unet.conv_in.weight.shape[1] == 14
    assert (tmp_path / "run" / "samples" / "step-1" / "pred_#0.png").is_file()
