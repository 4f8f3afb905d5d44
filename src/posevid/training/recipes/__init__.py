"""Training recipes by name: ``fyp-pose-encoder``, ``fyp-temporal``, ``dreampose-base``, ``dreampose-subject``, ``dreampose-vae``."""

from __future__ import annotations

from posevid.errors import InputError


def get_recipe(name: str):
    if name == "fyp-temporal":
        from posevid.training.recipes.fyp import TemporalRecipe

        return TemporalRecipe
    if name == "fyp-pose-encoder":
        from posevid.training.recipes.fyp import PoseEncoderRecipe

        return PoseEncoderRecipe
    if name in ("dreampose-base", "dreampose-subject"):
        from posevid.training.recipes.dreampose import DreamPoseUNetRecipe

        return DreamPoseUNetRecipe
    if name == "dreampose-vae":
        from posevid.training.recipes.dreampose import DreamPoseVAERecipe

        return DreamPoseVAERecipe
    from posevid.training.config import RECIPES

    raise InputError(f"unknown training recipe {name!r}", hint=f"use one of {', '.join(RECIPES)}")
