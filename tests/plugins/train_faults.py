"""Run ``python -m posevid.training`` with a SIGKILL at a precise point: fault injection from the tests, not the product.

Usage: ``python tests/plugins/train_faults.py WHEN STEP -- TRAINING ARGS...`` where WHEN is

* ``during-checkpoint``: right after the main process wrote ``trainable.safetensors`` of checkpoint STEP (the
  checkpoint is half written: only its staging folder exists);
* ``after-checkpoint``: right after checkpoint STEP is complete and committed.

The hooks wrap the training loop's own functions (``checkpointing.save_tensors``, ``Trainer._save_checkpoint``), so
the production code has no test switch.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(when: str, step: int) -> None:
    from posevid.training import checkpointing, engine

    if when == "during-checkpoint":
        save_tensors = checkpointing.save_tensors

        def save_then_kill(path: Path, tensors, metadata=None) -> None:
            save_tensors(path, tensors, metadata)
            if Path(path).name == "trainable.safetensors" and checkpointing.temp_dir(Path(), step).name in Path(path).parts:
                _kill()

        checkpointing.save_tensors = save_then_kill
    elif when == "after-checkpoint":
        save_checkpoint = engine.Trainer._save_checkpoint

        def save_checkpoint_then_kill(self, global_step, *args, **kwargs):
            save_checkpoint(self, global_step, *args, **kwargs)
            if global_step == step:
                _kill()

        engine.Trainer._save_checkpoint = save_checkpoint_then_kill
    else:
        raise SystemExit(f"unknown fault {when!r}: use during-checkpoint or after-checkpoint")


if __name__ == "__main__":
    when, step, sep, *rest = sys.argv[1:]
    assert sep == "--", "usage: train_faults.py WHEN STEP -- ARGS"
    install(when, int(step))
    from posevid.training.__main__ import main

    sys.exit(main(rest))
