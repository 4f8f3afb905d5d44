"""Running a batch file: sharding, resume, bounded retries and the merged summary.

The same code runs as one process (``posevid batch``) or as N processes under ``accelerate launch``
(one per GPU, any number of nodes): accelerate's ``PartialState`` tells each process its rank, and
``split_between_processes`` hands it a contiguous share of the unfinished jobs. Every process reads the
whole job file and scans ``OUT`` for finished jobs before any of them starts work (a barrier), so all
of them compute the same job list and each job goes to exactly one process. Jobs are sorted by model
first, so a process meets the jobs of one model one after another and loads it once.

State under ``OUT/.batch/``:

* ``attempts-<rank>.jsonl``: a ``start`` line before each attempt and an ``end`` line after it (written
  like the data manifest: one ``write`` + ``fsync`` per line). A ``start`` without ``end`` from an earlier
  run means the process died inside that job (killed, out of memory); such deaths count against the
  job's retries, so a job that kills its process is not restarted forever.
* ``results-<rank>.json``: what each process did in this run, merged by the main process into
  ``OUT/_summary.json`` (done / skipped / failed / bad lines) once every process has finished.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from posevid.batch.jobs import Job, read_jobs
from posevid.batch.runner import ModelCache, is_done, model_cache, model_key, run_job
from posevid.errors import PosevidError
from posevid.utils.jsonl import append_json_line, read_json_lines
from posevid.utils.outputs import atomic_path


@dataclass(frozen=True)
class BatchSettings:
    """Everything ``posevid batch`` can be told; the defaults here are the only ones (its flags and :func:`run_batch` read
    them)."""

    jobs: str | None = None  # the JSONL job file
    out: str | None = None  # the output folder
    retries: int = 1  # extra attempts for a job that crashes
    keep_models: int = 1  # loaded models kept per process
    verbose: bool = False  # each job's own output and progress bars


BATCH = BatchSettings()
SUMMARY_NAME = "_summary.json"
STATE_DIR = ".batch"
BARRIER_TIMEOUT = timedelta(days=7)  # a process may wait at the final barrier while the others finish long jobs


class Ledger:
    """Per-process append-only attempt log (see module doc); reads every process's log."""

    def __init__(self, folder: Path, rank: int) -> None:
        self.folder = folder
        self.path = folder / f"attempts-{rank}.jsonl"

    def start(self, job_id: str) -> None:
        append_json_line(self.path, {"id": job_id, "event": "start", "time": time.time(), "pid": os.getpid()})

    def end(self, job_id: str, status: str) -> None:
        append_json_line(self.path, {"id": job_id, "event": "end", "status": status, "time": time.time()})

    def events(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.folder.glob("attempts-*.jsonl")):
            out += [e for e in read_json_lines(path) if isinstance(e, dict)]  # a killed process's torn last line is dropped
        return out

    def deaths(self) -> Counter:
        """Per job id: attempts that started and never ended (the process died inside the job) since its last success."""
        count: Counter = Counter()
        for e in sorted(self.events(), key=lambda e: e.get("time", 0)):
            if e.get("event") == "start":
                count[e.get("id")] += 1
            elif e.get("event") == "end":
                count[e.get("id")] = 0 if e.get("status") == "done" else max(0, count[e.get("id")] - 1)
        return count


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, PosevidError) else f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_with_retries(job: Job, out_dir: Path, cache: ModelCache, ledger: Ledger, *, retries: int, deaths: int, quiet: bool) -> dict:
    """Run one job; an exception is retried up to ``retries`` times, a user error (PosevidError) is not."""
    record: dict[str, Any] = {"id": job.id, "line": job.line, "task": job.task}
    budget = retries + 1 - deaths
    if budget <= 0:
        return dict(
            record, status="failed", attempts=deaths, error=f"the process died in this job {deaths} time(s) (killed or out of memory)"
        )
    error = ""
    for attempt in range(1, budget + 1):
        ledger.start(job.id)
        t0 = time.perf_counter()
        try:
            files = run_job(job, out_dir, cache, quiet=quiet)
        except PosevidError as exc:  # bad input: the same next time
            ledger.end(job.id, "failed")
            return dict(record, status="failed", attempts=deaths + attempt, error=_one_line(exc))
        except Exception as exc:
            ledger.end(job.id, "failed")
            error = _one_line(exc)
            print(f"posevid batch: job {job.id} (line {job.line}) attempt {attempt} crashed: {error}", file=sys.stderr)
            continue
        ledger.end(job.id, "done")
        seconds = round(time.perf_counter() - t0, 3)
        return dict(record, status="done", attempts=deaths + attempt, seconds=seconds, outputs=[f.name for f in files])
    return dict(record, status="failed", attempts=deaths + budget, error=error)


