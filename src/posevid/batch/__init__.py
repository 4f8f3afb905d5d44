"""``posevid batch``: many generate/animate jobs from a JSONL file, in one process or under ``accelerate launch``.

``jobs`` reads and checks the file, ``runner`` is the adapter that turns one job into a video (the only
module that knows which code makes it), ``driver`` shards, resumes, retries and writes the summary.
"""
