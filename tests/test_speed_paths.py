"""Speed/memory execution paths leave Follow-Your-Pose outputs unchanged (fp32).

The golden tensors come from the reference code (``tests/fixtures/fyp_tiny_pipeline``). A golden UNet
call costs seconds at its 64x64-latent size, so the golden is checked once with every exact option on at
the same time (chunked attention, channels_last, split CFG, model offload hooks); each option is then
compared with the plain path alone on a small clip, with tight tolerances.
"""

from __future__ import annotations

import pytest
import torch

from posevid.models.attention_fast import AttentionOptions, FastSparseCausalAttnProcessor, attend, configure_attention
from posevid.pipelines.memory import RunOptions, apply_run_options, low_memory, run_options_from_settings
from posevid.pipelines.windowing import predict_noise


def _features(unet, pose, rows):
    with torch.no_grad():
        return [f.expand(rows, *f.shape[1:]) for f in unet.encode_pose(pose)]


@pytest.fixture
def small_inputs():
    g = torch.Generator().manual_seed(3)
    return {
        "x": torch.randn(2, 4, 5, 8, 8, generator=g),
        "text": torch.randn(2, 77, 16, generator=g),
        "pose": torch.rand(1, 5, 3, 64, 64, generator=g),
    }


def _eps(pipe, inputs, **kwargs):
    feats = _features(pipe.unet, inputs["pose"], 2)
    with torch.no_grad():
        return predict_noise(pipe.unet, inputs["x"], inputs.get("t", 500), inputs["text"], feats, branches=2, **kwargs)


def test_all_exact_options_together_reproduce_the_reference_unet_call(make_tiny_pipe, golden_step0_inputs, single_thread):
    pipe = make_tiny_pipe()
    apply_run_options(pipe, RunOptions(attention="chunked", attention_chunk=512, channels_last=True, split_cfg=True, offload="model"))
    g = golden_step0_inputs
    calls = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        eps = _eps(pipe, {"x": g["model_in"], "t": g["t"], "text": g["text"], "pose": g["pose"]}, split_cfg=True)
    finally:
        handle.remove()
    assert calls == [1, 1]  # split CFG: two batch-1 calls
    assert all(isinstance(b.attn1.processor, FastSparseCausalAttnProcessor) for b in pipe.unet.modules() if hasattr(b, "attn_temp"))
    torch.testing.assert_close(eps, g["expected"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "backend, chunk, tol",
    [("chunked", 16, 0.0), ("chunked", None, 0.0), ("math", None, 1e-5), ("math", 16, 1e-5)],
)
def test_attention_backends_equal_sdpa(make_tiny_pipe, small_inputs, backend, chunk, tol, single_thread):
    pipe = make_tiny_pipe()
    ref = _eps(pipe, small_inputs)  # stock processors
    configure_attention(pipe.unet, backend, chunk)
    out = _eps(pipe, small_inputs)
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
    configure_attention(pipe.unet, "sdpa")
    torch.testing.assert_close(_eps(pipe, small_inputs), ref, atol=0, rtol=0)  # fast sdpa processors == stock ones, bit for bit


def test_attend_chunks_equal_one_call():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (37, 50, 50))
    ref = attend(q, k, v, 8**-0.5, AttentionOptions("sdpa"))
    for backend in ("chunked", "math"):
        out = attend(q, k, v, 8**-0.5, AttentionOptions(backend, query_chunk=10))
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown attention backend"):
        AttentionOptions("flash")


def test_split_cfg_and_channels_last_equal_plain(make_tiny_pipe, small_inputs, single_thread):
    pipe = make_tiny_pipe()
    ref = _eps(pipe, small_inputs)
    torch.testing.assert_close(_eps(pipe, small_inputs, split_cfg=True), ref, atol=1e-6, rtol=1e-5)
    apply_run_options(pipe, RunOptions(channels_last=True))
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_eps(pipe, small_inputs), ref, atol=1e-5, rtol=1e-5)


def test_model_offload_equals_plain_pipeline(make_tiny_pipe, fyp_skeleton_path, single_thread):
    kwargs = dict(pose=fyp_skeleton_path, video_length=3, frame_stride=2, height=64, width=64, num_inference_steps=2, seed=1)
    ref = make_tiny_pipe()("a dancer", **kwargs).videos
    pipe = make_tiny_pipe()
    apply_run_options(pipe, RunOptions(offload="model"), device="cpu")  # accelerate hooks; on a GPU they move models
    assert hasattr(pipe.unet, "_hf_hook")
    torch.testing.assert_close(torch.from_numpy(pipe("a dancer", **kwargs).videos), torch.from_numpy(ref), atol=0, rtol=0)


