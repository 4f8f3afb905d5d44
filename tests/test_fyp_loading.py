"""Loading/saving Follow-Your-Pose models: the reference-made release layout, our format, the reference
layout we write, the tiny model, the CLI commands, and one-line errors for bad checkpoints."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from posevid.cli import main as cli_main
from posevid.errors import CheckpointError
from posevid.models.convert import fyp_reference_to_posevid, vae_legacy_attention_to_current
from posevid.models.loading import load_followyourpose_components, save_followyourpose, save_followyourpose_reference, weights_read
from posevid.utils.checkpoint import load_state_dict_file

pytestmark = pytest.mark.usefixtures("single_thread")
SD = "stable-diffusion-v1-4"
CKPT = "followyourpose_checkpoint-1000/pytorch_model.bin"


@pytest.fixture
def release_copy(fyp_release_fixture: Path, tmp_path: Path) -> Path:
    """A writable copy of the reference-made release; returns the folder holding ``checkpoints/``."""
    shutil.copytree(fyp_release_fixture, tmp_path / "release" / "checkpoints")
    return tmp_path / "release"


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg
    return msg


# ------------------------------------------------------------------------------------------------ official layout
@pytest.mark.parametrize("wrapped", [True, False], ids=["release_dir", "checkpoints_dir"])
def test_release_layout_loads(fyp_release_fixture, fixtures_dir, wrapped):
    model = fyp_release_fixture.parent if wrapped else fyp_release_fixture
    comps = load_followyourpose_components(model)
    assert set(comps) == {"vae", "text_encoder", "tokenizer", "unet", "scheduler"}
    # The FYP checkpoint overrides every UNet tensor (incl. attn1.to_q, which differs in the SD 2-D file).
    ckpt = fyp_reference_to_posevid(load_state_dict_file(fyp_release_fixture / CKPT))
    unet_state = comps["unet"].state_dict()
    assert unet_state.keys() == ckpt.keys() and all(torch.equal(unet_state[k], v) for k, v in ckpt.items())
    sd2d = load_state_dict_file(fyp_release_fixture / SD / "unet" / "diffusion_pytorch_model.bin")
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert not torch.equal(sd2d[key], unet_state[key])
    assert not comps["unet"].training
    # VAE legacy attention names converted; tokenizer/text encoder/scheduler as the reference pipeline saw them.
    vae_ref = vae_legacy_attention_to_current(load_state_dict_file(fyp_release_fixture / SD / "vae" / "diffusion_pytorch_model.bin"))
    assert all(torch.equal(comps["vae"].state_dict()[k], v) for k, v in vae_ref.items())
    io = load_file(str(fixtures_dir / "fyp_tiny_pipeline" / "pipeline_io.safetensors"))
    tok = comps["tokenizer"]
    ids = tok(["", "a man dancing on the beach"], padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids  # fmt: skip
    assert torch.equal(ids, torch.cat([io["uncond_input_ids"], io["prompt_input_ids"]]))
    with torch.no_grad():
        emb = comps["text_encoder"](ids)[0]
    torch.testing.assert_close(emb, io["text_embeddings_uncond_cond"], rtol=1e-5, atol=1e-5)
    sched = comps["scheduler"]
    assert type(sched).__name__ == "DDIMScheduler" and sched.config.steps_offset == 1 and sched.config.clip_sample is False
    sched.set_timesteps(3)
    assert sched.timesteps.tolist() == io["timesteps"].tolist()


def test_module_prefixed_checkpoint(release_copy):
    path = release_copy / "checkpoints" / CKPT
    state = load_state_dict_file(path)
    torch.save({"module." + k: v for k, v in state.items()}, path)
    unet = load_followyourpose_components(release_copy)["unet"]
    expected = fyp_reference_to_posevid(state)
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in expected.items())


def test_fallback_without_checkpoint_uses_safetensors_sd_unet_and_pose_encoder(release_copy, caplog):
    """No FYP checkpoint: SD 2-D weights (.safetensors variant) + pose_encoder.pth + identity temporal layers."""
    ckpts = release_copy / "checkpoints"
    shutil.rmtree(ckpts / "followyourpose_checkpoint-1000")
    unet_dir = ckpts / SD / "unet"
    sd2d = load_state_dict_file(unet_dir / "diffusion_pytorch_model.bin")
    save_file(sd2d, str(unet_dir / "diffusion_pytorch_model.safetensors"))
    (unet_dir / "diffusion_pytorch_model.bin").unlink()
    with caplog.at_level(logging.WARNING, logger="posevid.models.loading"):
        comps = load_followyourpose_components(release_copy, allow_untrained_temporal=True)
    unet = comps["unet"]
    assert "No Follow-Your-Pose checkpoint" in caplog.text
    read = weights_read(comps)
    assert read[:2] == [str(unet_dir / "diffusion_pytorch_model.safetensors"), str(ckpts / "pose_encoder.pth")]
    state = unet.state_dict()
    assert all(torch.equal(state[k], v) for k, v in sd2d.items())
    pose = load_state_dict_file(ckpts / "pose_encoder.pth")
    assert torch.equal(state["pose_encoder.adapter.body.1.in_conv.weight"], pose["body.2.in_conv.weight"])
    assert torch.equal(state["pose_encoder.adapter.body.2.resnets.1.block1.bias"], pose["body.5.block1.bias"])
    ups = [v for k, v in state.items() if k.endswith("conv_temporal.up.weight")]
    assert ups and all(u.abs().sum() == 0 for u in ups)  # identity temporal conv at init


def test_missing_fyp_checkpoint_is_an_error_naming_the_file(release_copy):
    """A half-downloaded release (SD + pose_encoder.pth, no checkpoint) must not sample silently untrained."""
    ckpts = release_copy / "checkpoints"
    shutil.rmtree(ckpts / "followyourpose_checkpoint-1000")
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(release_copy)
    msg = _one_line_error(exc)
    assert str(ckpts / CKPT) in msg and "--allow-untrained-temporal" in msg


def test_weights_read_lists_every_weight_file(release_copy):
    ckpts = release_copy / "checkpoints"
    comps = load_followyourpose_components(release_copy)
    assert weights_read(comps) == [
        str(ckpts / CKPT),
        str(ckpts / SD / "vae" / "diffusion_pytorch_model.bin"),
        str(ckpts / SD / "text_encoder" / "pytorch_model.bin"),
    ]


# ------------------------------------------------------------------------------------------------ our formats
def test_posevid_format_round_trip(fyp_release_fixture, tmp_path):
    comps = load_followyourpose_components(fyp_release_fixture)
    out = save_followyourpose(comps, tmp_path / "ours")
    assert json.loads((out / "model_index.json").read_text())["_posevid_format"] == "posevid-followyourpose"
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file() and not list(out.rglob("*.bin"))
    again = load_followyourpose_components(out)
    for name in ("unet", "vae", "text_encoder"):
        assert _states_equal(comps[name], again[name]), name
    public = lambda cfg: {k: v for k, v in dict(cfg).items() if not k.startswith("_")}  # noqa: E731
    assert public(again["scheduler"].config) == public(comps["scheduler"].config)
    prompt = "Iron man on the beach, 2 times!"
    assert comps["tokenizer"](prompt).input_ids == again["tokenizer"](prompt).input_ids
    assert again["unet"].temporal_state_dict().keys() == comps["unet"].temporal_state_dict().keys()


def test_reference_layout_written_matches_the_release_files(fyp_release_fixture, tmp_path):
    """What --to-reference writes has exactly the key sets of the reference-made files, and loads back equal."""
    comps = load_followyourpose_components(fyp_release_fixture)
    out = save_followyourpose_reference(comps, tmp_path / "ref")
    for rel in (CKPT, "pose_encoder.pth", f"{SD}/unet/diffusion_pytorch_model.bin", f"{SD}/vae/diffusion_pytorch_model.bin",
                f"{SD}/text_encoder/pytorch_model.bin"):  # fmt: skip
        ours, theirs = load_state_dict_file(out / "checkpoints" / rel), load_state_dict_file(fyp_release_fixture / rel)
        assert ours.keys() == theirs.keys(), rel
        assert all(ours[k].shape == theirs[k].shape for k in ours), rel
    config = json.loads((out / "checkpoints" / SD / "unet" / "config.json").read_text())
    assert "mid_block_type" not in config and config["down_block_types"][0] == "CrossAttnDownBlock2D"
    again = load_followyourpose_components(out)
    for name in ("unet", "vae", "text_encoder"):
        assert _states_equal(comps[name], again[name]), name


def test_tiny_release_fixture_loads_and_runs(tiny_fyp_release):
    assert (tiny_fyp_release / "checkpoints" / CKPT).is_file() and (tiny_fyp_release / "checkpoints" / "pose_encoder.pth").is_file()
    comps = load_followyourpose_components(tiny_fyp_release)
    tok = comps["tokenizer"]
    ids = tok(["A stormtrooper on the sea ünïcode 😀"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert ids[0, 0] == tok.bos_token_id and tok.unk_token_id not in ids[0, 1:][ids[0, 1:] != tok.eos_token_id].tolist()
    with torch.no_grad():
        text = comps["text_encoder"](ids)[0]
        out = comps["unet"](torch.randn(1, 4, 2, 8, 8), 500, text, pose=torch.rand(1, 2, 3, 64, 64)).sample
        image = comps["vae"].decode(torch.randn(1, 4, 8, 8)).sample
    assert out.shape == (1, 4, 2, 8, 8) and torch.isfinite(out).all()
    assert image.shape == (1, 3, 64, 64)  # VAE scale factor 8


def test_tiny_model_is_deterministic_per_seed(tmp_path):
    from posevid.models.tiny import tiny_followyourpose_components

    a, b, c = (tiny_followyourpose_components(seed=s)["unet"] for s in (3, 3, 4))
    assert _states_equal(a, b) and not _states_equal(a, c)


# ------------------------------------------------------------------------------------------------ bad inputs
def test_checkpoint_with_missing_keys(release_copy):
    path = release_copy / "checkpoints" / CKPT
    state = load_state_dict_file(path)
    del state["mid_block.attentions.0.transformer_blocks.0.attn_temp.to_q.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(release_copy)
    assert "1 missing key(s)" in _one_line_error(exc) and "attn_temp.to_q.weight" in str(exc.value)


def test_truncated_safetensors(fyp_release_fixture, tmp_path):
    out = save_followyourpose(load_followyourpose_components(fyp_release_fixture), tmp_path / "ours")
    weights = out / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(out)
    assert "truncated" in _one_line_error(exc)


class _Payload:
    """Unpickling this would create a file: the side effect a malicious checkpoint could have."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_code_is_refused(release_copy, tmp_path):
    marker = tmp_path / "pwned"
    path = release_copy / "checkpoints" / CKPT
    state = load_state_dict_file(path)
    state["evil"] = _Payload(marker)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(release_copy)
    assert "refusing to load" in _one_line_error(exc)
    assert not marker.exists()


