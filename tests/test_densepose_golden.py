"""DensePose R-CNN against detectron2's own tensors (tests/fixtures/densepose_tiny), stage by stage.

Each stage is checked twice: with our previous stage (end to end, the predictor's own run with
``return_stages=True``) and fed the golden previous stage (the model's one composition, ``DensePoseRCNN.forward``,
started from it), so a near-tie in sorting cannot hide an error. Both images of ``meta.json``, weights from the .pkl and the
safetensors. The negative controls at the end prove the comparison catches the classic mistakes.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from _densepose_golden import (
    IMAGES,
    LABEL_FLIPS,
    META,
    TOL,
    assert_close,
    assert_close_except_flipped_labels,
    config,
    error,
    fed,
    golden,
    golden_pair,
    match_near_ties,
    original_to_resized,
    predictor,
    resized_to_original,
    rgb,
    stage_run,
    state,
)

pytestmark = pytest.mark.slow  # ~1 min on 2 busy cores: the tiny model still runs at the reference's 800 px
KINDS = ("pkl", "safetensors")


def test_weights_pkl_and_safetensors_are_the_same_state_dict():
    a, b = state("pkl"), state("safetensors")
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_widths_come_from_the_checkpoint():
    from posevid.densepose.model import widths_from_state_dict

    w = widths_from_state_dict(state("pkl"))
    dims = META.get("dims", {})
    s = state("pkl")
    assert w.fpn == s["backbone.fpn_output2.weight"].shape[0]
    assert w.stem == s["backbone.bottom_up.stem.conv1.weight"].shape[0]
    if dims:  # the fixture's own record of its reduced widths agrees with what we read from the tensors
        assert (w.fpn, w.stem, w.stage_out[0], w.box_fc[0], w.dp_head_dim, w.decoder_dim) == (
            dims["fpn"], dims["stem"], dims["res2"], dims["fc"], dims["dp_head"], dims["dec"])


@pytest.mark.parametrize("image", IMAGES)
def test_resize_and_padding(image):
    g, (_, run) = golden(image), stage_run("pkl", image)
    assert list(run.batch.shape) == g["images_tensor_shape"].tolist()
    assert list(run.batch.shape[-2:]) == META["images"][image]["padded_hw"]
    if "image_resized_bgr_uint8.sha256" in g:
        from posevid.densepose.predictor import resize_uint8, resized_shape

        frame = rgb(image)[:, :, ::-1]
        cfg = config()
        resized = resize_uint8(np.ascontiguousarray(frame), resized_shape(*frame.shape[:2], cfg.min_size, cfg.max_size))
        assert list(resized.shape) == g["image_resized_bgr_uint8.shape"].tolist()
        # a hash is fair here: PIL resamples uint8 in fixed point (its coefficients are plain IEEE double arithmetic,
        # no CPU-dispatched kernels), so the bytes are the same on every x86-64 CPU and thread count
        assert hashlib.sha256(resized.tobytes()).digest() == bytes(g["image_resized_bgr_uint8.sha256"].tolist())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("image", IMAGES)
def test_every_stage_end_to_end(kind, image):
    g, (final, run) = golden(image), stage_run(kind, image)
    # FPN features (only image0 keeps them)
    for name, t in run.features.items():
        if golden_pair(g, f"features.{name}", t) is not None:
            assert_close(g, f"features.{name}", t)
    # RPN proposals: same boxes and logits in the same order, up to swaps of near-tied logits
    boxes, logits = run.proposal_boxes[0], run.proposal_logits[0]
    assert match_near_ties(boxes, logits, g["proposals.boxes"], g["proposals.objectness_logits"]) <= TOL
    # detections (end to end): same boxes in the same order up to near-tied scores (in the golden's coordinates)
    gd = g["detections.boxes_resized"]
    dets = run.detections[0]
    ours = dets.boxes
    if torch.equal(gd, g["final.boxes_original"]):  # detectron2 scales the Boxes in place in detector_postprocess
        ours = resized_to_original(ours, run.image_sizes[0], rgb(image).shape[:2])
    assert match_near_ties(ours, dets.scores, gd, g["detections.scores"]) <= TOL
    if golden_pair(g, "decoder.output", run.decoded) is not None:
        assert_close(g, "decoder.output", run.decoded)
    # final boxes and scores in the original image
    assert match_near_ties(final.boxes, final.scores, g["final.boxes_original"], g["final.scores"]) <= TOL
    # per-instance chart results (what apply_net.py dump stores)
    i = 0
    while f"result.{i}.labels" in g:
        chart = final.chart(i)
        gl = g[f"result.{i}.labels"].long()
        assert chart.labels.shape == gl.shape
        assert (chart.labels == gl).float().mean() >= 1 - LABEL_FLIPS
        pair = golden_pair(g, f"result.{i}.uv", chart.uv)
        assert pair is not None, f"fixture has no result.{i}.uv"
        assert_close_except_flipped_labels(*pair, f"result.{i}.uv")
        i += 1
    assert i >= 1


def _golden_fed_box_head(image):
    """The box head, posevid's composition started from the golden proposals (and our features)."""
    g, (_, run) = golden(image), stage_run("pkl", image)
    return fed("pkl", "box_head", image_sizes=run.image_sizes, features=run.features, proposal_boxes=[g["proposals.boxes"]])


