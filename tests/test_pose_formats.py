"""Keypoint layouts, converters and the keypoints file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posevid.errors import InputError
from posevid.pose import KeypointSequence, convert
from posevid.pose.formats import BLAZEPOSE33, COCO17, COCO17_LINK_SIDES, COCO17_LINKS, FORMATS, LINKS, OPENPOSE18


def _random_coco(rng, shape=(5,)) -> np.ndarray:
    kp = rng.uniform(0, 500, size=shape + (17, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0.1, 1.0, size=shape + (17,))
    return kp


def test_names_and_links_are_consistent():
    assert len(COCO17) == 17 and len(OPENPOSE18) == 18 and len(BLAZEPOSE33) == 33
    for fmt, links in LINKS.items():
        k = len(FORMATS[fmt])
        assert all(0 <= a < k and 0 <= b < k and a != b for a, b in links)
    # the official FYP order: 19 MMPose links, left 0,1,8,10 / right 2,3,9,11 / rest centre
    assert len(COCO17_LINKS) == 19 and COCO17_LINKS[0] == (15, 13) and COCO17_LINKS[-1] == (4, 6)
    assert [i for i, s in enumerate(COCO17_LINK_SIDES) if s == "left"] == [0, 1, 8, 10]
    assert [i for i, s in enumerate(COCO17_LINK_SIDES) if s == "right"] == [2, 3, 9, 11]
    # every "left" link joins left joints (odd COCO indices >= 5), every "right" link right joints
    for (a, b), side in zip(COCO17_LINKS, COCO17_LINK_SIDES, strict=True):
        if side != "center":
            assert all(COCO17[j].startswith(side) for j in (a, b))


def test_coco_openpose_round_trip_is_exact_and_neck_is_mid_shoulders():
    rng = np.random.default_rng(0)
    coco = _random_coco(rng)
    op = convert(coco, "coco17", "openpose18")
    np.testing.assert_array_equal(convert(op, "openpose18", "coco17"), coco)
    np.testing.assert_allclose(op[:, 1, :2], (coco[:, 5, :2] + coco[:, 6, :2]) / 2, rtol=1e-6)
    for j, name in enumerate(OPENPOSE18):
        if name != "neck":
            np.testing.assert_array_equal(op[:, j], coco[:, COCO17.index(name)])
    coco[0, 5, 2] = 0  # a missing shoulder => no neck
    assert convert(coco, "coco17", "openpose18")[0, 1, 2] == 0


def test_blazepose_to_coco_selects_same_named_joints():
    rng = np.random.default_rng(1)
    blaze = rng.uniform(0, 1, size=(3, 33, 3)).astype(np.float32)
    coco = convert(blaze, "blazepose33", "coco17")
    for j, name in enumerate(COCO17):
        np.testing.assert_array_equal(coco[:, j], blaze[:, BLAZEPOSE33.index(name)])
    back = convert(coco, "coco17", "blazepose33")
    np.testing.assert_array_equal(convert(back, "blazepose33", "coco17"), coco)
    assert back[:, BLAZEPOSE33.index("left_heel"), 2].max() == 0  # COCO has no heels
    op = convert(blaze, "blazepose33", "openpose18")
    np.testing.assert_array_equal(op[:, 0], blaze[:, 0])


def test_converter_rejects_wrong_shapes_and_names():
    with pytest.raises(InputError, match="do not match format"):
        convert(np.zeros((17, 3)), "openpose18", "coco17")
    with pytest.raises(InputError, match="unknown keypoint format"):
        convert(np.zeros((17, 3)), "coco17", "h36m")


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_sequence_save_load_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(2)
    kp = _random_coco(rng, (4, 2))
    seq = KeypointSequence(kp, "coco17", 640, 368, 15.0, "clip.mp4", np.array([0, 2, 4, 6]), {"estimator": "x"})
    path = seq.save(tmp_path / f"k{suffix}")
    back = KeypointSequence.load(path)
    tol = 0 if suffix == ".npz" else 0.006
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=tol)
    assert (back.format, back.width, back.height, back.fps, back.source) == ("coco17", 640, 368, 15.0, "clip.mp4")
    assert back.frame_indices.tolist() == [0, 2, 4, 6] and back.meta == {"estimator": "x"}
    assert back.to_format("openpose18").keypoints.shape == (4, 2, 18, 3)
    assert not list(tmp_path.glob(".*part*"))  # atomic write left no temp file


def test_json_schema_is_documented_fields(tmp_path):
    seq = KeypointSequence(np.zeros((2, 17, 3)), "coco17", 10, 20, 8.0)
    data = json.loads(seq.save(tmp_path / "k.json").read_text())
    assert data["kind"] == "posevid.keypoints" and data["schema_version"] == 1
    assert {"format", "width", "height", "fps", "source", "frame_indices", "keypoints", "num_frames", "num_persons"} <= set(data)
    assert np.asarray(data["keypoints"]).shape == (2, 1, 17, 3)


def test_load_rejects_foreign_or_corrupt_files(tmp_path):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a posevid keypoints file"):
        KeypointSequence.load(tmp_path / "other.json")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read keypoints file"):
        KeypointSequence.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="not found"):
        KeypointSequence.load(tmp_path / "missing.json")
    future = json.loads(KeypointSequence(np.zeros((1, 17, 3)), "coco17", 1, 1, 1).save(tmp_path / "f.json").read_text())
    future["schema_version"] = 99
    (tmp_path / "f.json").write_text(json.dumps(future))
    with pytest.raises(InputError, match="schema 99"):
        KeypointSequence.load(tmp_path / "f.json")
