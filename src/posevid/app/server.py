"""Start the posevid web app: offline, local by default, serving files only from its own output folder.

Gradio reads some settings from the environment when it is imported (analytics, its upload/cache
folder), so :func:`prepare_environment` must run before the first ``import gradio``: it turns analytics
and version checks off (no outbound request at start-up) and moves Gradio's upload cache inside the
app's output folder, so everything the server can hand out lives under one folder we control.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posevid.errors import InputError

log = logging.getLogger("posevid.app")


@dataclass
class AppConfig:
    """Everything ``posevid app`` can be started with; the defaults here are the only ones (its flags read them)."""

    model: str | None = None  # Follow-Your-Pose release folder (text -> video)
    # image -> video, per backbone (posevid.tasks.backbones): its model (--dreampose-model ...; none by default), and the
    # options set once at start-up (e.g. {"dreampose": {"epoch": 499, "custom_vae": ..., "densepose_weights": ...}}); an
    # option not given keeps its backbone's default, defined once in its options dataclass (the flags' help states it)
    animate_models: dict[str, str] = field(default_factory=dict)
    animate_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 7860
    output_dir: str = "outputs/app"
    max_upload_mb: float = 200.0
    concurrency: int = 1
    device: str = "auto"  # both tabs; auto = cuda > mps > cpu, as posevid generate / animate
    dtype: str | None = None  # both tabs; None: each task's own default (generate fp32, animate auto = the backbone's GPU dtype)
    examples_dir: str | None = None
    max_queue: int = 64
    preload: bool = False

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser().resolve()

    @property
    def upload_path(self) -> Path:
        return self.output_path / "_uploads"


def prepare_environment(config: AppConfig) -> None:
    """Environment for Gradio: call before importing it (later imports still see the same values)."""
    config.output_path.mkdir(parents=True, exist_ok=True)
    config.upload_path.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(config.upload_path)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(config.upload_path / "examples")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def launch(config: AppConfig, *, block: bool = True):
    """Build and serve the app; returns ``(demo, url)``. With ``block=False`` the server runs in a thread."""
    prepare_environment(config)
    _setup_logging()
    from posevid.app.ui import build_app

    demo = build_app(config)
    if config.preload:
        demo.posevid_state.preload()
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.max_queue)
    try:
        demo.launch(
            server_name=config.host,
            server_port=config.port,
            share=False,
            inbrowser=False,
            show_error=False,
            allowed_paths=[str(config.output_path)],
            max_file_size=config.max_upload_bytes,
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            quiet=True,
            prevent_thread_lock=True,
            footer_links=[],
            theme=_theme(),
        )
    except OSError as exc:
        raise InputError(f"cannot listen on {config.host}:{config.port}: port in use or not allowed", hint="pick another --port") from exc
    url = f"http://{config.host}:{getattr(demo, 'server_port', None) or config.port}/"
    print(f"posevid app running at {url} (outputs in {config.output_path}; Ctrl+C to stop)", flush=True)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"posevid app: warning: listening on {config.host}: anyone who can reach this machine can use the app (there is no login)",
              flush=True)
    if block:
        try:
            demo.block_thread()
        except KeyboardInterrupt:  # pragma: no cover - interactive stop
            pass
        finally:
            demo.close()
    return demo, url


def _setup_logging() -> None:
    """Job and model-loading events on stderr, one line each (the server's log)."""
    if log.handlers:
        return
    # A private duplicate of stderr: libraries that briefly point fd 2 at /dev/null (mediapipe's start-up
    # noise is silenced that way) must not swallow the server's own log lines from other threads.
    try:
        stream = os.fdopen(os.dup(2), "w", buffering=1)
    except OSError:
        stream = None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s posevid app: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _theme():
    """The default theme with system fonts: the page then loads nothing from outside the app."""
    import gradio as gr

    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)
