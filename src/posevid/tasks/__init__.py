"""The use cases as library functions, shared by the CLI commands, the app and ``posevid batch``.

One module per task (:mod:`.generate`, :mod:`.animate`, :mod:`.pose`), each with its settings dataclass (the only
place its defaults live), one ``progress(stage, done, total)`` callback and an optional ``models=``
:class:`~posevid.tasks.common.ModelCache`. :mod:`.fyp_config` reads the reference's sampling YAML into generate's
settings. Nothing is imported here, so ``posevid --help`` stays fast.
"""
