"""Fixtures for the web app: a real ``posevid app`` server process on tiny random models.

The server is started once per test session as a subprocess (``python -m posevid app ...``) on a free
port of 127.0.0.1, exactly as a user starts it, with a 2 MB upload limit so the size check is cheap to
exercise. Its log is kept so tests can check what happened server-side (e.g. that a model loaded once).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

UPLOAD_LIMIT_MB = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OutboundTrap:
    """A local "proxy" that only counts connections: the server gets it as HTTP(S)_PROXY, so any request it
    tries to send outside 127.0.0.1 lands here instead of the internet (and is counted)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()

    def env(self) -> dict[str, str]:
        proxies = {k: self.url for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")}
        return {**proxies, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self) -> None:
        self.sock.close()


@dataclass
class AppServer:
    url: str
    output_dir: Path
    process: subprocess.Popen
    log_path: Path
    trap: OutboundTrap
    upload_limit_mb: int = UPLOAD_LIMIT_MB

    def log(self) -> str:
        """The server's stdout + stderr so far (a file, so a chatty server can never block on a full pipe)."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def app_clip(fixtures_dir: Path) -> Path:
    """A real Charades clip (3IPI3), 32 frames, 144x256: small enough to upload and extract in a second."""
    return fixtures_dir / "app" / "charades_3IPI3_cut.mp4"


@pytest.fixture(scope="session")
def app_densepose_zip(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden DensePose frames zipped in a sub-folder, as a user uploads a pose folder."""
    import zipfile

    src = fixtures_dir / "dreampose_tiny_pipeline" / "poses"
    out = tmp_path_factory.mktemp("app_poses") / "poses.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for npy in sorted(src.glob("frame_*_densepose.npy")):
            zf.write(npy, f"poses/{npy.name}")
    return out


@pytest.fixture(scope="session")
def app_server(tiny_fyp_release: Path, tiny_dreampose_release: Path, tmp_path_factory: pytest.TempPathFactory):
    """``posevid app`` with the tiny Follow-Your-Pose and DreamPose models; yields an :class:`AppServer`."""
    out = tmp_path_factory.mktemp("app_outputs")
    port = free_port()
    trap = OutboundTrap()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **trap.env())
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # the app itself must turn analytics off
    env.pop("POSEVID_DENSEPOSE_WEIGHTS", None)  # no DensePose weights: a driving video gets the one-line "not available" error
    env["POSEVID_CACHE"] = str(out.parent / f"{out.name}_cache")  # never the user's cache
    cmd = [sys.executable, "-m", "posevid", "app", "--model", str(tiny_fyp_release), "--dreampose-model", str(tiny_dreampose_release),
           "--port", str(port), "--output-dir", str(out), "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--concurrency", "2"]
    log_path = out.parent / f"{out.name}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = AppServer(url=f"http://127.0.0.1:{port}/", output_dir=out, process=proc, log_path=log_path, trap=trap)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"posevid app exited with {proc.returncode}:\n{server.log()[-3000:]}")
        if "posevid app running at" in server.log():
            try:
                with urllib.request.urlopen(server.url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"posevid app did not start in 90 s:\n{server.log()[-3000:]}")
        time.sleep(0.2)
    yield server
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    trap.close()
