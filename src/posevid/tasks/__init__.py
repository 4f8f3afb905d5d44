"""The use cases as library functions, shared by the CLI commands, the app and ``posevid batch``.

One module per task (:mod:`.generate`, :mod:`.animate`, :mod:`.pose`, :mod:`.densepose`), each with its settings
dataclass (the only place its defaults live; DensePose's model options, shared with ``animate``, ``prepare`` and the
app, are read from :class:`posevid.densepose.options.DensePoseOptions`), one ``progress(stage, done, total)`` callback;
``generate`` and ``animate`` take an optional ``models=`` :class:`~posevid.tasks.common.ModelCache`.
:mod:`.fyp_config` reads the reference's sampling YAML into generate's settings. Nothing is imported here, so
``posevid --help`` stays fast.
"""
