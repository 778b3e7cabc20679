"""SRResNet and the discriminator as the paper draws them, and tiled inference that changes
nothing but the memory it needs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oracle.ml.sr.card import SrInput
from oracle.ml.sr.infer import consistency, upscale
from oracle.ml.sr.models import Discriminator, ResidualBlock, SRResNet


def test_an_untrained_srresnet_is_bicubic_and_learns_what_to_add() -> None:
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        out = SRResNet().eval()(x)
    assert torch.equal(out, F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))


def test_srresnet_has_sixteen_residual_blocks_and_two_pixel_shuffles() -> None:
    model = SRResNet()
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) == 16
    shuffles = [m for m in model.modules() if isinstance(m, nn.PixelShuffle)]
    assert [m.upscale_factor for m in shuffles] == [2, 2]
    assert sum(p.numel() for p in model.parameters()) == 1_548_547  # ~1.5 M, as published
    with torch.inference_mode():
        assert model.eval()(torch.rand(2, 3, 13, 17)).shape == (2, 3, 52, 68)


def test_the_discriminator_gives_one_logit_per_image() -> None:
    model = Discriminator().eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    with torch.inference_mode():
        assert model(torch.rand(3, 3, 96, 96)).shape == (3,)


def test_tiles_with_their_receptive_field_as_margin_give_the_untiled_output() -> None:
    torch.manual_seed(0)
    model = SRResNet().eval()
    with torch.no_grad():  # the last convolution starts at zero (the output is bicubic): wake it
        nn.init.normal_(model.tail[-1].weight, std=0.05)
    lr = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    whole = upscale(model, lr, torch.device("cpu"), tile=1000, margin=0)
    tiled = upscale(model, lr, torch.device("cpu"), tile=24, margin=SrInput().margin)
    assert whole.shape == tiled.shape == (200, 280, 3)
    assert whole.std() > 50
    difference = np.abs(whole.astype(int) - tiled.astype(int))
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3
    too_thin = upscale(model, lr, torch.device("cpu"), tile=24, margin=8)
    assert np.abs(whole.astype(int) - too_thin.astype(int)).max() > 1  # the margin is what makes it exact


def test_consistency_is_high_for_an_output_that_keeps_to_its_input() -> None:
    from oracle.ml.sr.data import bundled, downscale, load_rgb, modcrop, upscale_bicubic

    hr = modcrop(load_rgb(bundled(["coffee.png"])[0]), 4)
    lr = downscale(hr, 4)
    assert consistency(lr, hr) > consistency(lr, np.zeros_like(hr)) + 20
    assert consistency(lr, upscale_bicubic(lr, 4)) > 30


@pytest.mark.parametrize("side", [16, 40])
def test_a_card_refuses_a_tile_smaller_than_it_can_use(side: int) -> None:
    assert SrInput(tile=side).tile == side
    with pytest.raises(ValueError, match="greater than or equal"):
        SrInput(tile=8)


def test_a_card_cannot_promise_an_output_too_large_to_pin() -> None:
    from oracle.ml.sr.card import MAX_INPUT_PIXELS

    assert SrInput(max_pixels=MAX_INPUT_PIXELS).max_pixels * 16 * 3 < 32 << 20  # the node's default cap
    with pytest.raises(ValueError, match="less than or equal"):
        SrInput(max_pixels=MAX_INPUT_PIXELS + 1)
