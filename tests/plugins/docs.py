"""The documentation's marked shell blocks, as CI reads them: ``.ci/doc_blocks.py`` loaded once for every test.

(``.ci/doc_blocks.py`` is stdlib-only and lives outside the package because ``.ci/run`` calls it before anything
is installed.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("doc_blocks", ROOT / ".ci" / "doc_blocks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doc_blocks = _load()