def test_wrong_model_dreampose_unet(release_copy, fixtures_dir):
    dreampose = load_file(str(fixtures_dir / "dreampose_tiny" / "unet.safetensors"))
    torch.save(dreampose, release_copy / "checkpoints" / CKPT)
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(release_copy)
    assert "no temporal layers" in _one_line_error(exc)


def test_checkpoint_of_another_size(release_copy):
    config_path = release_copy / "checkpoints" / SD / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["cross_attention_dim"] = 24
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(release_copy)
    assert "attn2.to_k.weight has shape" in _one_line_error(exc)


def _use_hub_cache(monkeypatch, cache: Path) -> None:
    """Point huggingface_hub at ``cache``, offline (it reads these settings at import, hence the constants)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_no_weights_offline(monkeypatch, tmp_path):
    _use_hub_cache(monkeypatch, tmp_path / "empty-cache")
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(None)
    msg = _one_line_error(exc)
    assert "CompVis/stable-diffusion-v1-4" in msg and "--model" in msg
    with pytest.raises(CheckpointError):
        load_followyourpose_components("someone/not-a-cached-model")


def test_not_a_model_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as exc:
        load_followyourpose_components(tmp_path / "empty")
    assert "not a Follow-Your-Pose model folder" in _one_line_error(exc)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_make_tiny_and_convert(tmp_path, capsys):
    tiny = tmp_path / "tiny"
    assert cli_main(["make-tiny", str(tiny), "--seed", "1"]) == 0
    assert (tiny / "checkpoints" / CKPT).is_file()
    assert cli_main(["make-tiny", str(tiny)]) == 2  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["convert", "--model", str(tiny), "--out", str(tmp_path / "ours")]) == 0
    assert cli_main(["convert", "--model", str(tmp_path / "ours"), "--out", str(tmp_path / "ref"), "--to-reference"]) == 0
    a = load_followyourpose_components(tiny)["unet"]
    b = load_followyourpose_components(tmp_path / "ref")["unet"]
    assert _states_equal(a, b)
    capsys.readouterr()
    assert cli_main(["convert", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("posevid convert: error:") and "\n" not in err and not (tmp_path / "x").exists()


def test_cli_make_tiny_dreampose_dispatch(tmp_path, monkeypatch, capsys):
    import posevid.models.tiny_dreampose as tiny_dreampose

    calls = []
    monkeypatch.setattr(tiny_dreampose, "write_tiny_dreampose", lambda out, seed=0: calls.append((Path(out), seed)) or Path(out))
    assert cli_main(["make-tiny", str(tmp_path / "dp"), "--kind", "dreampose", "--seed", "7"]) == 0
    assert calls == [(tmp_path / "dp", 7)]


def test_default_hub_ids_from_the_local_cache(tiny_fyp_release, tmp_path, monkeypatch):
    """model=None: SD-1.4 and the FYP weights come from the hub cache (offline), laid out as the two hub repos."""
    cache = tmp_path / "hub-cache"
    commit = "0" * 40
    for repo, source in (("CompVis/stable-diffusion-v1-4", tiny_fyp_release / "checkpoints" / SD),
                         ("YueMafighting/FollowYourPose_v1", tiny_fyp_release / "checkpoints")):  # fmt: skip
        folder = cache / ("models--" + repo.replace("/", "--"))
        shutil.copytree(source, folder / "snapshots" / commit)
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text(commit)
    _use_hub_cache(monkeypatch, cache)
    comps = load_followyourpose_components(None)
    local = load_followyourpose_components(tiny_fyp_release)
    assert _states_equal(comps["unet"], local["unet"])