def run_batch(jobs_file: str | os.PathLike, out_dir: str | os.PathLike, *, retries: int = BATCH.retries,
              keep_models: int = BATCH.keep_models, quiet: bool = not BATCH.verbose):  # fmt: skip
    """Run every unfinished job of ``jobs_file`` into ``out_dir``; returns the summary (main process) or None."""
    from accelerate import PartialState

    from posevid.utils.devices import cpu_only  # the training loop's rule too: CPU-only machines form gloo ranks

    if retries < 0:
        raise PosevidError(f"--retries must be >= 0, got {retries}")
    jobs, bad = read_jobs(jobs_file)  # one-line error for a missing/unreadable file, before any process waits
    state = PartialState(cpu=cpu_only(), timeout=BARRIER_TIMEOUT)
    _use_own_gpu(state)
    out_dir = Path(out_dir)
    state_dir = out_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    rank, world = state.process_index, state.num_processes
    results_path = state_dir / f"results-{rank}.json"
    results_path.unlink(missing_ok=True)
    ledger = Ledger(state_dir, rank)
    deaths = ledger.deaths()
    skipped = [j for j in jobs if is_done(j, out_dir)]
    done_ids = {j.id for j in skipped}
    pending = sorted((j for j in jobs if j.id not in done_ids), key=lambda j: (model_key(j), j.line))
    state.wait_for_everyone()  # every process has scanned OUT before anyone writes to it
    cache = model_cache(keep_models)
    records = []
    with state.split_between_processes(pending) as mine:
        for i, job in enumerate(mine, 1):
            rec = _run_with_retries(job, out_dir, cache, ledger, retries=retries, deaths=deaths[job.id], quiet=quiet)
            rec["process"] = rank
            records.append(rec)
            tag = f"[{rank + 1}/{world}] " if world > 1 else ""
            detail = f"{rec['seconds']:.1f} s" if rec["status"] == "done" else rec["error"]
            print(f"{tag}{rec['status']} {job.id} (line {job.line}, {i}/{len(mine)}): {detail}", file=sys.stderr, flush=True)
    with atomic_path(results_path) as tmp:
        tmp.write_text(json.dumps({"process": rank, "records": records, "model_loads": cache.loads}) + "\n")
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    return _write_summary(out_dir, jobs_file, world, skipped, bad)


def _use_own_gpu(state) -> None:
    """One GPU per process under accelerate launch: ``--device cuda`` means this process's GPU."""
    import torch

    if torch.cuda.is_available() and state.num_processes > 1:
        torch.cuda.set_device(state.local_process_index % torch.cuda.device_count())


def _write_summary(out_dir: Path, jobs_file, world: int, skipped: list[Job], bad) -> dict:
    records, loads = [], {}
    for rank in range(world):
        data = json.loads((out_dir / STATE_DIR / f"results-{rank}.json").read_text())
        records += data["records"]
        loads[str(rank)] = data["model_loads"]
    records.sort(key=lambda r: r["line"])
    done = [r for r in records if r["status"] == "done"]
    failed = [r for r in records if r["status"] == "failed"]
    summary = {
        "jobs_file": str(jobs_file),
        "out": str(out_dir),
        "processes": world,
        "counts": {"done": len(done), "skipped": len(skipped), "failed": len(failed), "bad_lines": len(bad)},
        "done": done,
        "skipped": [{"id": j.id, "line": j.line, "task": j.task} for j in skipped],
        "failed": failed,
        "bad_lines": [{"line": b.line, "error": b.error} for b in bad],
        "model_loads": loads,
    }
    with atomic_path(out_dir / SUMMARY_NAME) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
