"""DensePose input: folder scanning, the 5-frame window, UV images, and the restricted dump unpickler."""

from __future__ import annotations

import io
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from plugins.dreampose import write_synthetic_densepose
from posevid.data.dreampose_poses import (
    DensePoseSequence,
    UnsafePickleError,
    convert_densepose_dump,
    load_densepose_dump,
    load_uv,
    pose_tensor,
    scan_pose_folder,
    window_frames,
)
from posevid.errors import InputError


def test_reference_window_rule_and_nearest():
    assert [window_frames([0, 1, 2], t) for t in range(3)] == [[0, 0, 0, 1, 2], [1, 0, 1, 2, 1], [0, 1, 2, 2, 2]]
    assert window_frames([0, 1, 2], 1, "nearest") == [0, 0, 1, 2, 2]
    assert window_frames(list(range(10)), 5) == [3, 4, 5, 6, 7]


def test_digits_in_folder_name_do_not_break_neighbours(tmp_path):
    # the reference's str.replace on the whole path turns '91iZ9x8NI0S.mp4/frame_1' neighbours into "missing"
    seq = DensePoseSequence.from_folder(write_synthetic_densepose(tmp_path / "91iZ9x8NI0S.mp4", range(4)))
    assert seq.window_of(1) == [1, 0, 1, 2, 3]


def test_pose_tensor_values_and_layout():
    uv = [np.full((2, 4, 4), k / 10, dtype=np.float32) for k in range(5)]
    uv[2][:, 0, 0] = 0  # background pixel
    x = pose_tensor(uv, (8, 8))
    assert x.shape == (1, 10, 8, 8)
    torch.testing.assert_close(x[0, 0], torch.full((8, 8), -1.0))  # U of t-2 = 0 -> -1
    assert x[0, 4, 0, 0] == -1.0 and abs(x[0, 4, 7, 7].item() - (2 * 0.2 - 1)) < 1e-6


def test_gaps_are_an_error_unless_allowed(tmp_path):
    folder = write_synthetic_densepose(tmp_path / "p", [0, 1, 3, 4])
    with pytest.raises(InputError, match=r"gaps \(e\.g\. 1 -> 3") as err:
        scan_pose_folder(folder)
    assert "\n" not in str(err.value) and "--allow-gaps" in str(err.value)
    files, _ = scan_pose_folder(folder, allow_gaps=True)
    assert list(files) == [0, 1, 3, 4]


def test_zero_padded_names_read_numerically_with_warning_and_duplicates_refused(tmp_path):
    folder = write_synthetic_densepose(tmp_path / "p", range(3), name="frame_{n:03d}_densepose.npy")
    with pytest.warns(UserWarning, match="zero-padded"):
        seq = DensePoseSequence.from_folder(folder)
    assert seq.frames == [0, 1, 2] and seq.window_of(0) == [0, 0, 0, 1, 2]
    write_synthetic_densepose(folder, [1])  # frame_1_densepose.npy next to frame_001_densepose.npy
    with pytest.raises(InputError, match="two pose files for frame 1"):
        scan_pose_folder(folder)


