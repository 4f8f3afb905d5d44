"""DensePose R-CNN (``densepose_rcnn_R_50_FPN_s1x``) in plain PyTorch: no detectron2, no torchvision.

:mod:`.model` the network and its one stage composition (``DensePoseRCNN.forward`` on a :class:`~.model.Stages`
record), :mod:`.ops` NMS and ROIAlign, :mod:`.boxes` box arithmetic, :mod:`.weights` the model-zoo ``.pkl`` /
safetensors / download, :mod:`.predictor` frames -> charts, :mod:`.options` the model options (defaults and their one
check), :mod:`.extract` the per-video job that writes DreamPose's ``frame_N_densepose.npy`` files.

Nothing is imported here (torch stays unloaded for command-line parsing and the app's form).
"""
