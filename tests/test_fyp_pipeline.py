"""Follow-Your-Pose pipeline: parity with the reference pipeline (golden), batching, CFG, errors.

The golden ``fyp_tiny_pipeline`` was produced by the reference code on a miniature copy of the official
release layout; the pipeline is loaded from that layout through the public loader, exactly as a user
would load the real release.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posevid.errors import InputError
from posevid.pipelines.followyourpose import SCHEDULERS, FollowYourPosePipeline
from posevid.pipelines.fyp_pose_input import cover_size, prepare_pose, resize_cover_crop

PROMPT = "a man dancing on the beach"


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    from safetensors.torch import load_file

    return load_file(str(fixtures_dir / "fyp_tiny_pipeline" / "pipeline_io.safetensors"))


@pytest.fixture(scope="module")
def skeleton_path(fixtures_dir):
    return fixtures_dir / "fyp_tiny_pipeline" / "skeleton_256_ffv1.avi"


@pytest.fixture(scope="module")
def pipe(fixtures_dir):
    pipe = FollowYourPosePipeline.from_release(fixtures_dir / "fyp_tiny_pipeline" / "release_layout")
    pipe.set_progress_bar_config(disable=True)
    return pipe


class UNetCalls:
    """Counts UNet forwards and remembers their batch sizes and outputs."""

    def __init__(self, unet):
        self.batches: list[int] = []
        self.outputs: list[torch.Tensor] = []
        self.handle = unet.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.batches.append(args[0].shape[0])
        self.outputs.append((output.sample if hasattr(output, "sample") else output[0]).detach().clone())

    def close(self):
        self.handle.remove()


# ------------------------------------------------------------------------------------------- pose input
def test_pose_reader_matches_reference_skeleton_tensor(golden, skeleton_path):
    pose = prepare_pose(skeleton_path, video_length=4, stride=5, height=512, width=512)
    assert pose.shape == (1, 4, 3, 512, 512)
    torch.testing.assert_close(pose[:, :, :, 160:224, 224:288], golden["skeleton_unet_input_crop"], atol=0, rtol=0)
    assert abs(pose.double().sum().item() - 83576.09502745792) < 1e-2  # full-tensor sum from the golden's meta.json


def test_cover_size_is_torchvision_014_resize_for_squares():
    # shorter side -> size, longer side int(size * long / short)
    assert cover_size(1080, 1920, 512, 512) == (512, int(512 * 1920 / 1080))
    assert cover_size(1084, 1080, 512, 512) == (int(512 * 1084 / 1080), 512)
    assert cover_size(368, 640, 512, 512) == (512, 890)
    # non-square targets cover both sides
    assert cover_size(256, 256, 384, 640) == (640, 640)
    assert cover_size(1080, 1920, 384, 640) == (384, 682)


def test_center_crop_offsets_use_bankers_rounding():
    # a 1x1 input with values = column index: a width of 515 -> crop 512 needs offset round(1.5) = 2
    x = torch.arange(515, dtype=torch.float32).view(1, 1, 1, 515).expand(1, 1, 512, 515)
    out = resize_cover_crop(x, 512, 512)
    assert out[0, 0, 0, 0].item() == 2.0
    x = torch.arange(517, dtype=torch.float32).view(1, 1, 1, 517).expand(1, 1, 512, 517)
    assert resize_cover_crop(x, 512, 512)[0, 0, 0, 0].item() == 2.0  # round(2.5) = 2


def test_antialias_is_opt_in(skeleton_path):
    sharp = prepare_pose(skeleton_path, video_length=2, stride=1, height=64, width=64)
    smooth = prepare_pose(skeleton_path, video_length=2, stride=1, height=64, width=64, antialias=True)
    assert not torch.equal(sharp, smooth)
    expected = torch.nn.functional.interpolate(
        prepare_pose(skeleton_path, video_length=2, stride=1, height=256, width=256)[0] * 255, size=(64, 64), mode="bilinear"
    )
    torch.testing.assert_close(sharp[0] * 255, expected, atol=1e-3, rtol=0)


def test_too_short_skeleton_video_states_the_maximum(skeleton_path):
    with pytest.raises(InputError) as err:
        prepare_pose(skeleton_path, video_length=8, stride=5, height=64, width=64)
    msg = str(err.value)
    assert "\n" not in msg
    assert "20 frame(s)" in msg and "needs 36" in msg
    assert "maximum video_length at stride 5 is 4" in msg and "maximum stride for 8 frames is 2" in msg


def test_a_probed_video_is_read_without_probing_again(skeleton_path, monkeypatch):
    """A VideoInfo stands for its file: the pose read opens the video once, with the same pixels as from the path."""
    import av

    from posevid.pipelines.fyp_pose_input import FilePoseFrames
    from posevid.video import probe_video

    info = probe_video(skeleton_path)
    expected = prepare_pose(skeleton_path, video_length=3, stride=2, height=64, width=64)
    real_open, opened = av.open, []
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    torch.testing.assert_close(prepare_pose(info, video_length=3, stride=2, height=64, width=64), expected, atol=0, rtol=0)
    streamed = FilePoseFrames(info, video_length=3, stride=2, height=64, width=64)
    torch.testing.assert_close(streamed.window(0, 3), expected, atol=0, rtol=0)
    streamed.close()
    assert opened == [str(skeleton_path)] * 2


def test_a_header_that_promises_too_many_frames_is_caught_with_the_real_count(skeleton_path):
    """A frame count from the container that decoding does not bear out (an estimate, a truncated file) must still
    end in the too-short message, naming the 20 frames that really decode, not the header's 500."""
    import dataclasses

    from posevid.video import probe_video

    lying = dataclasses.replace(probe_video(skeleton_path), num_frames=500)
    with pytest.raises(InputError, match=r"has 20 frame\(s\) but video_length 8 at stride 5 needs 36"):
        prepare_pose(lying, video_length=8, stride=5, height=64, width=64)


def test_seed_gives_the_reference_cpu_noise(golden):
    from posevid.pipelines.followyourpose import initial_noise

    torch.testing.assert_close(initial_noise((1, 4, 4, 64, 64), None, 33), golden["init_latents"], atol=0, rtol=0)


# ------------------------------------------------------------------------------------------- golden parity
def test_golden_reference_pipeline_parity(pipe, golden, skeleton_path):
    tok = pipe.tokenizer
    ids = tok([PROMPT, ""], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    assert torch.equal(ids[:1], golden["prompt_input_ids"]) and torch.equal(ids[1:], golden["uncond_input_ids"])
    with torch.no_grad():
        text = torch.cat([pipe._encode_text([""], pipe.device), pipe._encode_text([PROMPT], pipe.device)])
    torch.testing.assert_close(text, golden["text_embeddings_uncond_cond"], atol=1e-5, rtol=1e-5)

    steps: list[torch.Tensor] = []
    calls = UNetCalls(pipe.unet)
    try:
        out = pipe(
            PROMPT,
            pose=skeleton_path,
            video_length=4,
            frame_stride=5,
            height=512,
            width=512,
            num_inference_steps=3,
            guidance_scale=12.5,
            latents=golden["init_latents"],
            callback_on_step_end=lambda i, t, latents: steps.append(latents.clone()),
        )
    finally:
        calls.close()
    assert calls.batches == [2, 2, 2]  # uncond + cond, one UNet call per step
    torch.testing.assert_close(out.pose[:, :, :, 160:224, 224:288], golden["skeleton_unet_input_crop"], atol=0, rtol=0)
    torch.testing.assert_close(calls.outputs[0], golden["step0_unet_out_uncond_cond"], atol=1e-4, rtol=1e-4)
    for i in range(3):
        ref = golden[f"step{i}_latents_after"]
        rel = ((steps[i] - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-4, f"step {i}: relative error {rel:.2e}"
    video = torch.from_numpy(out.videos).permute(0, 4, 1, 2, 3)  # (b, f, H, W, 3) -> reference (b, 3, f, H, W)
    assert video.shape == (1, 3, 4, 512, 512)
    torch.testing.assert_close(video[..., 224:288, 224:288], golden["video_f32_center_crop"], atol=1e-4, rtol=1e-4)
    as_uint8 = (video.numpy() * 255).astype(np.uint8)
    diff = np.abs(as_uint8.astype(np.int16) - golden["video_uint8"].numpy().astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


# ------------------------------------------------------------------------------------------- batching, CFG
def _small(pipe, skeleton_path, **kwargs):
    args = dict(pose=skeleton_path, video_length=3, frame_stride=2, height=64, width=64, num_inference_steps=2, guidance_scale=7.5)
    args.update(kwargs)
    return pipe(**args)


def test_batch_of_prompts_and_videos_equals_single_calls(pipe, skeleton_path):
    prompts = [PROMPT, "a robot on the moon"]
    latents = torch.randn((4, 4, 3, 8, 8), generator=torch.Generator().manual_seed(5))
    calls = UNetCalls(pipe.unet)
    try:
        batch = _small(pipe, skeleton_path, prompt=prompts, num_videos_per_prompt=2, latents=latents, output_type="pt").videos
    finally:
        calls.close()
    assert calls.batches == [8, 8]  # 2 prompts x 2 videos x (uncond, cond)
    assert batch.shape == (4, 3, 3, 64, 64)
    for k in range(4):
        single = _small(pipe, skeleton_path, prompt=prompts[k // 2], latents=latents[k : k + 1], output_type="pt").videos
        torch.testing.assert_close(batch[k : k + 1], single, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch[0], batch[2], atol=1e-3)  # different prompts, different videos


def test_guidance_one_runs_a_single_branch(pipe, skeleton_path):
    calls = UNetCalls(pipe.unet)
    try:
        out = _small(pipe, skeleton_path, prompt=PROMPT, guidance_scale=1.0, seed=3, output_type="latent").videos
    finally:
        calls.close()
    assert calls.batches == [1, 1]
    assert out.shape == (1, 4, 3, 8, 8) and torch.isfinite(out).all()


def test_text_and_pose_are_encoded_once_per_call(pipe, skeleton_path, monkeypatch):
    counts = {"text": 0, "pose": 0}
    encode_text, encode_pose = pipe._encode_text, pipe.unet.encode_pose

    def count_text(*a, **k):
        counts["text"] += 1
        return encode_text(*a, **k)

    def count_pose(*a, **k):
        counts["pose"] += 1
        return encode_pose(*a, **k)

    monkeypatch.setattr(pipe, "_encode_text", count_text)
    monkeypatch.setattr(pipe.unet, "encode_pose", count_pose)
    _small(pipe, skeleton_path, prompt=PROMPT, num_inference_steps=3, output_type="latent")
    assert counts == {"text": 2, "pose": 1}  # uncond + cond texts, one pose encoding, for 3 steps


def test_seed_is_reproducible_and_output_types_agree(pipe, skeleton_path):
    a = _small(pipe, skeleton_path, prompt=PROMPT, seed=11, output_type="np").videos
    b = _small(pipe, skeleton_path, prompt=PROMPT, seed=11, output_type="uint8").videos
    c = _small(pipe, skeleton_path, prompt=PROMPT, seed=12, output_type="np").videos
    assert a.shape == (1, 3, 64, 64, 3) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert b.dtype == np.uint8 and np.array_equal(b, (a * 255).astype(np.uint8))  # truncation, as the reference
    assert not np.allclose(a, c)


@pytest.mark.parametrize("name", [s for s in SCHEDULERS if s != "ddim"])
def test_other_schedulers_run(pipe, skeleton_path, name):
    out = _small(pipe, skeleton_path, prompt=PROMPT, video_length=2, seed=0, scheduler=name, output_type="latent").videos
    assert torch.isfinite(out).all()
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"  # the pipeline's own scheduler is untouched


def test_float_pose_tensor_and_uint8_frames_are_accepted(pipe, skeleton_path):
    from posevid.video import read_frames

    frames = read_frames(skeleton_path)  # (20, 256, 256, 3) uint8
    from_array = prepare_pose(frames, video_length=3, stride=2, height=64, width=64)
    from_file = prepare_pose(skeleton_path, video_length=3, stride=2, height=64, width=64)
    torch.testing.assert_close(from_array, from_file, atol=0, rtol=0)
    latents = torch.randn((1, 4, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    a = _small(pipe, skeleton_path, prompt=PROMPT, latents=latents, output_type="latent").videos
    b = _small(pipe, skeleton_path, prompt=PROMPT, pose=from_file[0], latents=latents, output_type="latent").videos
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_save_pretrained_round_trip(pipe, skeleton_path, tmp_path):
    pipe.save_pretrained(tmp_path / "saved")
    again = FollowYourPosePipeline.from_pretrained(tmp_path / "saved")
    again.set_progress_bar_config(disable=True)
    latents = torch.randn((1, 4, 3, 8, 8), generator=torch.Generator().manual_seed(2))
    a = _small(pipe, skeleton_path, prompt=PROMPT, latents=latents, output_type="pt").videos
    b = _small(again, skeleton_path, prompt=PROMPT, latents=latents, output_type="pt").videos
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(height=96), "multiples of 64"),
        (dict(num_videos_per_prompt=0), "num_videos_per_prompt"),
        (dict(prompt=[PROMPT, "x"], latents=torch.zeros(1, 4, 3, 8, 8)), "latents have shape"),
        (dict(prompt=[PROMPT, "x"], negative_prompt=["a", "b", "c"]), "3 negative prompt(s) for 2 prompt(s)"),
        (dict(video_length=12), "maximum video_length at stride 2 is 10"),
        (dict(output_type="gif"), "unknown output_type"),
        (dict(scheduler="lms"), "unknown scheduler"),
    ],
)
def test_bad_arguments_raise_one_line_input_errors(pipe, skeleton_path, kwargs, words):
    args = dict(prompt=PROMPT)
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        _small(pipe, skeleton_path, **args)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_half_precision_keeps_the_vae_in_fp32(fixtures_dir, skeleton_path):
    release = fixtures_dir / "fyp_tiny_pipeline" / "release_layout"
    half = FollowYourPosePipeline.from_release(release, dtype=torch.float16)
    assert half.unet.dtype == torch.float16 and half.text_encoder.dtype == torch.float16
    assert half.vae.dtype == torch.float32  # SD's VAE decoder overflows to NaN in fp16
    bf16 = FollowYourPosePipeline.from_release(release, dtype=torch.bfloat16)
    bf16.set_progress_bar_config(disable=True)
    video = _small(bf16, skeleton_path, prompt=PROMPT, video_length=2, seed=0, output_type="np").videos
    assert video.dtype == np.float32 and np.isfinite(video).all()


def test_non_square_size_covers_and_center_crops_the_pose(pipe, skeleton_path):
    out = _small(pipe, skeleton_path, prompt=PROMPT, video_length=2, height=64, width=128, seed=0, output_type="np")
    assert out.videos.shape == (1, 2, 64, 128, 3) and np.isfinite(out.videos).all()
    square = prepare_pose(skeleton_path, video_length=2, stride=2, height=128, width=128)  # 256x256 -> 128x128
    torch.testing.assert_close(out.pose, square[..., 32:96, :], atol=0, rtol=0)  # then rows round((128 - 64) / 2) = 32 on
