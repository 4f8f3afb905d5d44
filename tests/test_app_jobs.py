"""The app's job layer and model cache, without a server: order, limits, cancel, folders, reuse."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from posevid.app.backend import ModelCache
from posevid.app.jobs import JobCancelled, JobQueue, safe_name
from posevid.errors import InputError


def test_ten_jobs_all_complete_in_submission_order_with_concurrency_limit(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="posevid.app")
    queue = JobQueue(tmp_path, concurrency=2)
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(job):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)  # hold the first two so the other eight really queue up
        time.sleep(0.01)
        with lock:
            running -= 1
        return job.seq * 10

    jobs = [queue.submit("pose", work, owner=f"user{i % 3}") for i in range(10)]
    time.sleep(0.1)
    assert [queue.position(j) for j in jobs[2:]] == list(range(1, 9))  # 8 waiting, in order
    gate.set()
    for job in jobs:
        assert job.wait(10), f"job {job.seq} did not finish"
    assert [j.result for j in jobs] == [j.seq * 10 for j in jobs]  # none lost, none mixed up
    assert all(j.error is None for j in jobs)
    started = [r.args[0] for r in caplog.records if r.getMessage().endswith("started")]
    assert started == [j.seq for j in jobs]  # first come, first served (logged under the queue's lock, in start order)
    assert peak == 2  # the concurrency limit held
    folders = {j.folder for j in jobs}
    assert len(folders) == 10 and all(f.is_dir() and f.parent.parent == tmp_path.resolve() for f in folders)
    queue.shutdown()


def test_cancel_stops_a_running_job_at_its_next_step_and_skips_queued_ones(tmp_path):
    queue = JobQueue(tmp_path, concurrency=1)
    steps_done = []

    def long_job(job):
        for i in range(1000):
            job.report(i, 1000, "denoising")  # raises JobCancelled once cancelled
            steps_done.append(i)
            time.sleep(0.005)
        return "finished"

    first = queue.submit("t2v", long_job, owner="alice")
    second = queue.submit("t2v", long_job, owner="alice")
    other = queue.submit("pose", lambda job: "bob's result", owner="bob")
    while first.step < 3:
        time.sleep(0.005)
    assert queue.cancel_owner("alice") == 2
    assert first.wait(5) and second.wait(5) and other.wait(5)
    assert isinstance(first.error, JobCancelled) and isinstance(second.error, JobCancelled)
    assert len(steps_done) < 100  # stopped early, did not run to 1000
    assert other.result == "bob's result" and other.error is None  # another session is not affected
    queue.shutdown()


def test_job_errors_are_kept_for_the_caller(tmp_path):
    queue = JobQueue(tmp_path, concurrency=1)

    def bad(job):
        raise InputError("video not found: x.mp4")

    job = queue.submit("pose", bad)
    assert job.wait(5)
    assert isinstance(job.error, InputError) and "x.mp4" in str(job.error)
    queue.shutdown()


def test_unique_folder_names_are_safe_path_components(tmp_path):
    queue = JobQueue(tmp_path, concurrency=1)
    a = queue.new_folder("t2v", "../../etc")
    b = queue.new_folder("t2v", "../../etc")
    assert a != b
    assert tmp_path.resolve() in a.parents and tmp_path.resolve() in b.parents
    assert safe_name("../..") == "anon" and "/" not in safe_name("a/b")
    queue.shutdown()


def test_model_cache_loads_each_key_once_even_under_concurrent_requests():
    cache = ModelCache()
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.05)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("fyp", "/m", "cpu", "float32"), loader).model)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.loads == 1
    assert len({id(r) for r in results}) == 1
    cache.get(("fyp", "/m", "cpu", "bfloat16"), loader)  # another dtype is another model
    assert cache.loads == 2


@pytest.mark.parametrize("concurrency", [0, -1])
def test_queue_refuses_a_zero_limit(tmp_path, concurrency):
    with pytest.raises(ValueError):
        JobQueue(tmp_path, concurrency=concurrency)