def _golden_fed_densepose_pooler(image):
    """The DensePose pooler, posevid's composition started from the golden first detection (and our decoder output)."""
    g, (_, run) = golden(image), stage_run("pkl", image)
    first = original_to_resized(g["final.boxes_original"][:1], run.image_sizes[0], rgb(image).shape[:2])
    return fed("pkl", "densepose_pooled", image_sizes=run.image_sizes, decoded=run.decoded, densepose_boxes=[first])


@pytest.mark.parametrize("image", IMAGES)
def test_stages_fed_the_golden_previous_stage(image):
    g, (_, run) = golden(image), stage_run("pkl", image)
    sizes = run.image_sizes
    # golden proposals -> box head
    box = _golden_fed_box_head(image)
    assert_close(g, "box_head.features", box.box_features)
    assert_close(g, "box_predictor.scores_logits", box.class_logits)
    assert_close(g, "box_predictor.deltas", box.box_deltas)
    # golden box head outputs -> detections
    dets = fed("pkl", "detections", image_sizes=sizes, proposal_boxes=[g["proposals.boxes"]],
               class_logits=g["box_predictor.scores_logits"], box_deltas=g["box_predictor.deltas"]).detections[0]  # fmt: skip
    ours = dets.boxes
    if torch.equal(g["detections.boxes_resized"], g["final.boxes_original"]):
        ours = resized_to_original(ours, sizes[0], rgb(image).shape[:2])
    assert_close(g, "detections.boxes_resized", ours)
    assert torch.equal(dets.scores, g["detections.scores"]) or error(dets.scores, g["detections.scores"]) <= TOL
    # golden first detection -> DensePose pooler; golden head input -> head; golden head output -> chart predictor
    assert_close(g, "densepose_head.input", _golden_fed_densepose_pooler(image).densepose_pooled)
    head = fed("pkl", "densepose_head", image_sizes=sizes, densepose_pooled=g["densepose_head.input"]).densepose_head
    assert_close(g, "densepose_head.output", head)
    charts = fed("pkl", "charts", image_sizes=sizes, densepose_head=g["densepose_head.output"]).charts
    for name, t in charts.items():
        assert_close(g, f"densepose_predictor.{name}", t)
    # golden-sized chart maps -> chart result of instance 0, when the fixture keeps them whole
    if all(f"densepose_predictor.{k}" in g for k in ("coarse_segm", "fine_segm", "u", "v")):
        from posevid.densepose.predictor import chart_result

        res = chart_result({k: g[f"densepose_predictor.{k}"] for k in ("coarse_segm", "fine_segm", "u", "v")}, g["final.boxes_original"][0])
        assert (res.labels == g["result.0.labels"].long()).float().mean() >= 0.999


def test_a_stage_given_no_input_names_what_it_needs():
    with pytest.raises(ValueError, match=r"stage 'box_head' needs Stages.features"):
        fed("pkl", "box_head", image_sizes=[(32, 32)], proposal_boxes=[torch.zeros(0, 4)])


