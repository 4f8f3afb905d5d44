"""Speed and memory switches for the Follow-Your-Pose pipeline, one place for the API and the CLI.

Every switch below is an *execution* choice: with fp32 weights each leaves the outputs equal to the
reference path up to float rounding (checked by ``tests/test_speed_*.py``), except the lower precisions
(fp16/bf16), the fast schedulers and windowed sampling, which change numbers by design and are opt-in.

* ``attention``: ``sdpa`` (fused kernels; default), ``chunked`` (SDPA over query chunks: bounded peak
  when no fused kernel applies) or ``math`` (the reference's explicit softmax, for comparison);
* ``channels_last``: NHWC convolutions (faster on GPUs with tensor cores and on recent x86 with oneDNN);
* ``compile``: ``torch.compile`` of the UNet (static shapes: every window has the same length);
* ``split_cfg``: run the unconditional and conditional branches as two UNet calls (half the activations);
* ``vae_slicing`` / ``vae_tiling`` / ``decode_chunk_size``: decode few frames at a time / in tiles;
* ``offload``: ``model`` (diffusers' model CPU offload: one component on the accelerator at a time) or
  ``sequential`` (accelerate hooks per sub-module: smallest footprint, slowest).

:func:`low_memory` picks a combination for small machines; :func:`fast` is 20-step DPM-Solver++.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from typing import TYPE_CHECKING, Any

from posevid.errors import InputError
from posevid.pipelines.fyp_checks import DEFAULT_OVERLAP, WEIGHTINGS

if TYPE_CHECKING:  # torch is imported inside functions so that ``posevid --help`` stays fast
    import torch

OFFLOAD_MODES = ("none", "model", "sequential")
# Steps that give converged samples with each solver (DDIM: the reference's 50; multistep solvers ~20).
DEFAULT_STEPS = {"ddim": 50, "pndm": 50, "dpm++": 20, "unipc": 20, "euler": 30}
FAST_SCHEDULER, FAST_STEPS = "dpm++", 20


@dataclass
class RunOptions:
    """How to execute (not what to generate). Defaults are the reference-equal, fastest-on-GPU choice.

    The one list of these options and the authoritative defaults: :data:`RunSettings` (the fields of
    ``posevid generate``'s settings) and the CLI help are derived from it.
    """

    attention: str = "sdpa"
    attention_chunk: int | None = None
    channels_last: bool = False
    compile: bool = False
    split_cfg: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    decode_chunk_size: int = 1
    offload: str = "none"
    window: int | None = None
    overlap: int = DEFAULT_OVERLAP
    window_weighting: str = WEIGHTINGS[0]  # triangular: window edges count least

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The settings / CLI spelling of a RunOptions field, where it differs (``--decode-chunk``): the one mapping.
SETTING_NAMES = {"decode_chunk_size": "decode_chunk"}


def _setting_field(option) -> tuple[str, str, Any]:
    """A RunOptions field as a settings field: its settings name, and "not given" as the default (False for a
    switch, else None), so that :func:`run_options_from_settings` takes RunOptions' default or the preset's value."""
    switch = option.type == "bool"
    kind = option.type if switch or "None" in option.type else f"{option.type} | None"
    return SETTING_NAMES.get(option.name, option.name), kind, field(default=False if switch else None)


# The speed / memory / long-video fields of a settings object (``GenerateSettings`` derives from it): the two presets,
# then every RunOptions field under its settings name, unset by default.
RunSettings = make_dataclass(
    "RunSettings",
    [("fast", "bool", field(default=False)), ("low_memory", "bool", field(default=False)), *map(_setting_field, fields(RunOptions))],
)
RunSettings.__module__ = __name__
RunSettings.__doc__ = "Speed / memory / long-video settings as given (None or False: not given); RunOptions holds the defaults."


def low_memory(options: RunOptions | None = None, *, device: str = "cpu") -> RunOptions:
    """Smallest-footprint combination that keeps fp32 results: split CFG, chunked attention (1024 queries),
    VAE tiling and one-frame decode, windows of 24 frames, and model CPU offload on an accelerator."""
    base = options or RunOptions()
    return replace(
        base,
        attention="chunked",
        attention_chunk=base.attention_chunk or 1024,
        split_cfg=True,
        vae_slicing=True,
        vae_tiling=True,
        decode_chunk_size=1,
        offload="model" if device not in ("cpu", "auto") else base.offload,
        window=base.window or 24,
    )


def apply_run_options(pipe, options: RunOptions, *, device: str | torch.device = "cpu") -> None:
    """Configure ``pipe`` (a FollowYourPosePipeline) in place. Call once, before generating."""
    import torch

    from posevid.models.attention_fast import configure_attention

    if options.offload not in OFFLOAD_MODES:
        raise InputError(f"unknown offload mode {options.offload!r}", hint=f"choose one of {', '.join(OFFLOAD_MODES)}")
    configure_attention(pipe.unet, options.attention, options.attention_chunk)
    if options.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if options.vae_slicing:
        pipe.vae.enable_slicing()
    if options.vae_tiling:
        pipe.vae.enable_tiling()
    device = torch.device(device)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    if options.compile:
        # Static shapes (dynamic=False): every window has the same frame count, so one graph serves all steps.
        # On CUDA "max-autotune-no-cudagraphs" avoids re-recording graphs when split-CFG changes the batch.
        mode = "max-autotune-no-cudagraphs" if device.type == "cuda" else None
        pipe.unet.compile(dynamic=False, mode=mode)


# ------------------------------------------------------------------------------------------- memory
def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process (VmHWM), in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_memory(device: str | torch.device) -> dict[str, float | None]:
    """``{"peak_rss_mb": ..., "peak_cuda_mb": ...}`` since the last :func:`reset_peak`."""
    import torch

    out: dict[str, float | None] = {"peak_rss_mb": None, "peak_cuda_mb": None}
    rss = peak_rss_bytes()
    if rss is not None:
        out["peak_rss_mb"] = round(rss / 2**20, 1)
    if torch.device(device).type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def reset_peak(device: str | torch.device) -> None:
    """Reset the peak counters read by :func:`peak_memory`."""
    import torch

    reset_peak_rss()
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ------------------------------------------------------------------------------------------- settings
def run_options_from_settings(settings: dict[str, Any], device: str) -> RunOptions:
    """Settings (``posevid generate``'s names, only those set) -> :class:`RunOptions`; ``low_memory`` fills what is not given.

    The flags themselves are defined in :mod:`posevid.commands._flags`."""
    names = {f.name: SETTING_NAMES.get(f.name, f.name) for f in fields(RunOptions)}
    given = {name: settings[key] for name, key in names.items() if settings.get(key) is not None}
    options = low_memory(device=device) if settings.get("low_memory") else RunOptions()
    options = replace(options, **given)
    if options.attention_chunk is not None and options.attention_chunk < 1:
        raise InputError(f"--attention-chunk must be >= 1, got {options.attention_chunk}")
    if options.decode_chunk_size < 1:
        raise InputError(f"--decode-chunk must be >= 1, got {options.decode_chunk_size}")
    if options.offload != "none" and device == "cpu":
        raise InputError(f"--offload {options.offload} needs a GPU (it moves models between CPU and accelerator)", hint="drop --offload")
    return options


__all__ = [
    "DEFAULT_STEPS",
    "FAST_SCHEDULER",
    "FAST_STEPS",
    "OFFLOAD_MODES",
    "RunOptions",
    "RunSettings",
    "SETTING_NAMES",
    "apply_run_options",
    "low_memory",
    "peak_memory",
    "peak_rss_bytes",
    "reset_peak",
    "reset_peak_rss",
    "run_options_from_settings",
]
