"""Inception-v3 pool3 features for FID, compatible with pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.

That file is the TensorFlow FID Inception (2015-12-05) converted to torch; FID numbers in papers come
from it. Its quirks are kept: average pools that exclude padding, a max pool in the last block's pool
branch, BatchNorm eps 1e-3, bilinear resize to 299x299 and inputs scaled to [-1, 1]. The 2048-d output
is the global average pool after ``Mixed_7c``. ``fc.*`` (the 1008-way classifier) is ignored.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from posevid.eval.nets._common import infer_width, load_strict, read_weights, scale


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale(n, w)  # noqa: E731
        self.branch1x1 = BasicConv2d(cin, c(64), 1)
        self.branch5x5_1 = BasicConv2d(cin, c(48), 1)
        self.branch5x5_2 = BasicConv2d(c(48), c(64), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), 3, padding=1)
        self.branch_pool = BasicConv2d(cin, c(pool), 1)
        self.out_channels = c(64) + c(64) + c(96) + c(pool)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b1, b5, b3, self.branch_pool(_avg(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale(n, w)  # noqa: E731
        self.branch3x3 = BasicConv2d(cin, c(384), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), 3, stride=2)
        self.out_channels = c(384) + c(96) + cin

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale(n, w)  # noqa: E731
        c7 = c(c7)
        self.branch1x1 = BasicConv2d(cin, c(192), 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, c(192), (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, c(192), (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, c(192), 1)
        self.out_channels = 4 * c(192)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([b1, b7, bd, self.branch_pool(_avg(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale(n, w)  # noqa: E731
        self.branch3x3_1 = BasicConv2d(cin, c(192), 1)
        self.branch3x3_2 = BasicConv2d(c(192), c(320), 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, c(192), 1)
        self.branch7x7x3_2 = BasicConv2d(c(192), c(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(c(192), c(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(c(192), c(192), 3, stride=2)
        self.out_channels = c(320) + c(192) + cin

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, w: float, *, max_pool: bool) -> None:
        super().__init__()
        c = lambda n: scale(n, w)  # noqa: E731
        self.max_pool = max_pool  # pytorch-fid's FIDInceptionE_2 (Mixed_7c) uses a max pool: a TF-graph quirk
        self.branch1x1 = BasicConv2d(cin, c(320), 1)
        self.branch3x3_1 = BasicConv2d(cin, c(384), 1)
        self.branch3x3_2a = BasicConv2d(c(384), c(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(c(384), c(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, c(448), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(448), c(384), 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(c(384), c(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(c(384), c(384), (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, c(192), 1)
        self.out_channels = c(320) + 4 * c(384) + c(192)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's Inception up to the 2048-d pool3 features; ``width`` < 1 builds a tiny test network."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: scale(n, width)  # noqa: E731
        self.width = width
        self.Conv2d_1a_3x3 = BasicConv2d(3, c(32), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(c(32), c(32), 3)
        self.Conv2d_2b_3x3 = BasicConv2d(c(32), c(64), 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(c(64), c(80), 1)
        self.Conv2d_4a_3x3 = BasicConv2d(c(80), c(192), 3)
        self.Mixed_5b = InceptionA(c(192), 32, width)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out_channels, 64, width)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out_channels, 64, width)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, width)
        self.Mixed_6b = InceptionC(self.Mixed_6a.out_channels, 128, width)
        self.Mixed_6c = InceptionC(self.Mixed_6b.out_channels, 160, width)
        self.Mixed_6d = InceptionC(self.Mixed_6c.out_channels, 160, width)
        self.Mixed_6e = InceptionC(self.Mixed_6d.out_channels, 192, width)
        self.Mixed_7a = InceptionD(self.Mixed_6e.out_channels, width)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, width, max_pool=False)
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, width, max_pool=True)
        self.feature_dim = self.Mixed_7c.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, 2048)`` pool3 features."""
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


def load_inception(path: str | os.PathLike, *, flag: str = "--inception-weights") -> FIDInceptionV3:
    """Build the network from ``pt_inception-2015-12-05-6726825d.pth`` (or a same-keyed safetensors file)."""
    what = "FID Inception-v3"
    state = read_weights(path, flag=flag, what=what)
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
    width = infer_width(state, "Conv2d_1a_3x3.conv.weight", 32, what=what, source=path)
    model = FIDInceptionV3(width)
    load_strict(model, state, what=what, source=path)
    return model
