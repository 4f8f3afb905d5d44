"""DreamPose parity with the reference code: adapter + UNet forward, and the whole pipeline (3 frames).

Everything is loaded through the public loader from a reference-layout release (``.pth`` with ``module.``,
old VAE attention names, transformers-4 CLIP keys, stale ``in_channels: 4``), see ``tests/plugins/dreampose.py``.
Tolerances: ``tests/fixtures/../golden`` README (adapter 1e-5, UNet 1e-4, pipeline 1e-4, uint8 <= 1 LSB).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from plugins.tolerance import assert_uint8_close, max_relative_error


def _f32(d):
    return {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in d.items()}


@pytest.fixture(scope="module")
def golden_components(dreampose_golden_release):
    from posevid.models.dreampose import load_dreampose_components

    return load_dreampose_components(dreampose_golden_release, epoch=0)


def test_adapter_and_unet_match_reference(golden_components, fixtures_dir):
    inputs = load_file(fixtures_dir / "dreampose_tiny" / "inputs.safetensors")
    outputs = load_file(fixtures_dir / "dreampose_tiny" / "outputs.safetensors")
    adapter, unet = golden_components.adapter, golden_components.unet
    assert unet.config.in_channels == 14  # read from the weights, not the stale checkpoint config
    with torch.no_grad():
        tokens = adapter.vae_tokens(inputs["vae_latent"])
        ctx = adapter(inputs["clip_last_hidden_state"], inputs["vae_latent"])
        sample = torch.cat([inputs["noisy_latents"], inputs["pose"]], dim=1)
        out = unet(sample, inputs["timesteps"], encoder_hidden_states=ctx).sample
        no_pose = unet(
            torch.cat([inputs["noisy_latents"], torch.zeros_like(inputs["pose"])], 1), inputs["timesteps"], encoder_hidden_states=ctx
        )
    torch.testing.assert_close(tokens, outputs["adapter_vae_tokens"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ctx, outputs["encoder_hidden_states"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, outputs["unet_out"], atol=1e-4, rtol=1e-4)
    # negative control: the pose channels matter, so a broken pose path could not pass
    assert (no_pose.sample - outputs["unet_out"]).abs().max() > 1e-3


def test_pipeline_matches_reference_three_frames(golden_components, fixtures_dir):
    from posevid.data.dreampose_poses import DensePoseSequence
    from posevid.pipelines.dreampose import DreamPosePipeline

    gp = fixtures_dir / "dreampose_tiny_pipeline"
    t = _f32(load_file(gp / "tensors.safetensors"))
    c = golden_components
    pipe = DreamPosePipeline(c.vae, c.unet, c.adapter, c.image_encoder, c.image_processor, c.scheduler)
    assert pipe.image_size == (160, 128)
    seq = DensePoseSequence.from_folder(gp / "poses")
    assert {n: seq.window_of(n) for n in seq.frames} == {0: [0, 0, 0, 1, 2], 1: [1, 0, 1, 2, 1], 2: [0, 1, 2, 2, 2]}

    # conditioning pieces of frame 0
    pil, _ = pipe.prepare_image(gp / "key_frame.png")
    np.testing.assert_array_equal(np.asarray(pil), t["input_image_resized_uint8"].numpy())  # exact: PIL resamples uint8 in fixed point
    torch.testing.assert_close(seq.tensor(0, pipe.image_size), t["f0.pose_full"], atol=1e-5, rtol=0)
    clip_c, clip_u, pixels = pipe.clip_embeddings(pil)
    torch.testing.assert_close(pixels["cond"], t["f0.clip_pixel_values_cond"], atol=1e-4, rtol=0)
    torch.testing.assert_close(pixels["uncond"], t["f0.clip_pixel_values_uncond"], atol=1e-4, rtol=0)
    post = pipe.vae_posteriors(pil)
    emb_u, emb_c = pipe.encode_condition(clip_c, clip_u, post, eps_cond=t["f0.vae_eps_cond"], eps_uncond=t["f0.vae_eps_uncond"])
    torch.testing.assert_close(emb_c, t["f0.embeddings_cond"], atol=1e-4, rtol=0)
    torch.testing.assert_close(emb_u, t["f0.embeddings_uncond"], atol=1e-4, rtol=0)

    # whole video with injected noise; step-0 UNet output and init latents captured on the way
    seen = {}
    original_denoise = pipe.denoise

    def spy(z, pose, eu, ec, **kw):
        if "init" not in seen:
            seen["init"] = z.clone()
            seen["pose_latent"] = torch.nn.functional.interpolate(pose, size=tuple(z.shape[-2:]))[0]
            kw["step_callback"] = lambda i, step_t, noise, _z: seen.setdefault(f"noise{i}", noise.clone())
        return original_denoise(z, pose, eu, ec, **kw)

    pipe.denoise = spy
    eps = [{k: t[f"f{i}.vae_eps_{k}"] for k in ("cond", "uncond", "init")} for i in range(3)]
    out = pipe(
        gp / "key_frame.png",
        seq,
        s1=8.0,
        s2=3.0,
        num_inference_steps=3,
        fixed_noise=t["fixed_noise"],
        vae_eps=eps,
        return_latents=True,
        show_progress=False,
    )
    assert pipe.scheduler.timesteps.tolist() == [667, 334, 334, 1]
    torch.testing.assert_close(seen["init"], t["f0.init_latents"], atol=1e-4, rtol=0)
    torch.testing.assert_close(seen["pose_latent"], t["f0.pose_latent"], atol=1e-5, rtol=0)
    torch.testing.assert_close(seen["noise0"], t["f0.step0_noise_pred_3"], atol=1e-4, rtol=0)
    for i in range(3):
        assert max_relative_error(out.latents[i], t[f"f{i}.final_latents"]) <= 1e-4, f"frame {i} final latents"
        for mine, theirs in (
            (out.frames[i], t[f"f{i}.output_pil_uint8"].numpy()),
            (out.frames_stretched[i], np.asarray(Image.open(gp / f"pred_#{i}.png"))),
        ):
            assert_uint8_close(mine, theirs, f"frame {i}")
