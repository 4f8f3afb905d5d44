"""``posevid`` command line: one entry point, one module per subcommand.

Each subcommand lives in :mod:`posevid.commands` and exposes ``register(subparsers)``; heavy imports
happen inside the command's ``run`` so ``posevid --help`` is instant. User mistakes arrive here as
:class:`~posevid.errors.PosevidError` and leave as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

# CPU threads that spin while waiting for work made tiny-to-medium models 10-100x slower whenever another
# process was busy on the machine (measured on 2 cores: 7 s vs 0.05 s per step). Passive waiting costs
# little when the machine is idle. Set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from posevid import __version__  # noqa: E402
from posevid.errors import PosevidError  # noqa: E402

# Order = order in ``posevid --help``.
COMMANDS = (
    "generate", "pose", "densepose", "animate", "wan_preprocess", "batch", "prepare", "train", "eval", "app", "make_tiny", "convert",
)  # fmt: skip


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown once: not when the help already states one, nor for required flags, unset values or off switches."""

    def _format_text(self, text: str) -> str:
        """Module docstrings double as descriptions: show ``code`` and :role:`x` as plain text."""
        text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
        return super()._format_text(text.replace("``", ""))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS  # not ``in``: 0 == False
        if "(default" in text or "default:" in text or action.required or unset:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """A mistake in the flags is one line on stderr, exit code 2, like every other user mistake (argparse would print
    the whole usage block first; ``--help`` shows it). Subcommand parsers are of this class too (``add_subparsers``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="posevid",
        description="Make a video of a character follow a pose sequence (Follow-Your-Pose, DreamPose).",
        epilog="Run 'posevid COMMAND --help' for the options of each command.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"posevid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"posevid.commands.{name}").register(sub, _Formatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except PosevidError as exc:
        print(f"posevid {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"posevid {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"posevid {args.command}: error: out of memory (try --low-memory, fewer frames or a smaller size)", file=sys.stderr)
        return 3
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
