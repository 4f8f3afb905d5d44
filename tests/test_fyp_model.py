"""FollowYourPoseUNet against the reference golden (``tests/fixtures/fyp_tiny``), plus negative controls
showing that the golden catches the usual mistakes, and the model-level API (pose, temporal weights)."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from torch import nn

from posevid.errors import CheckpointError, InputError
from posevid.models.convert import fyp_posevid_to_reference, fyp_reference_to_posevid
from posevid.models.fyp_layers import ClipGroupNorm, FrameAwareAttnProcessor, SparseCausalAttnProcessor
from posevid.models.fyp_unet import FollowYourPoseUNet, unet_config_from_reference

TOL = dict(rtol=1e-5, atol=1e-5)
pytestmark = pytest.mark.usefixtures("single_thread")


def _run(unet, io, prefix="", **kwargs):
    skeleton = io["skeleton"] if not prefix else io[f"{prefix}skeleton_uint8"].float() / 255
    kwargs.setdefault("pose", skeleton)
    with torch.no_grad():
        return unet(io[f"{prefix}sample"], io[f"{prefix}timestep"], io[f"{prefix}encoder_hidden_states"], **kwargs).sample


def _max_err(a, b):
    return (a - b).abs().max().item()


# ------------------------------------------------------------------------------------------------ parity
def test_pose_encoder_features_match_reference(fyp_golden_unet, fyp_golden):
    io = fyp_golden["io"]
    assert torch.equal(io["skeleton"], io["skeleton_uint8"].float() / 255)
    with torch.no_grad():
        feats = fyp_golden_unet.encode_pose(io["skeleton"])
    assert len(feats) == 3
    for i, feat in enumerate(feats):
        torch.testing.assert_close(feat, io[f"adapter_feature_{i}"], **TOL)


@pytest.mark.parametrize(
    "golden, prefix, kwargs",
    [("out_sample_mode", "", {}), ("out_train_mode", "", {"inject_pose": False}), ("b2_out_sample_mode", "b2_", {})],
)
def test_unet_matches_reference(fyp_golden_unet, fyp_golden, golden, prefix, kwargs):
    out = _run(fyp_golden_unet, fyp_golden["io"], prefix, **kwargs)
    torch.testing.assert_close(out, fyp_golden["io"][golden], **TOL)


def test_pose_changes_output(fyp_golden):
    io = fyp_golden["io"]
    assert _max_err(io["out_sample_mode"], io["out_train_mode"]) > 0.1  # the golden itself shows a pose effect


def test_precomputed_features_and_no_pose(fyp_golden_unet, fyp_golden):
    io = fyp_golden["io"]
    with torch.no_grad():
        feats = fyp_golden_unet.encode_pose(io["skeleton"])
    torch.testing.assert_close(_run(fyp_golden_unet, io, pose=None, pose_features=feats), io["out_sample_mode"], **TOL)
    # The same features reused for a second call (a sampling loop) still inject: the list is not consumed.
    torch.testing.assert_close(_run(fyp_golden_unet, io, pose=None, pose_features=feats), io["out_sample_mode"], **TOL)
    # No pose at all: no crash (the reference raised), nothing injected.
    torch.testing.assert_close(_run(fyp_golden_unet, io, pose=None), io["out_train_mode"], **TOL)


def test_batch_broadcast_of_pose_and_text(fyp_golden_unet, fyp_golden):
    io = fyp_golden["io"]
    sample = io["sample"].repeat(2, 1, 1, 1, 1)
    with torch.no_grad():
        out = fyp_golden_unet(sample, io["timestep"], io["encoder_hidden_states"], pose=io["skeleton"]).sample
    torch.testing.assert_close(out, io["out_sample_mode"].repeat(2, 1, 1, 1, 1), **TOL)


def test_gradient_checkpointing_still_injects_pose(fyp_golden_unet, fyp_golden):
    """Reference bug h.2: the checkpointed branch skipped the pose features."""
    io = fyp_golden["io"]
    unet = fyp_golden_unet.train()
    unet.enable_gradient_checkpointing()
    sample = io["sample"].clone().requires_grad_(True)
    out = unet(sample, io["timestep"], io["encoder_hidden_states"], pose=io["skeleton"]).sample
    torch.testing.assert_close(out.detach(), io["out_sample_mode"], **TOL)
    out.square().mean().backward()
    assert sample.grad is not None and sample.grad.abs().sum() > 0
    assert all(p.grad is not None for p in unet.pose_encoder.parameters())


# ------------------------------------------------------------------------------------------------ negative controls
def test_per_frame_groupnorm_is_caught(fyp_golden_unet, fyp_golden):
    unet = fyp_golden_unet
    for name, module in list(unet.named_modules()):
        if isinstance(module, ClipGroupNorm):
            plain = nn.GroupNorm(module.num_groups, module.num_channels, module.eps)
            plain.load_state_dict(module.state_dict())
            parent = unet.get_submodule(name.rpartition(".")[0]) if "." in name else unet
            setattr(parent, name.rpartition(".")[2], plain)
    assert _max_err(_run(unet, fyp_golden["io"]), fyp_golden["io"]["out_sample_mode"]) > 1e-2


def test_full_self_attention_is_caught(fyp_golden_unet, fyp_golden, monkeypatch):
    unet = fyp_golden_unet
    monkeypatch.setattr(unet, "_ensure_video_processors", lambda: None)  # disable the guard for this control
    for block in unet._video_blocks:
        block.attn1.set_processor(FrameAwareAttnProcessor())
    assert _max_err(_run(unet, fyp_golden["io"]), fyp_golden["io"]["out_sample_mode"]) > 1e-2


def test_missing_temporal_conv_is_caught(fyp_golden_unet, fyp_golden):
    with torch.no_grad():
        for block in fyp_golden_unet._video_blocks:
            block.conv_temporal.up.weight.zero_()
    assert _max_err(_run(fyp_golden_unet, fyp_golden["io"]), fyp_golden["io"]["out_sample_mode"]) > 1e-2


def test_processor_guard_restores_sparse_causal(fyp_golden_unet, fyp_golden):
    unet = fyp_golden_unet
    unet.set_attn_processor(AttnProcessor2_0())
    torch.testing.assert_close(_run(unet, fyp_golden["io"]), fyp_golden["io"]["out_sample_mode"], **TOL)
    assert all(isinstance(b.attn1.processor, SparseCausalAttnProcessor) for b in unet._video_blocks)


# ------------------------------------------------------------------------------------------------ structure
def test_single_frame_with_identity_temporal_layers_is_sd(fyp_golden_unet, fyp_golden):
    """With f = 1, zero attn_temp output and identity conv_temporal, the video UNet is SD's 2-D UNet."""
    unet = fyp_golden_unet
    with torch.no_grad():
        for block in unet._video_blocks:
            block.attn_temp.to_out[0].weight.zero_()
            block.attn_temp.to_out[0].bias.zero_()
            block.conv_temporal.up.weight.zero_()
    sd_config = unet_config_from_reference(fyp_golden["config"]["unet"])
    unet2d = UNet2DConditionModel(**sd_config).eval()
    spatial = {k: v for k, v in unet.state_dict().items() if not k.startswith("pose_encoder.") and not unet.is_temporal_key(k)}
    unet2d.load_state_dict(spatial, strict=True)
    io = fyp_golden["io"]
    sample, ehs = io["sample"][:, :, :1], io["encoder_hidden_states"]
    with torch.no_grad():
        feats = [f[:, :, 0] for f in unet.encode_pose(io["skeleton"][:, :1])]
        ours = unet(sample, io["timestep"], ehs, pose=io["skeleton"][:, :1]).sample[:, :, 0]
        ref = unet2d(sample[:, :, 0], io["timestep"], ehs, down_intrablock_additional_residuals=feats).sample
    torch.testing.assert_close(ours, ref, **TOL)


def test_state_dict_names_and_converter_round_trip(fyp_golden_unet, fyp_golden):
    ours = fyp_golden_unet.state_dict()
    assert set(fyp_posevid_to_reference(ours)) == set(fyp_golden["state"])
    assert set(fyp_reference_to_posevid({"module." + k: v for k, v in fyp_golden["state"].items()})) == set(ours)


def test_temporal_rank_rule_and_init():
    unet = FollowYourPoseUNet(
        block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1, norm_num_groups=8,
        cross_attention_dim=8, attention_head_dim=2, sample_size=8,
    )  # fmt: skip
    ranks = {b.dim: b.conv_temporal.down.out_channels for b in unet._video_blocks}
    assert ranks == {16: 8, 32: 16}  # 160 > C => C // 2
    assert all(b.conv_temporal.up.weight.abs().sum() == 0 for b in unet._video_blocks)  # identity at init
    assert all(b.attn_temp.to_out[0].weight.abs().sum() > 0 for b in unet._video_blocks)  # not zero-init (reference)
    assert [a.out_channels for a in (unet.pose_encoder.adapter.conv_in,)] == [16]  # derived from block_out_channels


def test_temporal_state_dict_round_trip(fyp_golden_unet, fyp_golden):
    temporal = fyp_golden_unet.temporal_state_dict()
    assert temporal and all(("_temp" in k) or ("conv_temporal" in k) for k in temporal)
    assert len(temporal) == 11 * 9  # 11 transformer blocks x (attn_temp 5 + norm_temp 2 + conv_temporal 2)
    fresh = FollowYourPoseUNet(**unet_config_from_reference(fyp_golden["config"]["unet"]))
    before = {k: v.clone() for k, v in fresh.state_dict().items() if not fresh.is_temporal_key(k)}
    fresh.load_temporal_state_dict(temporal)
    after = fresh.state_dict()
    assert all(torch.equal(after[k], v) for k, v in temporal.items())
    assert all(torch.equal(after[k], v) for k, v in before.items())  # 2-D weights untouched
    with pytest.raises(CheckpointError, match="missing"):
        fresh.load_temporal_state_dict({k: v for k, v in list(temporal.items())[1:]})
    bad = dict(temporal)
    key = next(k for k in bad if k.endswith("conv_temporal.down.weight"))
    bad[key] = bad[key][:1]
    with pytest.raises(CheckpointError, match="shape"):
        fresh.load_temporal_state_dict(bad)


def test_trainable_modules_matches_reference_rule(fyp_golden_unet):
    params = fyp_golden_unet.trainable_modules()
    assert len(params) == 11 * 9  # attn1.to_q 1 + attn2.to_q 1 + attn_temp 5 + conv_temporal 2 per block
    names = {id(p): n for n, p in fyp_golden_unet.named_parameters()}
    assert all(names[id(p)].split(".transformer_blocks.0.")[1].startswith(("attn1.to_q", "attn2.to_q", "attn_temp", "conv_temporal"))
               for p in params)  # fmt: skip
    assert len(fyp_golden_unet.trainable_modules(("attn_temp",))) == 11 * 5


def test_odd_latent_size_and_pose_mismatch(fyp_golden_unet, fyp_golden):
    """Latents that are not a multiple of 8 work (reference bug h.7); a wrong pose size is a one-line InputError."""
    unet = fyp_golden_unet
    ehs = fyp_golden["io"]["encoder_hidden_states"]
    sample = torch.randn(1, 4, 3, 7, 9)
    with torch.no_grad():
        out = unet(sample, 10, ehs, pose=torch.rand(1, 3, 3, 56, 72)).sample
    assert out.shape == sample.shape
    with pytest.raises(InputError, match="56x72") as err, torch.no_grad():
        unet(torch.randn(1, 4, 3, 6, 6), 10, ehs, pose=torch.rand(1, 3, 3, 56, 72))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="frames"), torch.no_grad():
        unet(torch.randn(1, 4, 2, 7, 9), 10, ehs, pose=torch.rand(1, 3, 3, 56, 72))


def test_save_pretrained_round_trip(fyp_golden_unet, fyp_golden, tmp_path):
    unet = fyp_golden_unet
    unet.save_pretrained(tmp_path / "unet")
    loaded = FollowYourPoseUNet.from_pretrained(tmp_path / "unet").eval()
    assert loaded.config.temporal_conv_rank == 160 and loaded.config.block_out_channels == unet.config.block_out_channels
    assert isinstance(loaded.conv_norm_out, ClipGroupNorm)
    torch.testing.assert_close(_run(loaded, fyp_golden["io"]), fyp_golden["io"]["out_sample_mode"], **TOL)


def test_full_size_state_dict_matches_reference_key_list(fixtures_dir):
    """At SD-1.4 size (built on the meta device, no memory), every reference key and shape is reproduced:
    868 keys, 998,470,084 parameters (tests/fixtures/fyp_full_keys is the reference model's key list)."""
    import json

    ref = json.loads((fixtures_dir / "fyp_full_keys" / "fyp_state_dict_keys.json").read_text())
    with torch.device("meta"):
        unet = FollowYourPoseUNet(**unet_config_from_reference(ref["unet_config_3d"]))
    ours = {k: list(v.shape) for k, v in fyp_posevid_to_reference(unet.state_dict()).items()}
    assert ours == dict(ref["keys"])
    assert sum(v.numel() for v in unet.state_dict().values()) == ref["total_params"]
    trainable = unet.trainable_modules()
    assert (len(trainable), sum(p.numel() for p in trainable)) == (144, 86_335_680)  # spec §e, the yaml's trainable_modules