def test_vae_slicing_and_tiling_on_the_decode_golden(make_tiny_pipe, fyp_pipeline_golden, single_thread):
    pipe = make_tiny_pipe()
    latents = fyp_pipeline_golden["step2_latents_after"]
    expected = fyp_pipeline_golden["video_f32_center_crop"]
    with torch.no_grad():
        plain = pipe.decode_latents(latents, 4)
        torch.testing.assert_close(plain[..., 224:288, 224:288], expected, atol=1e-4, rtol=1e-4)
        # One image per VAE call (slicing) or per decode chunk: the golden still holds (batch size changes rounding only).
        apply_run_options(pipe, RunOptions(vae_slicing=True))
        sliced = pipe.decode_latents(latents, 4)
        torch.testing.assert_close(sliced[..., 224:288, 224:288], expected, atol=1e-4, rtol=1e-4)
        # Tiling with tiles as large as the frame is a no-op; smaller tiles blend seams (approximate by design).
        apply_run_options(pipe, RunOptions(vae_tiling=True))
        first = latents[:, :, :1]
        torch.testing.assert_close(pipe.decode_latents(first, 1), sliced[:, :, :1], atol=1e-6, rtol=1e-6)
        pipe.vae.tile_sample_min_size, pipe.vae.tile_latent_min_size = 256, 32
        tiled = pipe.decode_latents(first, 1)
    assert tiled.shape == sliced[:, :, :1].shape and torch.isfinite(tiled).all()
    assert (tiled - sliced[:, :, :1]).abs().mean() < 0.05  # seams differ, the picture does not


def test_processors_survive_the_unets_guard(make_tiny_pipe, small_inputs, single_thread):
    pipe = make_tiny_pipe()
    options = configure_attention(pipe.unet, "chunked", 16)
    _eps(pipe, small_inputs)  # forward runs _ensure_video_processors
    procs = [b.attn1.processor for b in pipe.unet.modules() if hasattr(b, "attn_temp")]
    assert procs and all(isinstance(p, FastSparseCausalAttnProcessor) and p.options is options for p in procs)
    # a stock processor swap is still caught and undone (sparse-causal attention would be lost otherwise)
    from diffusers.models.attention_processor import AttnProcessor2_0

    pipe.unet.set_attn_processor(AttnProcessor2_0())
    _eps(pipe, small_inputs)
    assert not any(type(b.attn1.processor) is AttnProcessor2_0 for b in pipe.unet.modules() if hasattr(b, "attn_temp"))


def test_low_memory_preset_and_cli_option_mapping():
    opts = low_memory(device="cuda")
    assert (opts.attention, opts.split_cfg, opts.vae_tiling, opts.decode_chunk_size, opts.offload, opts.window) == (
        "chunked", True, True, 1, "model", 24,
    )  # fmt: skip
    assert low_memory(device="cpu").offload == "none"
    opts = run_options_from_settings({"low_memory": True, "window": 16, "attention": "sdpa"}, "cpu")
    assert (opts.window, opts.attention, opts.split_cfg) == (16, "sdpa", True)  # explicit flags beat the preset
    from posevid.errors import InputError

    with pytest.raises(InputError, match="needs a GPU"):
        run_options_from_settings({"offload": "model"}, "cpu")
    with pytest.raises(InputError, match="decode-chunk"):
        run_options_from_settings({"decode_chunk": 0}, "cpu")


def test_run_options_are_defined_once():
    """GenerateSettings' speed/memory fields are RunOptions' (one list, one rename), unset by default, so RunOptions'
    defaults are the ones that apply and the ones ``posevid generate --help`` states."""
    import argparse
    from dataclasses import fields

    from posevid.commands._flags import add_run_arguments
    from posevid.pipelines.memory import SETTING_NAMES
    from posevid.tasks.common import record_of
    from posevid.tasks.generate import GenerateSettings

    settings = {f.name: f.default for f in fields(GenerateSettings)}
    for option in fields(RunOptions):
        name = SETTING_NAMES.get(option.name, option.name)
        assert settings[name] is (False if option.type == "bool" else None), name
    assert run_options_from_settings(record_of(GenerateSettings()), "cpu") == RunOptions()
    given = GenerateSettings(decode_chunk=3, overlap=4, split_cfg=True)
    assert run_options_from_settings(record_of(given), "cpu") == RunOptions(decode_chunk_size=3, overlap=4, split_cfg=True)
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions}
    run = RunOptions()
    assert f"default {run.decode_chunk_size}" in helps["decode_chunk"] and f"default {run.overlap}" in helps["overlap"]
    assert f"default {run.attention}" in helps["attention"] and f"default {run.offload}" in helps["offload"]
    assert f"default {run.window_weighting}" in helps["window_weighting"]
