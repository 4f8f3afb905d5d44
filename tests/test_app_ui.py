"""Error translation of the UI handlers: user mistakes keep their one line, crashes become a short note."""

from __future__ import annotations

import asyncio
import logging

import pytest

gr = pytest.importorskip("gradio")

from posevid.app.jobs import JobCancelled  # noqa: E402
from posevid.app.ui import _friendly  # noqa: E402
from posevid.errors import InputError  # noqa: E402


def _raise(exc):
    @_friendly
    async def handler():
        raise exc

    return handler


def test_user_mistake_is_shown_as_its_one_line():
    with pytest.raises(gr.Error) as err:
        asyncio.run(_raise(InputError("Pose: 'x.mp4' does not contain mp4 data", hint="upload the real file"))())
    assert err.value.message == "Pose: 'x.mp4' does not contain mp4 data (upload the real file)"


def test_unexpected_error_is_a_short_note_and_the_traceback_goes_to_the_log(caplog):
    with caplog.at_level(logging.ERROR, logger="posevid.app"), pytest.raises(gr.Error) as err:
        asyncio.run(_raise(RuntimeError("CUDA kernel exploded at /secret/path.py:12"))())
    assert err.value.message == "Internal error (RuntimeError); the details are in the server log."
    assert "secret" not in err.value.message and "Traceback" not in err.value.message
    assert "CUDA kernel exploded" in caplog.text  # kept for the operator


def test_cancelled_job_says_so():
    with pytest.raises(gr.Error) as err:
        asyncio.run(_raise(JobCancelled("job 3 cancelled"))())
    assert err.value.message == "Cancelled."
