"""``posevid batch JOBS.jsonl --out DIR``: many generate/animate/pose jobs, one process or many (accelerate launch).

One job per line, with the flags of 'posevid generate', 'posevid animate' or 'posevid pose' as fields, e.g.

  {"task": "generate", "id": "dance1", "prompt": "a robot dancing", "pose": "dance.mp4", "steps": 30}
  {"task": "animate", "image": "key.png", "densepose": "poses/", "model": "custom-chkpts", "epoch": 499}
  {"task": "pose", "id": "clip7", "video": "clip7.mp4", "size": "512x512"}

Each job writes DIR/<id>.mp4 and its DIR/<id>.json sidecar (a pose job: the folder DIR/<id>/ of 'posevid pose'),
atomically; rerunning skips finished jobs.
On several GPUs: accelerate launch --num_processes 8 -m posevid batch JOBS.jsonl --out DIR (see docs/scale.md).
"""

from __future__ import annotations

import argparse
import sys

from posevid.batch.driver import BatchSettings

D = BatchSettings()  # the defaults, defined once


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "batch",
        help="run many generate/animate/pose jobs from a JSONL file (resumable; several GPUs with accelerate launch)",
        description=__doc__,
        formatter_class=formatter_class,
    )
    p.add_argument("jobs", metavar="JOBS.jsonl",
                   help="one JSON job per line ('task': generate|animate|pose, optional 'id', flags as fields)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: DIR/<id>.mp4 + DIR/<id>.json per job (pose: DIR/<id>/), DIR/_summary.json")
    p.add_argument("--retries", type=int, default=D.retries, help="extra attempts for a job that crashes (a bad input fails at once)")
    p.add_argument(
        "--keep-models", type=int, default=D.keep_models, metavar="N",
        help="loaded models kept in memory per process (jobs are grouped by model)",
    )
    p.add_argument("--verbose", action="store_true", default=D.verbose, help="show each job's own output and progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posevid.batch.driver import SUMMARY_NAME, run_batch

    summary = run_batch(args.jobs, args.out, retries=args.retries, keep_models=args.keep_models, quiet=not args.verbose)
    if summary is None:  # not the main process of an accelerate launch: the main one reports
        return 0
    for bad in summary["bad_lines"]:
        print(f"posevid batch: {args.jobs} line {bad['line']}: {bad['error']}", file=sys.stderr)
    for job in summary["failed"]:
        print(
            f"posevid batch: job {job['id']} (line {job['line']}) failed after {job['attempts']} attempt(s): {job['error']}",
            file=sys.stderr,
        )
    c = summary["counts"]
    print(
        f"{c['done']} done, {c['skipped']} skipped (finished earlier), {c['failed']} failed, {c['bad_lines']} bad line(s); "
        f"summary in {args.out}/{SUMMARY_NAME}"
    )
    return 1 if c["failed"] or c["bad_lines"] else 0
