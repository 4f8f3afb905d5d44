"""``posevid batch``: job file checks, retries, resume after SIGKILL, and 2 processes under accelerate launch.

Tiny random models (``posevid make-tiny``), 64x64 videos of 4 frames, 1-2 steps: every job takes about a second.
Two CPU processes need ``accelerate launch --multi_gpu`` (``--cpu --num_processes 2`` silently runs one).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import posevid.batch.driver as driver
from posevid.batch.jobs import read_jobs
from posevid.cli import main
from posevid.video import read_frames

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL = {"frames": 4, "stride": 2, "height": 64, "width": 64, "steps": 2}


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _write_jobs(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _gen(model: Path, pose: Path, **kw) -> dict:
    return {"task": "generate", "model": str(model), "pose": str(pose), **SMALL, **kw}


def _starts(out: Path) -> Counter:
    """How many attempts each job id started, over every process and run."""
    return Counter(e["id"] for e in driver.Ledger(out / ".batch", 0).events() if e["event"] == "start")


def _summary(out: Path) -> dict:
    return json.loads((out / "_summary.json").read_text())


# ------------------------------------------------------------------------------------------- job file
def test_job_lines_are_parsed_with_the_commands_flags(tmp_path: Path) -> None:
    jobs_file = _write_jobs(
        tmp_path / "jobs.jsonl",
        [
            {"task": "generate", "id": "a", "prompt": "x", "skeleton_path": "p.mp4", "frames": 4, "side_by_side": True, "gif": False},
            {"task": "animate", "image": "k.png", "densepose": "poses", "n_steps": 3, "no-gif": True},
            "",
            "# a comment",
            "{not json",
            {"task": "paint", "prompt": "x"},
            {"task": "generate", "prompt": "x", "pose": "p.mp4", "colour": "red"},
            {"task": "generate", "prompt": "x", "pose": "p.mp4", "steps": "many"},
            {"task": "generate", "prompt": "x", "pose": "p.mp4", "scheduler": "magic"},
            {"task": "generate", "prompt": ["x", "y"], "pose": "p.mp4"},
            {"task": "generate", "prompt": "x", "pose": "p.mp4", "frames_dir": "elsewhere"},
            {"task": "generate", "id": "a", "prompt": "again", "pose": "p.mp4"},
            {"task": "generate", "id": "../up", "prompt": "x", "pose": "p.mp4"},
            {"task": "generate", "prompt": "x", "pose": "p.mp4", "gif": "yes"},
        ],
    )
    jobs, bad = read_jobs(jobs_file)
    assert [j.id for j in jobs][0] == "a" and jobs[1].id.startswith("animate-")
    assert jobs[0].argv == ["--prompt", "x", "--skeleton_path", "p.mp4", "--frames", "4", "--side-by-side"]
    assert jobs[1].argv == ["--image", "k.png", "--densepose", "poses", "--n_steps", "3", "--no-gif"]
    reasons = {b.line: b.error for b in bad}
    assert sorted(reasons) == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert "not valid JSON" in reasons[5] and "'task'" in reasons[6] and "unknown field 'colour'" in reasons[7]
    assert "invalid int value" in reasons[8] and "invalid choice" in reasons[9] and "one prompt" in reasons[10]
    assert "set by the batch" in reasons[11] and "already used on line 1" in reasons[12] and "'id'" in reasons[13]
    assert "switch" in reasons[14]
    # the id does not depend on the line's position: resuming after an edit finds the same jobs
    moved, _ = read_jobs(_write_jobs(tmp_path / "moved.jsonl", ["", json.loads(jobs_file.read_text().splitlines()[1])]))
    assert moved[0].id == jobs[1].id


def test_retries_then_failed_and_bad_lines_do_not_stop_others(tmp_path: Path, monkeypatch, capsys) -> None:
    """A crashing job is retried ``--retries`` times and then recorded failed with its error; bad input fails at once."""
    from posevid.errors import InputError

    calls: Counter = Counter()

    def fake_run_job(job, out_dir, cache, *, quiet):
        calls[job.id] += 1
        if job.id == "flaky" and calls[job.id] == 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if job.id == "broken":
            raise RuntimeError("always\nbroken")
        if job.id == "userr":
            raise InputError("pose file not found: p.mp4", hint="check the --pose path")
        video = out_dir / f"{job.id}.mp4"
        video.write_bytes(b"v")
        video.with_suffix(".json").write_text("{}")
        return [video, video.with_suffix(".json")]

    monkeypatch.setattr(driver, "run_job", fake_run_job)
    jobs = _write_jobs(
        tmp_path / "jobs.jsonl",
        [{"task": "generate", "id": i, "prompt": "x", "pose": "p.mp4"} for i in ("ok", "flaky", "broken", "userr")] + ["oops"],
    )
    code = main(["batch", str(jobs), "--out", str(tmp_path / "out"), "--retries", "2"])
    err = capsys.readouterr().err
    assert code == 1
    s = _summary(tmp_path / "out")
    assert s["counts"] == {"done": 2, "skipped": 0, "failed": 2, "bad_lines": 1}
    assert {r["id"]: r["attempts"] for r in s["done"]} == {"ok": 1, "flaky": 2}
    failed = {r["id"]: r for r in s["failed"]}
    assert failed["broken"]["attempts"] == 3 and failed["broken"]["error"] == "RuntimeError: always broken"
    assert failed["userr"]["attempts"] == 1 and "pose file not found" in failed["userr"]["error"]
    assert calls == {"ok": 1, "flaky": 2, "broken": 3, "userr": 1}
    assert f"{jobs} line 5: not valid JSON" in err and "job broken (line 3) failed after 3 attempt(s)" in err
    # rerun: finished jobs skipped, failed ones tried again
    calls.clear()
    main(["batch", str(jobs), "--out", str(tmp_path / "out"), "--retries", "0"])
    assert calls == {"broken": 1, "userr": 1} and _summary(tmp_path / "out")["counts"]["skipped"] == 2


def test_a_job_that_keeps_killing_its_process_is_given_up(tmp_path: Path, monkeypatch) -> None:
    """Attempts that started and never ended (process died) count against the retries across runs, until a success."""
    ran = []

    def fake_run_job(job, out_dir, cache, *, quiet):
        ran.append(job.id)
        return []

    monkeypatch.setattr(driver, "run_job", fake_run_job)
    jobs = _write_jobs(tmp_path / "jobs.jsonl", [{"task": "generate", "id": i, "prompt": "x", "pose": "p.mp4"} for i in ("oom", "fine")])
    state = tmp_path / "out" / ".batch"
    state.mkdir(parents=True)
    (state / "attempts-0.jsonl").write_text(
        '{"event": "start", "id": "fine", "time": 1}\n{"event": "start", "id": "fine", "time": 2}\n'
        '{"event": "end", "id": "fine", "status": "done", "time": 3}\n'  # died once, then succeeded: no debt
    )
    (state / "attempts-1.jsonl").write_text(
        '{"event": "start", "id": "oom", "time": 1}\n{"event": "start", "id": "oom", "time": 2}\n{"event": "st'
    )
    assert main(["batch", str(jobs), "--out", str(tmp_path / "out"), "--retries", "1"]) == 1
    (failed,) = _summary(tmp_path / "out")["failed"]
    assert failed["id"] == "oom" and "process died in this job 2 time(s)" in failed["error"]
    assert ran == ["fine"]  # its output was deleted since (here: never written), so it runs again


def test_missing_job_file_is_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["batch", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("posevid batch: error: job file not found") and "\n" not in err


# ------------------------------------------------------------------------------------------- real models
def test_pose_jobs_write_the_folder_of_posevid_pose_and_resume(tmp_path: Path, charades_cut: Path) -> None:
    """A pose job is ``posevid pose`` (its flags, its positional VIDEO as the "video" field) writing OUT/<id>/; it is done
    once OUT/<id>/pose.json is there, so a rerun skips it."""
    from posevid.pose.sequence import KeypointSequence

    small = {"max-frames": 6, "workers": 1, "size": "64x64"}
    jobs = _write_jobs(tmp_path / "jobs.jsonl", [
        {"task": "pose", "id": "clip", "video": str(charades_cut), **small},
        {"task": "pose", "id": "bad", "video": str(charades_cut), "style": "picasso"},
        {"task": "pose", "video": str(charades_cut), "out": "elsewhere"},
        {"task": "pose", "id": "novideo", "stride": 2},
    ])  # fmt: skip
    parsed, bad = read_jobs(jobs)
    assert parsed[0].argv == [str(charades_cut), "--max-frames", "6", "--workers", "1", "--size", "64x64"]
    reasons = {b.line: b.error for b in bad}
    assert "invalid choice: 'picasso'" in reasons[2] and "set by the batch (outputs go to the folder OUT/<id>/)" in reasons[3]
    assert "required: video" in reasons[4]
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--out", str(out)]) == 1  # the bad lines make the exit code non-zero
    assert sorted(p.name for p in (out / "clip").iterdir()) == ["keypoints.json", "pose.json", "skeleton.mp4"]
    s = _summary(out)
    assert s["counts"] == {"done": 1, "skipped": 0, "failed": 0, "bad_lines": 3}
    assert sorted(s["done"][0]["outputs"]) == ["keypoints.json", "pose.json", "skeleton.mp4"]
    # the same keypoints as the command line with the same flags
    assert main(["pose", str(charades_cut), "--out", str(tmp_path / "cli"), "--quiet", *[f"--{k}={v}" for k, v in small.items()]]) == 0
    ours, cli = KeypointSequence.load(out / "clip" / "keypoints.json"), KeypointSequence.load(tmp_path / "cli" / "keypoints.json")
    assert (ours.width, ours.height) == (64, 64) and len(ours) == 6
    np.testing.assert_allclose(ours.keypoints, cli.keypoints, atol=1e-4)
    main(["batch", str(jobs), "--out", str(out)])
    assert _summary(out)["counts"]["skipped"] == 1


@pytest.fixture(scope="module")
def pose(examples_dir: Path) -> Path:
    return examples_dir / "dance_skeleton.mp4"


def test_killed_run_resumes_without_redoing_finished_jobs(tmp_path: Path, tiny_fyp_release: Path, pose: Path) -> None:
    jobs = _write_jobs(
        tmp_path / "jobs.jsonl", [_gen(tiny_fyp_release, pose, id=f"j{i}", prompt=f"dancer {i}", seed=i, steps=1) for i in range(5)]
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "posevid", "batch", str(jobs), "--out", str(out)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while not list(out.glob("j*.json")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in out.glob("j*.json")}
    assert 1 <= len(finished) < 5, finished
    code = main(["batch", str(jobs), "--out", str(out)])
    s = _summary(out)
    assert code == 0 and s["counts"]["failed"] == 0
    assert {r["id"] for r in s["skipped"]} == set(finished)
    assert {r["id"] for r in s["done"]} == {f"j{i}" for i in range(5)} - set(finished)
    assert {p.stem: p.stat().st_mtime_ns for p in out.glob("j*.json") if p.stem in finished} == finished  # untouched
    starts = _starts(out)
    assert all(starts[i] == 1 for i in finished)  # finished jobs ran once in all
    assert all(read_frames(out / f"j{i}.mp4").shape == (4, 64, 64, 3) for i in range(5))


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_under_accelerate_match_one_process(
    tmp_path: Path, tiny_fyp_release: Path, tiny_dreampose_release: Path, pose: Path, examples_dir: Path
) -> None:
    from plugins.dreampose import write_synthetic_densepose
    from plugins.threads import torch_threads

    poses = write_synthetic_densepose(tmp_path / "poses", range(2))
    lines = [_gen(tiny_fyp_release, pose, id=f"g{i}", prompt=f"a dancer number {i}", seed=i, gif=True) for i in range(5)]
    lines.insert(2, "{broken")
    lines.append({"task": "animate", "id": "anim", "model": str(tiny_dreampose_release), "image": str(examples_dir / "key_frame.png"),
                  "densepose": str(poses), "steps": 1, "no_gif": True})  # fmt: skip
    lines.append(_gen(tiny_fyp_release, tmp_path / "missing.mp4", id="nopose", prompt="x"))
    jobs = _write_jobs(tmp_path / "jobs.jsonl", lines)

    one = tmp_path / "one"
    with torch_threads(1):  # as each accelerate process below: the frames are compared bit for bit
        assert main(["batch", str(jobs), "--out", str(one)]) == 1  # 1 bad line, 1 failed job
    two = tmp_path / "two"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--num_cpu_threads_per_process", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "posevid", "batch", str(jobs), "--out", str(two),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert "1 bad line(s)" in proc.stdout, proc.stdout + proc.stderr
    assert f"{jobs} line 3: not valid JSON" in proc.stderr

    s1, s2 = _summary(one), _summary(two)
    assert s2["processes"] == 2 and s1["processes"] == 1
    assert s2["counts"] == s1["counts"] == {"done": 6, "skipped": 0, "failed": 1, "bad_lines": 1}
    ids = {f"g{i}" for i in range(5)} | {"anim"}
    assert {r["id"] for r in s2["done"]} == {r["id"] for r in s1["done"]} == ids
    by_process = Counter(r["process"] for r in s2["done"] + s2["failed"])
    assert by_process[0] > 0 and by_process[1] > 0  # the work was shared
    assert set(_starts(two).values()) == {1} and set(_starts(two)) == ids | {"nopose"}  # every job started exactly once
    # each process loaded each of its models once (jobs grouped by model): at most 2 loads per process, 2 models in all
    assert all(1 <= n <= 2 for n in s2["model_loads"].values()) and s1["model_loads"] == {"0": 2}
    for i in sorted(ids):
        # the mp4 encoder (x264, threaded) is not bit-reproducible, so pixels are compared on the GIF / PNG frames
        assert read_frames(one / f"{i}.mp4").shape == read_frames(two / f"{i}.mp4").shape
        exact = [f"{i}.gif"] if i != "anim" else [f"anim_frames/{p.name}" for p in sorted((one / "anim_frames").glob("*.png"))]
        assert exact
        for name in exact:
            assert np.array_equal(_pixels(one / name), _pixels(two / name)), name
        m1 = json.loads((one / f"{i}.json").read_text().replace(str(one), "OUT"))["settings"]
        m2 = json.loads((two / f"{i}.json").read_text().replace(str(two), "OUT"))["settings"]
        drop = {"load_seconds", "generate_seconds", "seconds"}
        assert {k: v for k, v in m1.items() if k not in drop} == {k: v for k, v in m2.items() if k not in drop}
    # resumed with another number of processes (here one): finished jobs are skipped, only the failed one runs again
    assert main(["batch", str(jobs), "--out", str(two)]) == 1
    s3 = _summary(two)
    assert s3["counts"] == {"done": 0, "skipped": 6, "failed": 1, "bad_lines": 1}
    assert all(_starts(two)[i] == 1 for i in ids) and _starts(two)["nopose"] == 2  # only the failed job was tried again


def test_model_cache_keeps_the_last_n_and_pipelines_differ_by_in_place_run_options() -> None:
    from posevid.batch.runner import model_cache
    from posevid.pipelines.memory import RunOptions
    from posevid.tasks.generate import GenerateSettings, pipeline_key

    cache = model_cache(keep_models=1)
    assert cache.get(("a",), lambda: "A").model == "A" and cache.get(("a",), lambda: "other").model == "A"
    assert cache.get(("b",), lambda: "B").model == "B" and cache.loads == 2
    assert cache.get(("a",), lambda: "A2").model == "A2" and cache.loads == 3  # "a" was dropped for "b"

    s = GenerateSettings()
    plain = pipeline_key("m", "cpu", s, RunOptions())
    assert plain == pipeline_key("m", "cpu", s, RunOptions(window=16, split_cfg=True))  # per-call options: same pipeline
    for changed in (dict(attention="chunked"), dict(channels_last=True), dict(vae_tiling=True), dict(offload="model")):
        assert pipeline_key("m", "cpu", s, RunOptions(**changed)) != plain, changed
    assert pipeline_key("m", "cpu", GenerateSettings(allow_untrained_temporal=True), RunOptions()) != plain
