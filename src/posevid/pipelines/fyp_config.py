"""Moved to :mod:`posevid.commands.fyp_config` (reading the reference's YAML is command-line work)."""

from posevid.commands.fyp_config import layout_from_paths, read_sample_config  # noqa: F401
