"""``python -m posevid.training RECIPE ...``: the entry point for ``accelerate launch -m posevid.training`` and ``torchrun -m``."""

from __future__ import annotations

import argparse
import sys

from posevid.errors import PosevidError


def main(argv: list[str] | None = None) -> int:
    from posevid.training.cli import add_arguments, run

    parser = argparse.ArgumentParser(
        prog="python -m posevid.training",
        description="Train a posevid recipe (one or many processes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except PosevidError as exc:
        print(f"posevid train: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
