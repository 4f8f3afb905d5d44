"""DreamPose model pieces: 14-channel UNet construction, adapter sizes, loaders, posevid folder round trip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from posevid.errors import CheckpointError, InputError
from posevid.models.dreampose import (
    EmbeddingAdapter,
    build_dreampose_unet,
    is_posevid_folder,
    load_clip_image_encoder,
    load_dreampose_components,
    save_dreampose,
)
from posevid.pipelines.dreampose import SCHEDULERS, make_scheduler, minmax_stretch

SMALL_SD = dict(
    block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    layers_per_block=1, norm_num_groups=4, cross_attention_dim=12, attention_head_dim=2, sample_size=8,
)  # fmt: skip


def test_build_dreampose_unet_from_sd_keeps_sd_behaviour():
    torch.manual_seed(0)
    sd = UNet2DConditionModel(**SMALL_SD).eval()
    unet = build_dreampose_unet(sd).eval()
    assert unet.config.in_channels == 14 and unet.conv_in.weight.shape[1] == 14
    torch.testing.assert_close(unet.conv_in.weight[:, :4], sd.conv_in.weight, atol=0, rtol=0)  # channel 3 kept too
    assert unet.conv_in.weight[:, 4:].abs().sum() == 0
    torch.testing.assert_close(unet.conv_in.bias, sd.conv_in.bias, atol=0, rtol=0)
    z, ctx = torch.randn(1, 4, 8, 8), torch.randn(1, 5, 12)
    pose = torch.rand(1, 10, 8, 8) * 2 - 1
    with torch.no_grad():
        ref = sd(z, 10, encoder_hidden_states=ctx).sample
        out = unet(torch.cat([z, pose], 1), 10, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)  # zero pose channels: exactly SD at start
    ref_init = build_dreampose_unet(sd, reference_bias_init=True)
    assert not torch.equal(ref_init.conv_in.bias, sd.conv_in.bias)
    assert build_dreampose_unet(SMALL_SD, n_poses=3).config.in_channels == 10


def test_adapter_init_and_size_coupling():
    a = EmbeddingAdapter()
    torch.testing.assert_close(a.linear1.weight, torch.eye(50, 54))
    assert a.vae2clip.in_features == 1280
    clip = torch.randn(1, 50, 768)
    assert a(clip, torch.randn(1, 4, 80, 64)).shape == (1, 50, 768)
    assert a(clip, torch.zeros(1, 4, 64, 80)).shape == (1, 50, 768)  # the reference's swapped unconditional latent fits
    with pytest.raises(InputError, match="expects 1280"):
        a(clip, torch.randn(1, 4, 64, 64))
    assert EmbeddingAdapter(latent_size=(64, 64)).vae2clip.in_features == 1024


def test_posevid_folder_round_trip(tmp_path, tiny_dreampose_release):
    comps = load_dreampose_components(tiny_dreampose_release, custom_vae=tiny_dreampose_release / "vae_1499.pth")
    out = save_dreampose(comps, tmp_path / "saved")
    assert is_posevid_folder(out) and not is_posevid_folder(tiny_dreampose_release)
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pth"))
    assert '"in_channels": 14' in (out / "unet" / "config.json").read_text()
    back = load_dreampose_components(out)
    for name in ("unet", "vae", "adapter", "image_encoder"):
        a, b = getattr(comps, name).state_dict(), getattr(back, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_release_errors_are_one_line(tmp_path, tiny_dreampose_release):
    rel = tmp_path / "rel"
    shutil.copytree(tiny_dreampose_release, rel)
    shutil.copy(rel / "unet_epoch_499.pth", rel / "unet_epoch_20.pth")
    with pytest.raises(CheckpointError, match=r"several epochs \[20, 499\]"):
        load_dreampose_components(rel)
    with pytest.raises(CheckpointError, match="no matching adapter_20.pth"):
        load_dreampose_components(rel, epoch=20)
    shutil.rmtree(rel / "clip")  # no local CLIP and no hub: clear offline error
    with pytest.raises(CheckpointError) as err:
        load_dreampose_components(rel, epoch=499, clip=str(tmp_path / "missing_clip"))
    assert "\n" not in str(err.value) and "CLIP image encoder not found" in str(err.value)


def test_clip_hub_id_offline_is_a_one_line_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(CheckpointError, match="openai/clip-vit-base-patch32") as err:
        load_clip_image_encoder("openai/clip-vit-base-patch32")
    assert "\n" not in str(err.value)


def test_schedulers_and_stretch():
    from diffusers import DDIMScheduler, PNDMScheduler

    from posevid.models.tiny_dreampose import SD14_SCHEDULER_CONFIG

    for name in SCHEDULERS:
        make_scheduler(name, SD14_SCHEDULER_CONFIG).set_timesteps(4)
    ddim = make_scheduler("DDIM", SD14_SCHEDULER_CONFIG)
    assert isinstance(ddim, DDIMScheduler) and ddim.config.clip_sample is False
    pndm = make_scheduler("pndm", SD14_SCHEDULER_CONFIG)
    pndm.set_timesteps(100)
    assert isinstance(pndm, PNDMScheduler) and pndm.timesteps[:4].tolist() == [991, 981, 981, 971] and len(pndm.timesteps) == 101
    with pytest.raises(InputError, match="unknown scheduler"):
        make_scheduler("magic", SD14_SCHEDULER_CONFIG)
    a = np.array([[[10, 20, 30]], [[40, 50, 60]]], np.uint8)
    np.testing.assert_array_equal(minmax_stretch(a), (255 * ((a - 10) / 50)).astype(np.uint8))
    assert minmax_stretch(np.full((2, 2, 3), 7, np.uint8)).max() == 0  # constant frame: zeros, not NaN garbage


def test_clip_from_a_full_clip_model_folder(tmp_path):
    """The hub's openai/clip-vit-base-patch32 is a full CLIPModel (text tower too): only the vision tower is kept."""
    from transformers import CLIPConfig, CLIPModel

    from posevid.models.tiny_dreampose import CLIP_PROCESSOR_CONFIG

    vision = dict(hidden_size=32, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=4)
    text = dict(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, vocab_size=50)
    torch.manual_seed(0)
    full = CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=8)).eval()
    full.save_pretrained(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(__import__("json").dumps(CLIP_PROCESSOR_CONFIG))
    model, processor = load_clip_image_encoder(tmp_path / "clip")
    px = processor(images=np.zeros((40, 30, 3), np.uint8), return_tensors="pt")["pixel_values"]
    assert px.shape == (1, 3, 28, 28)
    with torch.no_grad():
        ours = model(pixel_values=px).last_hidden_state
        ref = full.vision_model(pixel_values=px).last_hidden_state
    assert ours.shape == (1, 50, 32)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