@pytest.mark.parametrize("image", IMAGES)
def test_dreampose_npy(image):
    from posevid.densepose.extract import dreampose_canvas

    g, (final, _) = golden(image), stage_run("safetensors", image)
    canvas, _ = dreampose_canvas(final, 0)
    assert canvas.dtype == np.float64 and canvas.shape[0] == 2
    if "dreampose_npy" in g:
        assert_close_except_flipped_labels(torch.from_numpy(canvas), g["dreampose_npy"], "canvas")
    else:
        y0, x0, h, w = g["dreampose_npy.origin"].tolist()
        assert canvas.shape[1:] == (h, w)
        win = g["dreampose_npy.window"]
        assert_close_except_flipped_labels(torch.from_numpy(canvas[:, y0 : y0 + win.shape[1], x0 : x0 + win.shape[2]]), win, "canvas")
        outside = canvas.copy()
        outside[:, y0 : y0 + win.shape[1], x0 : x0 + win.shape[2]] = 0
        assert not outside.any()


# ------------------------------------------------------------------------------------------------
# Negative controls: the comparisons above fail for these mistakes
# ------------------------------------------------------------------------------------------------
def test_negative_control_aligned_roi_align_is_caught(monkeypatch):
    import posevid.densepose.model as dp_model
    from posevid.densepose.ops import roi_align

    image = IMAGES[0]
    g = golden(image)
    stage_run("pkl", image)  # our own stages, computed (and cached) unpatched
    # the mistake: ROIAlign with the half-pixel shift (ROIAlignV2), not this model's
    monkeypatch.setattr(dp_model, "roi_align", lambda *args: roi_align(*args, aligned=True))
    assert error(*golden_pair(g, "box_head.features", _golden_fed_box_head(image).box_features)) > TOL
    assert error(*golden_pair(g, "densepose_head.input", _golden_fed_densepose_pooler(image).densepose_pooled)) > TOL


def test_negative_control_nms_across_levels_is_caught(monkeypatch):
    import posevid.densepose.model as dp_model
    from posevid.densepose.ops import nms

    runs = {image: stage_run("pkl", image)[1] for image in IMAGES}  # computed (and cached) unpatched
    # the mistake: one NMS over all pyramid levels together (the level index ignored)
    monkeypatch.setattr(dp_model, "batched_nms", lambda boxes, scores, idxs, threshold: nms(boxes, scores, threshold))
    # Boxes of different pyramid levels rarely overlap by > 0.7, so one image may not show it (image0 does not);
    # the case as a whole must.
    caught = []
    for image in IMAGES:
        g, run = golden(image), runs[image]
        proposals = fed("pkl", "proposals", image_sizes=run.image_sizes, features=run.features)
        boxes, logits = proposals.proposal_boxes[0], proposals.proposal_logits[0]
        same_shape = boxes.shape == g["proposals.boxes"].shape
        caught.append(not same_shape or match_near_ties(boxes, logits, g["proposals.boxes"], g["proposals.objectness_logits"]) > TOL)
    assert any(caught)


def test_negative_control_rgb_input_is_caught():
    image = next(i for i in IMAGES if any(k.startswith("features.") for k in golden(i)))
    g = golden(image)
    pred = predictor("pkl")
    pred = pred.with_config(dataclasses.replace(pred.cfg, input_format="RGB"))  # the mistake: the RGB frame fed as it is
    batch, sizes = pred.preprocess([rgb(image)])
    p5 = fed("pkl", "features", image_sizes=sizes, batch=batch).features["p5"]
    assert error(*golden_pair(g, "features.p5", p5)) > TOL


def test_negative_control_flipped_label_allowance_is_small():
    uv = golden(IMAGES[0])["result.0.uv"].double()
    scale = max(1.0, float(uv.abs().max()))
    one = uv.clone()
    one[:, 0, 0] += scale  # one pixel whose label flipped: allowed
    assert_close_except_flipped_labels(one, uv, "one pixel")
    rows = uv.clone()
    rows[:, :2] += scale  # two rows of pixels: not a label flip
    everywhere = uv + 2 * TOL * scale  # every pixel slightly off
    for name, bad in (("rows", rows), ("everywhere", everywhere)):
        with pytest.raises(AssertionError, match=f"{name}: .* pixels beyond"):
            assert_close_except_flipped_labels(bad, uv, name)
