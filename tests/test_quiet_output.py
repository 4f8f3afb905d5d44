"""Library noise stays out of the user's terminal and logs (issue 12, item 8).

* torch's "Detected pickle protocol" UserWarning when reading a weight file;
* mediapipe's absl / TFLite start-up lines, printed by its graph threads straight to fd 2;
* nested progress bars (frames x steps) redraw with cursor-up escapes, junk when stderr is not a terminal.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from posevid.cli import main
from posevid.errors import CheckpointError
from posevid.utils.checkpoint import load_state_dict_file


def test_weight_file_in_pickle_protocol_3_reads_without_a_warning(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(3)}, path, pickle_protocol=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = load_state_dict_file(path)
    assert torch.equal(state["w"], torch.ones(3))
    assert not [w for w in caught if "pickle protocol" in str(w.message)], [str(w.message) for w in caught]


MEDIAPIPE_IDLE_THEN_RUN = """
import time
from posevid.pose.estimators.base import get_estimator
from posevid.video import read_frames

est = get_estimator("mediapipe")
time.sleep(1.5)  # the graph threads used to log here, after the constructor had restored stderr
found = sum(len(est(f)) for f in read_frames(sys.argv[1])[:8])
time.sleep(0.5)
print("found", found)
"""


def test_mediapipe_prints_no_absl_or_tflite_lines(examples_dir):
    code = "import sys\n" + MEDIAPIPE_IDLE_THEN_RUN
    cmd = [sys.executable, "-c", code, str(examples_dir / "charades_0_20.mp4")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "found 8"
    assert proc.stderr.strip() == "", proc.stderr  # no "W0000 ... inference_feedback_manager", no "XNNPACK delegate"


def test_nested_progress_bars_write_no_escape_sequences_to_a_log(tmp_path, tiny_dreampose_release, examples_dir, capfd):
    """animate shows frames x denoising steps; with stderr captured (not a terminal) only the outer bar is drawn."""
    capfd.readouterr()
    code = main(["animate", "--model", str(tiny_dreampose_release), "--image", str(examples_dir / "key_frame.png"),
                 "--densepose", str(tiny_dreampose_release / "poses"), "--frames", "0:2", "--steps", "2",
                 "--out", str(tmp_path / "v.mp4")])  # fmt: skip
    err = capfd.readouterr().err
    assert code == 0, err
    assert "frames:" in err  # the outer bar is still there
    assert "\x1b[" not in err, repr(err[:400])


def test_protocol_4_archive_is_refused_as_unreadable_not_as_damaged(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(3)}, path, pickle_protocol=4)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(CheckpointError, match="safe loader does not accept"):
        warnings.simplefilter("always")
        load_state_dict_file(path)
    assert not [w for w in caught if "pickle protocol" in str(w.message)]
