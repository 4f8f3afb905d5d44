"""DreamPose's DensePose poses from a video, a frame folder or an image, as a library call: :func:`densepose` with
:class:`DensePoseSettings` (``posevid densepose``).

A thin use case over :func:`posevid.densepose.extract.extract_densepose`, which writes the output folder whole or not
at all (``frame_N_densepose.npy``, optional ``iuv/`` and ``preview.mp4``, the ``densepose.json`` sidecar).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from posevid.densepose.options import DensePoseOptions  # torch-free
from posevid.errors import InputError
from posevid.utils.progress import Progress, no_progress

_MODEL = DensePoseOptions()  # the model options' defaults, defined once there (animate --densepose-*, prepare and the app read them too)


@dataclass
class DensePoseSettings:
    """Everything ``posevid densepose`` can be told; the model options' defaults are :class:`DensePoseOptions`'s."""

    input: str | None = None  # a video, a folder of frames or one image
    out: str | None = None  # the output folder
    weights: str | None = _MODEL.weights
    device: str = _MODEL.device
    dtype: str = _MODEL.dtype
    batch_size: int = _MODEL.batch_size
    person: str = _MODEL.person
    short_side: int | None = _MODEL.short_side
    iuv: bool = False  # also write iuv/frame_N.png
    preview: bool = False  # also write preview.mp4
    overwrite: bool = False  # replace a non-empty output folder
    quiet: bool = False  # no progress bar

    @property
    def options(self) -> DensePoseOptions:
        """The model options part of these settings."""
        return DensePoseOptions(**{f.name: getattr(self, f.name) for f in fields(DensePoseOptions)})


def validate(settings: DensePoseSettings) -> DensePoseOptions:
    """Cheap checks (no torch import) before any model time; returns the checked model options."""
    if not settings.input:
        raise InputError("no input given", hint="pass a video, a folder of frames or an image")
    if not settings.out:
        raise InputError("no output folder given", hint="pass --out DIR")
    return settings.options.validate()


def densepose(settings: DensePoseSettings, *, progress: Progress = no_progress):
    """Run one ``posevid densepose`` job; returns the :class:`~posevid.densepose.extract.DensePoseReport`.

    ``progress("densepose", done, total)`` after every batch; whatever it raises stops the job with nothing written.
    """
    from posevid.densepose.extract import extract_densepose

    options = validate(settings)
    return extract_densepose(settings.input, settings.out, options, iuv=settings.iuv, preview=settings.preview,
                             overwrite=settings.overwrite, progress=not settings.quiet, report=progress)  # fmt: skip


__all__ = ["DensePoseSettings", "densepose", "validate"]
