"""The use cases as library functions, shared by the CLI commands, the app and ``posevid batch``.

One module per task (:mod:`.generate`, :mod:`.animate`, :mod:`.pose`, :mod:`.densepose`, :mod:`.wan_preprocess`,
:mod:`.prepare`, :mod:`.eval`, :mod:`.convert`, :mod:`.make_tiny`), each with its settings dataclass (the only place its
defaults live; a default a building block's function shares is defined once in that lower layer and read from there:
DensePose's model options from :class:`posevid.densepose.options.DensePoseOptions`, pose's from
``posevid.pose.options.POSE_DEFAULTS``, prepare's from ``posevid.data.defaults``, eval's from ``posevid.eval.defaults``,
generate's sampling from ``posevid.pipelines.fyp_checks.SAMPLING_DEFAULTS``, DreamPose's from
``posevid.pipelines.dreampose_defaults.DREAMPOSE_DEFAULTS``, Wan-Animate's from
``posevid.pipelines.wan_animate.WAN_ANIMATE_DEFAULTS``), one ``progress(stage, done, total)`` callback;
``generate`` and ``animate`` take an optional ``models=`` :class:`~posevid.tasks.common.ModelCache`. ``animate``'s
backbones (:mod:`.backbones`) hold each backbone's own options and their defaults.
:mod:`.fyp_config` reads the reference's sampling YAML into generate's settings. Nothing is imported here, so
``posevid --help`` stays fast.
"""
