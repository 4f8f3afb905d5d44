"""DensePose R-CNN (``densepose_rcnn_R_50_FPN_s1x``) in plain PyTorch: no detectron2, no torchvision.

:mod:`.model` the network, :mod:`.ops` NMS and ROIAlign, :mod:`.boxes` box arithmetic, :mod:`.weights`
the model-zoo ``.pkl`` / safetensors / download, :mod:`.predictor` frames -> charts, :mod:`.extract` the
per-video job that writes DreamPose's ``frame_N_densepose.npy`` files.

Nothing is imported here (torch stays unloaded for command-line parsing and the app's form).
"""

PERSON_RULES = ("top-score", "largest", "track")
"""Which detected person a frame's pose follows: the reference's first instance, the biggest box, or one person tracked."""

MODEL_DEFAULTS = {"weights": None, "device": "auto", "dtype": "fp32", "batch_size": 4, "person": "top-score", "short_side": None}
"""The model settings' defaults, defined once: ``posevid densepose``/``prepare``/``animate`` flags, the extraction job and the app."""

MIN_SHORT_SIDE = 32
"""The smallest ``short_side`` accepted (``None``, the default, is the model's own 800 pixels: the reference)."""


def check_short_side(value: int | None, flag: str = "--short-side") -> None:
    """Refuse a ``short_side`` below :data:`MIN_SHORT_SIDE` with one line naming ``flag`` (as the user gave it)."""
    if value is not None and value < MIN_SHORT_SIDE:
        from posevid.errors import InputError

        raise InputError(f"{flag} must be at least {MIN_SHORT_SIDE}, got {value}")
