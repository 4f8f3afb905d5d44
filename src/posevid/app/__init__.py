"""posevid's web app (``posevid app``): pose extraction, text -> video, image -> video, history.

``launch(AppConfig(...))`` starts it; ``posevid.app.ui.build_app`` returns the Gradio Blocks for embedding.
Gradio is imported only by :func:`launch`/``build_app``, so importing this package stays cheap.
"""

from posevid.app.server import AppConfig, launch

__all__ = ["AppConfig", "launch"]
