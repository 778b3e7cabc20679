"""The model builders' names, without importing torch: what the CLI offers and checks. The
builders themselves are in `oracle.ml.models` (a test holds the two lists equal)."""

from typing import Final

CLASSIFIERS = (
    "basecnn",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "vgg16",
    "efficientnet_lite0",
    "resnet50v2",
)
ENSEMBLE = "ensemble"
SUPER_RESOLUTION = ("srresnet", "srgan")  # oracle/ml/sr: the generator is SRResNet in both
SR_SCALE: Final = 4

CLASSIFICATION_TASK: Final = "classification"
SUPER_RESOLUTION_TASK: Final = "super-resolution"
