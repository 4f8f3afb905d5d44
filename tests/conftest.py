"""Shared test setup. Area-specific fixtures live in ``tests/plugins/<area>.py`` (auto-registered)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
REPO = TESTS.parent
EXAMPLES = REPO / "examples"

pytest_plugins = sorted(f"plugins.{p.stem}" for p in (TESTS / "plugins").glob("*.py") if p.stem != "__init__")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES
