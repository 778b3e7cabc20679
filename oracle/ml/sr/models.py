"""SRResNet and SRGAN's discriminator as in Ledig et al. (2017), Fig. 4.

The generator maps an RGB batch in [0, 1] to one `SCALE`x larger, also in [0, 1] (the paper
scales its HR targets to [-1, 1]; one range for both sides keeps the bicubic comparison and the
output PNG free of a conversion). SRGAN's generator is this network, fine-tuned adversarially.

One addition to the paper's network: the output is the bicubic enlargement of the input plus
what the network adds (VDSR's global residual learning), the last convolution starting at zero,
so training starts from bicubic. The paper trains for 1e6 updates; on two CPU cores, the network
without it was still only 0.10 dB above bicubic after 2,100 (bench/results/sr-eval/README.md)."""

import torch
import torch.nn.functional as F
from torch import nn

from oracle.ml.names import SR_SCALE as SCALE

BLOCKS = 16
CHANNELS = 64


class ResidualBlock(nn.Module):
    """conv 3x3, BN, PReLU, conv 3x3, BN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class Upsample(nn.Module):
    """conv 3x3 to 4x the channels, pixel shuffle x2, PReLU (the paper's sub-pixel layer)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class SRResNet(nn.Module):
    """B residual blocks between a 9x9 head and two x2 sub-pixel stages, a 9x9 tail."""

    def __init__(self, blocks: int = BLOCKS, channels: int = CHANNELS) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(
            *(ResidualBlock(channels) for _ in range(blocks)),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        last = nn.Conv2d(channels, 3, 9, padding=4)
        nn.init.zeros_(last.weight)  # the output starts as the bicubic enlargement
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # Conv2d's bias: typed Optional, here present
        self.tail = nn.Sequential(Upsample(channels), Upsample(channels), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        bicubic = F.interpolate(x, scale_factor=SCALE, mode="bicubic", align_corners=False)
        out: torch.Tensor = bicubic + self.tail(features + self.body(features))
        return out


class Discriminator(nn.Module):
    """Eight 3x3 convolutions (64 to 512 channels, stride 2 every other), LeakyReLU 0.2, BN after
    the first; dense 1024, LeakyReLU, dense 1: one logit per 96x96 image. (The paper's dense
    layers read a flattened 6x6x512 map; an adaptive pool to 6x6 gives it that shape for any
    crop.)"""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        before = 3
        for index, (channels, stride) in enumerate(
            [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2)]
        ):
            layers.append(nn.Conv2d(before, channels, 3, stride=stride, padding=1, bias=index == 0))
            if index:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            before = channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(6))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * 36, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x)).squeeze(1)
        return out
