"""The file suffixes posevid reads as videos, images and keypoint files: one list each, for every command and the app.

Before these lists were unified, commands differed (``posevid eval`` read ``.mpg``, ``prepare`` did not; ``densepose``
read ``.tif``, the app did not); each list is now the union of the old ones, so no input that one command accepted is
refused anywhere. Everything is lower case with the dot; compare with ``path.suffix.lower()``.
"""

from __future__ import annotations

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".webm", ".mkv", ".gif", ".mpg", ".mpeg")
"""Containers PyAV decodes for posevid (a GIF is read as a video)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""Still images PIL reads (frames, reference images, UV images)."""

KEYPOINT_SUFFIXES = (".json", ".npz")
"""Keypoint files written by ``posevid pose`` (:meth:`posevid.pose.sequence.KeypointSequence.save`)."""

__all__ = ["IMAGE_SUFFIXES", "KEYPOINT_SUFFIXES", "VIDEO_SUFFIXES"]
