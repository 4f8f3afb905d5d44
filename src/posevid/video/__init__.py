"""Video reading and writing (PyAV): streamed, rotation-aware, atomic."""

from posevid.video.io import (
    VideoInfo,
    VideoWriter,
    iter_frames,
    probe_and_sample,
    probe_video,
    read_frames,
    write_gif,
    write_video,
)

__all__ = ["VideoInfo", "VideoWriter", "iter_frames", "probe_and_sample", "probe_video", "read_frames", "write_gif", "write_video"]
