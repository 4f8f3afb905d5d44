"""The torch thread count of an in-process run, set to match another process it is compared with.

Why: a float reduction's order depends on the thread count, so two runs are bit-equal (or within a tight tolerance
after a min-max stretch and a GIF palette) only when both use the same count. Subprocesses of the tests are pinned to
one thread (the app server, ``accelerate launch --num_cpu_threads_per_process 1``); the suite itself runs under any
``OMP_NUM_THREADS`` (the issue-20 check runs it under 1 and 2), so the in-process side of such a comparison is pinned
too, with :func:`torch_threads`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with ``count`` torch intra-op threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
