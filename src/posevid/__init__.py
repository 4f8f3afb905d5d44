"""posevid: make a video of a character follow a pose sequence.

Two methods live side by side:

* text + pose -> video, the Follow-Your-Pose method (:mod:`posevid.pipelines.followyourpose`);
* image + pose -> video, the DreamPose method (:mod:`posevid.pipelines.dreampose`).

Heavy modules (torch, diffusers) are imported lazily so that ``posevid --help`` stays fast.
"""

__version__ = "0.1.0"

from posevid.errors import PosevidError  # noqa: E402

__all__ = ["PosevidError", "__version__"]
