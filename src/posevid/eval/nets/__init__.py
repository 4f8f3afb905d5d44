"""Feature networks for the learned metrics, written in plain torch (no torchvision).

Each network keeps the parameter names of the public weight files it is meant to load, so those files
load strictly with no conversion, and is width-scalable so tests can build tiny random versions that go
through exactly the same code: the width is read back from the first layer of the weight file.
"""

from posevid.eval.nets.i3d import InceptionI3d, load_i3d
from posevid.eval.nets.inception import FIDInceptionV3, load_inception
from posevid.eval.nets.lpips import LPIPS, load_lpips

__all__ = ["FIDInceptionV3", "InceptionI3d", "LPIPS", "load_i3d", "load_inception", "load_lpips"]
