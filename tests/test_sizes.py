"""One reader of ``WxH`` size flags (issue 20): two functions named ``parse_size`` returned (H, W) and (W, H)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from posevid.errors import InputError
from posevid.utils.sizes import Size, parse_size

SRC = Path(__file__).resolve().parents[1] / "src" / "posevid"


def test_one_size_reader_in_the_package():
    defined = [f"{path.relative_to(SRC)}:{node.lineno}" for path in sorted(SRC.rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.FunctionDef) and node.name == "parse_size"]  # fmt: skip
    assert defined == ["utils/sizes.py:" + defined[0].split(":")[1]], defined


def test_width_first_as_written_and_errors_name_the_flag():
    assert parse_size("512x640") == Size(width=512, height=640) == (512, 640)
    assert parse_size(" 36 X 45 ") == Size(36, 45) and parse_size(None) is None and parse_size("") is None
    with pytest.raises(InputError, match="^--densepose-size must look like WIDTHxHEIGHT"):
        parse_size("512", flag="--densepose-size")
    with pytest.raises(InputError, match="--size 0x5 is out of range"):
        parse_size("0x5")
