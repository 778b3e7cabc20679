"""The model builders' names, without importing torch: what the CLI offers and checks. The
builders themselves are in `oracle.ml.models` (a test holds the two lists equal)."""

CLASSIFIERS = (
    "basecnn",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "vgg16",
    "efficientnet_lite0",
    "resnet50v2",
)
ENSEMBLE = "ensemble"
