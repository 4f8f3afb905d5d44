"""Inception-I3D (Carreira & Zisserman 2017) for FVD, compatible with the public piergiaj "pytorch-i3d" weights.

Accepted files: ``rgb_imagenet.pt`` (ImageNet-inflated, Kinetics-400 fine-tuned; the file most PyTorch
FVD code loads, sometimes renamed ``i3d_pretrained_400.pt``) or any state dict with the same keys
(``Conv3d_1a_7x7.conv3d.weight`` ... ``Mixed_5c.b3b.bn.running_var``, ``logits.conv3d.weight``), as
``.pt``/``.pth`` (tensors only) or ``.safetensors``. TensorFlow-style "SAME" padding is computed per
input size, as in that code. FVD features are the 400 Kinetics logits averaged over the remaining time
and space (for 16x224x224 clips this equals the original fixed [2, 7, 7] average pool).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from posevid.eval.nets._common import infer_width, load_strict, read_weights, scale


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (_same_pad(s, k, st) for s, k, st in zip((t, h, w), kernel, stride, strict=False))
    return F.pad(x, (*pw, *ph, *pt))


class MaxPool3dSame(nn.Module):
    """Max pool after zero "SAME" padding (the reference pads with zeros; inputs are post-ReLU)."""

    def __init__(self, kernel, stride) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, bn: bool = True, relu: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x):
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    def __init__(self, cin: int, oc: list[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, oc[0])
        self.b1a = Unit3D(cin, oc[1])
        self.b1b = Unit3D(oc[1], oc[2], (3, 3, 3))
        self.b2a = Unit3D(cin, oc[3])
        self.b2b = Unit3D(oc[3], oc[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, oc[5])
        self.out_channels = oc[0] + oc[2] + oc[4] + oc[5]

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


_MIXED = [
    ("Mixed_3b", [64, 96, 128, 16, 32, 32]),
    ("Mixed_3c", [128, 128, 192, 32, 96, 64]),
    ("MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", [192, 96, 208, 16, 48, 64]),
    ("Mixed_4c", [160, 112, 224, 24, 64, 64]),
    ("Mixed_4d", [128, 128, 256, 24, 64, 64]),
    ("Mixed_4e", [112, 144, 288, 32, 64, 64]),
    ("Mixed_4f", [256, 160, 320, 32, 128, 128]),
    ("MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", [256, 160, 320, 32, 128, 128]),
    ("Mixed_5c", [384, 192, 384, 48, 128, 128]),
]


class InceptionI3d(nn.Module):
    """I3D up to the logits; ``width`` < 1 builds a tiny test network, ``num_classes`` follows the file."""

    def __init__(self, width: float = 1.0, num_classes: int = 400) -> None:
        super().__init__()
        c = lambda n: scale(n, width)  # noqa: E731
        self.width = width
        self.Conv3d_1a_7x7 = Unit3D(3, c(64), (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(c(64), c(64))
        self.Conv3d_2c_3x3 = Unit3D(c(64), c(192), (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        channels = c(192)
        for name, spec in _MIXED:
            if name.startswith("MaxPool"):
                setattr(self, name, MaxPool3dSame(*spec))
            else:
                block = InceptionModule(channels, [c(n) for n in spec])
                channels = block.out_channels
                setattr(self, name, block)
            self.order.append(name)
        self.logits = Unit3D(channels, num_classes, bn=False, relu=False, bias=True)
        self.feature_dim = num_classes

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` RGB in [-1, 1] -> ``(N, num_classes)`` logits averaged over time and space."""
        x = clips
        for name in self.order:
            x = getattr(self, name)(x)
        x = F.adaptive_avg_pool3d(x, 1)  # dropout is identity at eval time; 1x1x1 conv commutes with the average
        return self.logits(x).flatten(1)


def load_i3d(path: str | os.PathLike, *, flag: str = "--i3d-weights") -> InceptionI3d:
    """Build I3D from a pytorch-i3d style state dict (``rgb_imagenet.pt``)."""
    what = "I3D"
    state = read_weights(path, flag=flag, what=what)
    width = infer_width(state, "Conv3d_1a_7x7.conv3d.weight", 64, what=what, source=path)
    num_classes = state["logits.conv3d.weight"].shape[0] if "logits.conv3d.weight" in state else 400
    model = InceptionI3d(width, num_classes)
    load_strict(model, state, what=what, source=path)
    return model
