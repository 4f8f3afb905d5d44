"""LPIPS (Zhang et al. 2018, v0.1) with AlexNet or VGG16 features, in plain torch.

Two weight files, both tensors-only:

* the linear calibration layers, ``lin0.model.1.weight`` ... ``lin4.model.1.weight``: the ``alex.pth`` /
  ``vgg.pth`` files of the LPIPS project (``lpips/weights/v0.1/``), ~6 KB;
* the backbone: torchvision's ImageNet ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth`` (keys
  ``features.N.weight``; ``classifier.*`` is ignored).

Both may also come as one merged file (backbone keys prefixed ``net.`` or ``features.`` plus ``lin*``).
The backbone kind is read from the lin layers' channel counts (AlexNet 64-192-384-256-256, VGG
64-128-256-512-512). The input scaling (shift/scale) constants are the LPIPS ones, not learned.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from posevid.errors import CheckpointError
from posevid.eval.nets._common import load_strict, read_weights, scale

# (layer index in torchvision's `features`, kind, out channels, kernel, stride, padding); "M" = max pool 3/2 or 2/2.
_ALEX = [(0, "C", 64, 11, 4, 2), (1, "R"), (2, "M3"), (3, "C", 192, 5, 1, 2), (4, "R"), (5, "M3"), (6, "C", 384, 3, 1, 1), (7, "R"),
         (8, "C", 256, 3, 1, 1), (9, "R"), (10, "C", 256, 3, 1, 1), (11, "R")]  # fmt: skip
_ALEX_TAPS = (1, 4, 7, 9, 11)
_VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_VGG_TAPS = (3, 8, 15, 22, 29)


def _vgg_layers() -> list[tuple]:
    layers, i = [], 0
    for v in _VGG_CFG:
        if v == "M":
            layers.append((i, "M2"))
            i += 1
        else:
            layers += [(i, "C", v, 3, 1, 1), (i + 1, "R")]
            i += 2
    return layers


class _NetLin(nn.Module):
    """1x1 conv weighting each channel's squared difference (``lin{i}.model.1.weight`` in the LPIPS files)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """Perceptual distance; ``forward(a, b)`` takes ``(N, 3, H, W)`` in [-1, 1] and returns ``(N,)``."""

    def __init__(self, net: str = "alex", width: float = 1.0) -> None:
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"unknown LPIPS backbone {net!r}")
        self.net = net
        layers, self.taps = (_ALEX, _ALEX_TAPS) if net == "alex" else (_vgg_layers(), _VGG_TAPS)
        modules: list[nn.Module] = []
        cin, tap_channels = 3, []
        for spec in layers:
            kind = spec[1]
            if kind == "C":
                cout = scale(spec[2], width)
                modules.append(nn.Conv2d(cin, cout, spec[3], spec[4], spec[5]))
                cin = cout
            elif kind == "R":
                modules.append(nn.ReLU(inplace=False))
                if spec[0] in self.taps:
                    tap_channels.append(cin)
            else:
                modules.append(nn.MaxPool2d(3, 2) if kind == "M3" else nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        for i, ch in enumerate(tap_channels):
            setattr(self, f"lin{i}", _NetLin(ch))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
            if i >= self.taps[-1]:
                break
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0
        for i, (fa, fb) in enumerate(zip(self._taps(a), self._taps(b), strict=False)):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}")((fa - fb) ** 2).mean((2, 3))
        return total.flatten()


def load_lpips(weights: str | os.PathLike, backbone: str | os.PathLike | None = None) -> LPIPS:
    """LPIPS from the linear-layer file plus the backbone file (or one merged file)."""
    what = "LPIPS"
    state = read_weights(weights, flag="--lpips-weights", what=what)
    if backbone is not None:
        state.update(read_weights(backbone, flag="--lpips-backbone", what="LPIPS backbone"))
    state = {("features." + k[len("net.") :] if k.startswith("net.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k.startswith(("features.", "lin"))}
    if "lin1.model.1.weight" not in state:
        raise CheckpointError(
            f"{weights} has no LPIPS linear layers (lin0..lin4.model.1.weight)", hint="pass alex.pth or vgg.pth with --lpips-weights"
        )
    if not any(k.startswith("features.") for k in state):
        raise CheckpointError(
            f"{weights} holds only the LPIPS linear layers; the backbone is missing",
            hint="pass torchvision's alexnet-owt-7be5be79.pth or vgg16-397923af.pth with --lpips-backbone",
        )
    width = state["lin0.model.1.weight"].shape[1] / 64
    net = "alex" if state["lin1.model.1.weight"].shape[1] == scale(192, width) else "vgg"
    model = LPIPS(net, width)
    load_strict(model, state, what=f"LPIPS ({net})", source=weights)
    return model
