"""The image -> video tab's controls for each backbone's options, made from the options' own metadata.

A backbone's options dataclass (:mod:`posevid.tasks.backbones`) says for each option how the app shows it
(:class:`~posevid.tasks.backbones.Form`: label, widget, range); the default is the dataclass's. So a new backbone
appears in the app with its controls without any change here, and a default is defined once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from posevid.app.uploads import collect_densepose
from posevid.tasks.backbones import Backbone, Form

PREFIX = "i2v-"
# what turns a "files" upload into the option's value: the collector named by Form.upload, writing into a job folder
COLLECTORS: dict[str, Callable[..., Path]] = {"densepose": collect_densepose}


@dataclasses.dataclass(frozen=True)
class Control:
    """One option's control: which backbone and field it fills."""

    backbone: Backbone
    field: dataclasses.Field
    component: Any

    @property
    def form(self) -> Form:
        return self.field.metadata["form"]

    @property
    def elem_id(self) -> str:
        return self.component.elem_id


def elem_id(backbone: Backbone, f: dataclasses.Field) -> str:
    form: Form = f.metadata["form"]
    return PREFIX + (form.elem or f"{backbone.name}-{f.name.replace('_', '-')}")


def control(backbone: Backbone, f: dataclasses.Field):
    """The Gradio component for option ``f`` of ``backbone``, holding its default."""
    form: Form = f.metadata["form"]
    flag = f.metadata["flag"]
    default = backbone.default_of(f.name)
    common = {"label": form.label, "elem_id": elem_id(backbone, f)}
    info = {"info": form.info} if form.info else {}
    if form.widget == "files":
        return gr.File(file_count="multiple", file_types=list(form.file_types), **common)
    if form.widget == "slider":
        return gr.Slider(form.minimum, form.maximum, value=default, step=form.step, **common, **info)
    if form.widget == "number":
        return gr.Number(value=default, precision=0 if flag.type is int else None, minimum=form.minimum, **common, **info)
    if form.widget == "dropdown":
        return gr.Dropdown(list(flag.choices), value=default, **common, **info)
    if form.widget == "checkbox":
        return gr.Checkbox(value=bool(default), **common, **info)
    if form.widget == "text":
        return gr.Textbox(value=default or "", **common, **info)
    raise ValueError(f"{backbone.name}.{f.name}: unknown widget {form.widget!r}")


def option_controls(backbone: Backbone) -> list[Control]:
    """Build (inside the current Gradio context) the control of every option of ``backbone`` that has a Form, in the
    dataclass's order; those of a section after the others, in a closed accordion."""
    fields = [f for f in backbone.fields() if f.metadata.get("form") is not None]
    made = [Control(backbone, f, control(backbone, f)) for f in fields if not f.metadata["form"].section]
    for section in dict.fromkeys(f.metadata["form"].section for f in fields if f.metadata["form"].section):
        with gr.Accordion(section, open=False):
            made += [Control(backbone, f, control(backbone, f)) for f in fields if f.metadata["form"].section == section]
    return made


def option_value(c: Control, value: Any) -> Any:
    """A control's value as the option takes it: empty (or 0 where the default is None) keeps the default; numbers
    get the option's type (Gradio hands sliders back as floats)."""
    default = c.backbone.default_of(c.field.name)
    if value is None or value == "" or (default is None and value == 0):
        return default
    kind = c.field.metadata["flag"].type
    if kind in (int, float) and not isinstance(value, bool):
        return kind(value)
    return value


__all__ = ["COLLECTORS", "PREFIX", "Control", "control", "elem_id", "option_controls", "option_value"]
