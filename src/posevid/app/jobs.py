"""The app's job layer: a FIFO queue with a concurrency limit, progress, cancellation, unique folders.

Why a layer of our own on top of Gradio's queue: Gradio cancels an event by abandoning the task that
awaits it, but a synchronous diffusion loop in a worker thread keeps running (and keeps the CPU/GPU busy)
until it ends. Here every job carries a cancel flag that the pipeline's step callback checks, so "Cancel"
really stops the compute at the next denoising step. The queue also decides the order in which
requests start (first come, first served, at most ``concurrency`` at a time) independently of the web
framework, which makes the order testable without a browser; and each job gets its own output folder,
so two users (or two clicks) never write to the same file.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("posevid.app")


class JobCancelled(Exception):
    """Raised inside a job (by :meth:`Job.check_cancelled`) when the user pressed Cancel."""


@dataclass
class Job:
    """One request: its place in the queue, its folder, its live progress and its outcome."""

    seq: int
    kind: str
    owner: str
    folder: Path
    fn: Callable[[Job], Any]
    started: float | None = None
    finished: float | None = None
    step: int = 0
    total: int = 0
    desc: str = "waiting in queue"
    result: Any = None
    error: BaseException | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    # -- called from inside the job ---------------------------------------------------------------
    def report(self, step: int, total: int | None = None, desc: str | None = None) -> None:
        """Record progress (the UI polls it) and stop here if the job was cancelled."""
        self.step = int(step)
        if total is not None:
            self.total = int(total)
        if desc is not None:
            self.desc = desc
        self.check_cancelled()

    def progress(self, stage: str, done: int, total: int) -> None:
        """The job as a :data:`~posevid.utils.progress.Progress`: what the tasks report, in words for the page."""
        text = STAGE_TEXT.get(stage, stage).format(done=done, total=total)
        self.report(done, total, text)

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(f"job {self.seq} cancelled")

    # -- called from outside ---------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


STAGE_TEXT = {
    "load": "loading the model",
    "denoise": "denoising",
    "frames": "frame {done}/{total}",
    "densepose": "extracting DensePose, frame {done}/{total}",
    "pose": "extracting the pose from the video",
    "extract": "detecting poses",
    "render": "drawing the skeleton",
    "done": "done",
}
"""How the page words each stage a task reports (see :meth:`Job.progress`)."""

_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, limit: int = 24) -> str:
    """A string usable as one path component (no separators, no dots, never empty)."""
    cleaned = _SAFE.sub("-", str(text)).strip("-")[:limit]
    return cleaned or "anon"


class JobQueue:
    """First-in first-out job runner with ``concurrency`` worker threads.

    Jobs start strictly in submission order (a single deque guarded by one condition variable); at
    most ``concurrency`` run at a time. ``submit`` never blocks; the caller waits on the returned job.
    """

    def __init__(self, output_dir: str | Path, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.output_dir = Path(output_dir).resolve()
        self.concurrency = concurrency
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._counter = itertools.count(1)
        self._active: dict[int, Job] = {}
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"posevid-job-{i}", daemon=True) for i in range(concurrency)]
        for worker in self._workers:
            worker.start()

    def new_folder(self, kind: str, owner: str) -> Path:
        """``<output_dir>/<owner>/<time>-<kind>-<random>``: unique per request, created now."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.output_dir / safe_name(owner) / f"{stamp}-{safe_name(kind)}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True, exist_ok=False)
        return folder

    def submit(self, kind: str, fn: Callable[[Job], Any], owner: str = "anon") -> Job:
        """Queue ``fn(job)``; it runs in a worker thread when its turn comes."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the job queue is shut down")
            job = Job(seq=next(self._counter), kind=kind, owner=owner, folder=self.new_folder(kind, owner), fn=fn)
            self._pending.append(job)
            self._cond.notify()
        return job

    def position(self, job: Job) -> int:
        """0 when running or done, else 1 + the number of jobs ahead of it."""
        with self._cond:
            for i, queued in enumerate(self._pending):
                if queued is job:
                    return i + 1
        return 0

    def cancel_owner(self, owner: str) -> int:
        """Cancel every queued or running job of one session; returns how many were flagged."""
        count = 0
        with self._cond:
            jobs = list(self._pending)
            jobs += list(self._active.values())
        for job in jobs:
            if job.owner == owner and not job.done:
                job.cancel()
                count += 1
        return count

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                job = self._pending.popleft()
                self._active[job.seq] = job
                log.info("job %s (%s) started", job.seq, job.kind)  # under the lock: the log shows the real start order
            job.started = time.monotonic()
            job.desc = "starting"
            try:
                job.check_cancelled()
                job.result = job.fn(job)
            except BaseException as exc:  # the caller re-raises it in its own thread
                job.error = exc
                if isinstance(exc, JobCancelled):
                    log.info("job %s (%s) cancelled at step %s/%s", job.seq, job.kind, job.step, job.total)
                elif _is_user_error(exc):
                    log.info("job %s (%s) refused: %s", job.seq, job.kind, exc)
                else:
                    log.exception("job %s (%s) failed", job.seq, job.kind)
            else:
                log.info("job %s (%s) done in %.1f s", job.seq, job.kind, time.monotonic() - job.started)
            finally:
                job.finished = time.monotonic()
                with self._cond:
                    self._active.pop(job.seq, None)
                job._done.set()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _is_user_error(exc: BaseException) -> bool:
    from posevid.errors import PosevidError

    return isinstance(exc, PosevidError)
