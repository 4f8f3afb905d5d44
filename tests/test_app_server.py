"""The running ``posevid app`` over HTTP (no browser): safety, uploads, concurrency, pose results.

All tests share one server process (fixture ``app_server`` in tests/plugins/app.py) on tiny models.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from plugins.threads import torch_threads

gradio_client = pytest.importorskip("gradio_client")


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


def _client(server):
    return gradio_client.Client(server.url, verbose=False, download_files=False)


def _pose(client, video: Path, **kw):
    return client.predict(gradio_client.handle_file(str(video)), kw.get("style", "fyp"), True, kw.get("stride", 1), "source",
                          api_name="/pose")


def _file_url(server, value) -> str:
    """URL of a file output as the page gets it (``{'url': ...}`` dict or ``{'video': {...}}``)."""
    if isinstance(value, dict) and "video" in value:
        value = value["video"]
    return value["url"] if isinstance(value, dict) else urllib.parse.urljoin(server.url, f"gradio_api/file={value}")


def test_no_outbound_request_at_start_up_or_while_serving(app_server, app_clip, tmp_path):
    import subprocess
    import sys

    _pose(_client(app_server), app_clip, stride=4)  # start-up plus one real request
    assert app_server.trap.hits == 0, "the app tried to reach outside 127.0.0.1 (analytics, version check, hub, fonts...)"
    # control: the trap does catch an outbound request made with the server's environment
    probe = "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.com/', timeout=5)\nexcept Exception:\n    pass\n"
    env = {**__import__("os").environ, **app_server.trap.env()}
    subprocess.run([sys.executable, "-c", probe], env=env, timeout=30, check=True)
    assert app_server.trap.hits == 1


@pytest.mark.parametrize(
    "path",
    [
        "gradio_api/file=../../../../etc/passwd",
        "gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=%2Fetc%2Fpasswd",
        "gradio_api/file={out}/../../../../etc/passwd",
        "gradio_api/file={out}/_uploads/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "gradio_api/file={src}",
        "file=/etc/passwd",
        "gradio_api/file=~/.bashrc",
    ],
)
def test_path_traversal_is_refused(app_server, path):
    src = Path(__file__).resolve()  # a real file outside the output folder
    url = app_server.url + path.format(out=app_server.output_dir, src=src)
    status, body, _ = _get(url)
    assert status in (400, 403, 404), f"{url} -> {status}"
    assert b"root:" not in body and b"import" not in body


def test_pose_tab_end_to_end_and_results_are_served_from_the_output_folder(app_server, app_clip):
    result = _pose(_client(app_server), app_clip)
    skeleton, overlay, info, keypoints = result[:4]
    assert "Detection rate" in info
    rate = float(info.split("**")[2].split("%")[0])
    assert rate >= 90.0, info  # a person is visible in every frame of this Charades cut
    for value, kind in ((skeleton, "video/mp4"), (overlay, "video/mp4")):
        status, body, ctype = _get(_file_url(app_server, value))
        assert status == 200 and ctype.startswith(kind) and len(body) > 1000
    status, body, _ = _get(_file_url(app_server, keypoints))
    assert status == 200
    data = json.loads(body)
    assert data["kind"] == "posevid.keypoints" and data["num_frames"] == 32
    # outputs live in a per-request folder under the app's own output folder, with a sidecar
    sidecars = list(app_server.output_dir.glob("*/*-pose-*/pose.json"))  # the pose task: the same files as posevid pose
    assert sidecars and json.loads(sidecars[0].read_text())["settings"]["style"] == "fyp"


def test_oversized_upload_is_refused(app_server, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * (app_server.upload_limit_mb * 2**20 + 1000))
    boundary = "posevidboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(app_server.url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 413
    assert not any(p.name == "big.mp4" for p in app_server.output_dir.rglob("big.mp4"))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"just text", "not an accepted file type"),
        ("renamed.mp4", b"#!/bin/sh\necho this is not a video\n" * 3, "does not contain mp4 data"),
    ],
)
def test_wrong_file_type_is_refused_with_a_readable_message(app_server, tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(Exception) as err:
        _pose(_client(app_server), bad)
    text = str(err.value)
    assert message in text and "Traceback" not in text


def test_image_to_video_refuses_a_fake_image_and_a_fake_pose_archive(app_server, tmp_path, fixtures_dir, app_densepose_zip):
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"this is not a picture" * 10)
    fake_zip = tmp_path / "poses.zip"
    fake_zip.write_bytes(b"not a zip archive" * 10)
    image = fixtures_dir / "dreampose_tiny_pipeline" / "key_frame.png"
    client = _client(app_server)
    for img, poses, message in ((fake, app_densepose_zip, "not a readable image"), (image, fake_zip, "does not contain zip data")):
        with pytest.raises(Exception) as err:
            client.predict(gradio_client.handle_file(str(img)), [gradio_client.handle_file(str(poses))], 8, 3, 2, 0, "pndm",
                           api_name="/image_to_video")
        assert message in str(err.value), str(err.value)


def test_image_to_video_takes_a_driving_video_or_poses_and_says_what_is_wrong_in_one_line(app_server, app_clip, app_densepose_zip,
                                                                                         fixtures_dir, tmp_path):
    image = gradio_client.handle_file(str(fixtures_dir / "dreampose_tiny_pipeline" / "key_frame.png"))
    zipped, clip = [gradio_client.handle_file(str(app_densepose_zip))], gradio_client.handle_file(str(app_clip))
    fake = tmp_path / "dance.mp4"
    fake.write_bytes(b"not a video at all" * 10)
    client = _client(app_server)
    hits = app_server.trap.hits  # the outbound test's control adds one
    cases = (
        (zipped, clip, "give either DensePose poses or a driving video, not both"),
        (None, None, "no pose given"),
        (None, gradio_client.handle_file(str(fake)), "Driving video: 'dance.mp4' does not contain mp4 data"),
        # the server has no --densepose-weights, none in its cache, and is offline: the weights are named, nothing is downloaded
        (None, clip, "DensePose (densepose_rcnn_R_50_FPN_s1x) model is not available offline"),
    )
    for poses, driving, message in cases:
        with pytest.raises(Exception) as err:
            client.predict(image, poses, 8, 3, 2, 0, "pndm", driving, "track", api_name="/image_to_video")
        text = str(err.value)
        assert message in text and "\n" not in text and "Traceback" not in text, text
    assert app_server.trap.hits == hits  # no download attempt


def test_ten_requests_at_once_all_complete_none_lost(app_server, app_clip):
    before = set(app_server.output_dir.glob("*/*-pose-*"))
    logged = app_server.log().count("(pose) done")

    def one(i: int):
        client = _client(app_server)  # one browser session each
        return _pose(client, app_clip, stride=2 + i % 3)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(10)))
    assert len(results) == 10
    folders = {(app_server.output_dir / r[4]["data"][0][4]).parent for r in results}  # history row -> the request's own folder
    assert len(folders) == 10  # no two requests shared (or overwrote) a folder
    assert set(app_server.output_dir.glob("*/*-pose-*")) - before == folders
    for i, r in enumerate(results):  # each answer is its own request's: stride 2 + i % 3 -> frame count
        expected = -(-32 // (2 + i % 3))
        assert f"of {expected} frames" in r[2], (i, r[2])
    assert app_server.log().count("(pose) done") == logged + 10  # the server logged every one of them


def _wait_log(server, needle: str, timeout: float = 120.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if needle in log:
            return log
        if server.process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the server log:\n{server.log()[-2000:]}")


def test_cancel_stops_the_denoising_loop_and_the_model_is_loaded_once(app_server, examples_dir):
    import re
    import time

    client = _client(app_server)
    skeleton = gradio_client.handle_file(str(examples_dir / "dance_skeleton.mp4"))
    args = ("a dancer", "", skeleton, "skeleton video", 8, 2)
    job = client.submit(*args, 100, 12.5, "ddim", 1, 128, 128, api_name="/text_to_video")  # long enough to cancel mid-way
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until denoising has really started
        progress = job.status().progress_data
        if progress and progress[0].index and progress[0].length == 100:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no denoising progress reported; server log:\n{app_server.log()[-2000:]}")
    job.cancel()
    log = _wait_log(app_server, "(t2v) cancelled at step")
    step = int(re.search(r"\(t2v\) cancelled at step (\d+)/100", log).group(1))
    assert 1 <= step < 100  # stopped mid-way, server-side, not just hidden from the client
    # the next request reuses the loaded pipeline
    result = client.predict(*args, 2, 12.5, "ddim", 1, 64, 64, api_name="/text_to_video")
    assert "8 frames" in result[1]
    assert app_server.log().count("loaded ('followyourpose'") == 1


@pytest.mark.parametrize("source", ["keypoints", "raw video"])
def test_text_to_video_accepts_a_keypoints_file_or_a_raw_video_as_pose(app_server, app_clip, tmp_path, source):
    client = _client(app_server)
    if source == "keypoints":
        keypoints_url = _file_url(app_server, _pose(client, app_clip, stride=2)[3])
        status, body, _ = _get(keypoints_url)
        assert status == 200
        pose = tmp_path / "keypoints.json"
        pose.write_bytes(body)
    else:
        pose = app_clip
    result = client.predict("a person", "", gradio_client.handle_file(str(pose)), "auto", 3, 2, 2, 7.5, "ddim", 5, 64, 64,
                            api_name="/text_to_video")
    video, info, files = result[:3]
    assert "3 frames" in info
    status, body, ctype = _get(_file_url(app_server, video))
    assert status == 200 and ctype.startswith("video/") and len(body) > 1000
    sidecar = next(f for f in files if str(f.get("path", f) if isinstance(f, dict) else f).endswith(".json"))
    status, body, _ = _get(_file_url(app_server, sidecar))
    settings = json.loads(body)["settings"]
    assert settings["video_length"] == 3 and settings["stride"] == 2 and settings["seed"] == 5 and settings["width"] == 64


def test_text_to_video_matches_posevid_generate_for_the_same_settings(app_server, tiny_fyp_release, examples_dir, tmp_path):
    """The app is a front-end, not a fork: same settings, same frames as the CLI."""
    from PIL import Image, ImageSequence

    from posevid.cli import main

    skeleton = examples_dir / "dance_skeleton.mp4"
    result = _client(app_server).predict("a robot dancing", "", gradio_client.handle_file(str(skeleton)), "skeleton video", 3, 2, 2, 7.5,
                                         "ddim", 7, 64, 64, api_name="/text_to_video")
    gif_value = next(f for f in result[2] if str(f.get("path", "")).endswith(".gif"))
    status, app_gif, _ = _get(_file_url(app_server, gif_value))
    assert status == 200
    (tmp_path / "app.gif").write_bytes(app_gif)
    cli_gif = tmp_path / "cli.gif"
    with torch_threads(1):  # the app server runs with one thread (OMP_NUM_THREADS=1), whatever the suite's count
        assert main(["generate", "--model", str(tiny_fyp_release), "--prompt", "a robot dancing", "--pose", str(skeleton), "--frames", "3",
                     "--stride", "2", "--steps", "2", "--guidance", "7.5", "--seed", "7", "--height", "64", "--width", "64",
                     "--device", "cpu", "--out", str(cli_gif)]) == 0

    def frames(path):
        with Image.open(path) as im:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])

    a, b = frames(tmp_path / "app.gif"), frames(cli_gif)
    assert a.shape == b.shape == (3, 64, 64, 3)
    # equal up to float noise between two processes (another seed differs by up to 254 levels, 45 on average)
    assert np.abs(a.astype(int) - b).max() <= 3


def test_image_to_video_matches_posevid_animate_for_the_same_settings(app_server, tiny_dreampose_release, fixtures_dir,
                                                                       app_densepose_zip, tmp_path):
    from PIL import Image, ImageSequence

    from posevid.cli import main

    image = fixtures_dir / "dreampose_tiny_pipeline" / "key_frame.png"
    result = _client(app_server).predict(gradio_client.handle_file(str(image)), [gradio_client.handle_file(str(app_densepose_zip))],
                                         8, 3, 2, 11, "pndm", api_name="/image_to_video")
    gif_value = next(f for f in result[2] if str(f.get("path", "")).endswith(".gif"))
    status, app_gif, _ = _get(_file_url(app_server, gif_value))
    assert status == 200
    (tmp_path / "app.gif").write_bytes(app_gif)
    out = tmp_path / "cli.mp4"
    with torch_threads(1):  # the app server runs with one thread (OMP_NUM_THREADS=1), whatever the suite's count
        assert main(["animate", "--model", str(tiny_dreampose_release), "--image", str(image), "--densepose",
                     str(fixtures_dir / "dreampose_tiny_pipeline" / "poses"), "--s1", "8", "--s2", "3", "--steps", "2", "--seed", "11",
                     "--device", "cpu", "--quiet", "--out", str(out)]) == 0

    def frames(path):
        with Image.open(path) as im:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])

    a, b = frames(tmp_path / "app.gif"), frames(out.with_suffix(".gif"))
    assert a.shape == b.shape and a.shape[0] == 3
    assert np.abs(a.astype(int) - b).max() <= 3  # see the text -> video parity test
