"""Small helpers shared by every part of posevid (checkpoints, output files, devices)."""
