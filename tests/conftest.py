"""Shared test setup. Area-specific fixtures live in ``tests/plugins/<area>.py`` (auto-registered)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Tiny test models gain nothing from intra-op threads, and thread contention on 2 cores made them 20-100x
# slower; subprocesses (CLI tests, DDP ranks) inherit this too.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
REPO = TESTS.parent
EXAMPLES = REPO / "examples"

pytest_plugins = sorted(f"plugins.{p.stem}" for p in (TESTS / "plugins").glob("*.py") if p.stem != "__init__")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES
