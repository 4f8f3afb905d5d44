"""Deprecation warnings name the line that uses the old spelling, and posevid's own code may not use one.

``pyproject.toml`` turns a DeprecationWarning attributed to a ``posevid`` module into an error, while a user's (or a
test's) use of a deprecated spelling stays a warning. That only works if the warning is attributed to the code that
uses the old name, through posevid's internal calls and decorators such as ``torch.no_grad``.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

LIBRARY = """
import torch

from posevid.utils.deprecation import warn_deprecated


@torch.no_grad()
def api():
    return _inner()


def _inner():
    warn_deprecated("api() is deprecated")
    return 1
"""


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    (tmp_path / "fakelib.py").write_text(LIBRARY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("fakelib")
    sys.modules.pop("fakelib", None)


def test_the_warning_points_at_the_callers_line_past_internal_frames_and_decorators(fake_library):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        fake_library.api()
    (w,) = caught
    assert w.category is DeprecationWarning and w.filename == __file__ and w.lineno == line


def test_a_deprecation_attributed_to_posevid_code_fails_the_tests():
    # the filter of pyproject.toml is active here: the same warning, attributed to a posevid module, is an error
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old name", DeprecationWarning, "src/posevid/x.py", 1, module="posevid.tasks.x")
    with pytest.warns(DeprecationWarning):  # a user's (here: a test's) use stays a warning
        warnings.warn_explicit("old name", DeprecationWarning, __file__, 1, module="test_deprecations")