def test_npy_with_pickle_or_wrong_shape_is_refused(tmp_path):
    (tmp_path / "frame_0_densepose.npy").write_bytes(b"")
    np.save(tmp_path / "frame_1_densepose.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "frame_2_densepose.npy", np.zeros((3, 4, 4)))
    for n in range(3):
        with pytest.raises(InputError):
            load_uv(tmp_path / f"frame_{n}_densepose.npy")


def test_uv_and_iuv_images(tmp_path):
    from PIL import Image

    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[1:4, 1:3] = (51, 102, 7)
    Image.fromarray(rgb).save(tmp_path / "frame_0.png")
    uv = load_uv(tmp_path / "frame_0.png", "uv")
    assert uv.shape == (2, 6, 5) and np.isclose(uv[0, 2, 2], 0.2) and np.isclose(uv[1, 2, 2], 0.4) and uv[:, 0, 0].sum() == 0
    iuv = load_uv(tmp_path / "frame_0.png", "iuv")  # read as RGB: R = V, G = U, B = part index
    assert np.isclose(iuv[0, 2, 2], 0.4) and np.isclose(iuv[1, 2, 2], 0.2)
    files, fmt = scan_pose_folder(tmp_path)
    assert fmt == "uv" and list(files) == [0]


# ---------------------------------------------------------------------------------------------- dumps
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "marker"
    payload = tmp_path / "evil.pkl"
    payload.write_bytes(pickle.dumps([{"file_name": "x.png", "pred_densepose": _Evil(marker)}]))
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle.*(posix|os|nt)\.system") as err:
        load_densepose_dump(payload)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    # builtins.eval through a torch.save-style zip container is refused as well
    evil_zip = tmp_path / "evil_zip.pkl"
    torch.save([_EvalReduce()], evil_zip)
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        load_densepose_dump(evil_zip)


class _EvalReduce:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def _entries(cls):
    uv0 = torch.rand(2, 5, 4) * 0.9 + 0.1
    uv1 = torch.rand(2, 6, 6) * 0.9 + 0.1
    return (
        [
            {
                "file_name": "/nowhere/frame_7.png",
                "scores": torch.tensor([0.99, 0.5]),
                "pred_boxes_XYXY": torch.tensor([[2.7, 3.2, 6.9, 8.1], [0.0, 0.0, 3.0, 3.0]]),
                "pred_densepose": [
                    cls(torch.ones(5, 4, dtype=torch.uint8), uv0),
                    cls(torch.ones(3, 3, dtype=torch.uint8), torch.rand(2, 3, 3)),
                ],
            },
            {
                "file_name": "/nowhere/frame_8.png",
                "scores": torch.tensor([0.9]),
                "pred_boxes_XYXY": torch.tensor([[9.5, 6.0, 16.0, 12.0]]),  # reaches past the 12-wide image: clipped
                "pred_densepose": [cls(torch.ones(6, 6, dtype=torch.uint8), uv1)],
            },
        ],
        uv0,
        uv1,
    )


@pytest.mark.parametrize("flavour", ["pickle", "torch"])
def test_dump_converts_to_reference_npy(tmp_path, fake_densepose_modules, flavour):
    entries, uv0, uv1 = _entries(fake_densepose_modules)
    dump = tmp_path / "dump.pkl"
    if flavour == "pickle":
        dump.write_bytes(pickle.dumps(entries))
    else:
        buf = io.BytesIO()
        torch.save(entries, buf)
        dump.write_bytes(buf.getvalue())
    for n in list(sys.modules):  # prove the converter needs neither detectron2 nor densepose
        if n.startswith("densepose"):
            sys.modules.pop(n)
    paths = convert_densepose_dump(dump, tmp_path / "out", image_size=(12, 12))
    assert [p.name for p in paths] == ["frame_7_densepose.npy", "frame_8_densepose.npy"]
    a = np.load(paths[0], allow_pickle=False)
    assert a.shape == (2, 12, 12) and a.dtype == np.float64
    np.testing.assert_allclose(a[:, 3:8, 2:6], uv0.numpy(), rtol=0, atol=1e-7)  # first instance at int-truncated (x1, y1) = (2, 3)
    assert a.sum() == pytest.approx(float(uv0.double().sum()))
    b = np.load(paths[1], allow_pickle=False)
    np.testing.assert_allclose(b[:, 6:12, 9:12], uv1[:, :, :3].numpy(), rtol=0, atol=1e-7)


def test_dump_without_person_is_an_error_or_zeros(tmp_path):
    dump = tmp_path / "dump.pkl"
    dump.write_bytes(pickle.dumps([{"file_name": "frame_0.png", "pred_boxes_XYXY": torch.zeros(0, 4), "pred_densepose": []}]))
    with pytest.raises(InputError, match="no person in frame_0.png"):
        convert_densepose_dump(dump, tmp_path / "o", image_size=(4, 4))
    (path,) = convert_densepose_dump(dump, tmp_path / "o", image_size=(4, 4), empty="zeros")
    assert np.load(path).sum() == 0
