"""posevid.models: the networks, their loading and the official layouts.

Nothing is imported here (torch stays unloaded for command-line parsing).
"""

TINY_SEED = 0
"""The seed of the tiny random models' weights (``posevid make-tiny --seed``, ``models.tiny*.write_tiny_*``), defined once."""
