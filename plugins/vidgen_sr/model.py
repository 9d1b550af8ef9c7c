"""Networks of the sr plugin: a compact SRResNet generator, the SRGAN discriminator, and the degradation.

The generator follows SRResNet (Ledig et al., CVPR 2017): a head convolution, residual blocks
(conv-PReLU-conv, no batch norm), a body convolution with a global skip, and sub-pixel (pixel-shuffle)
upsampling. To stay fast on CPUs it upsamples with one sub-pixel convolution (ESPCN-style, 3·s² channels)
and predicts a residual over the bicubic upscale of its input; that upscale is a fixed convolution at the
input's resolution, added before the pixel shuffle, so no full-resolution pass is spent on it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "vidgen-srresnet"
SCALES = (2, 4)


def downscale(hr: torch.Tensor, scale: int, quantize: bool = True) -> torch.Tensor:
    """The degradation the models are trained for: antialiased bicubic `(N, 3, H, W)` → `(N, 3, H/s, W/s)`.

    With `quantize`, the result is rounded to 8-bit levels like a decoded video frame.
    """
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    lr = lr.clamp(0, 1)
    return lr.mul(255).round().div(255) if quantize else lr


def upscale_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscale `(N, 3, h, w)` → `(N, 3, h·s, w·s)` (not clamped)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


CUBIC_A = -0.75  # the cubic convolution kernel of torch's (and OpenCV's) bicubic


def cubic_weight(distance: float) -> float:
    """Keys' cubic convolution kernel at `distance` pixels, with a = CUBIC_A."""
    x = abs(distance)
    if x <= 1:
        return (CUBIC_A + 2) * x**3 - (CUBIC_A + 3) * x**2 + 1
    if x < 2:
        return CUBIC_A * (x**3 - 5 * x**2 + 8 * x - 4)
    return 0.0


def bicubic_phase_kernels(scale: int) -> torch.Tensor:
    """The bicubic upscale by `scale` as 5×5 filters, one per output phase: `(scale², 1, 5, 5)`.

    Filter `i·scale + j` gives the output pixel at row offset i, column offset j inside each input
    pixel's scale×scale cell (the channel order of `pixel_shuffle`), from the input pixels −2..2 around it.
    """
    taps = torch.zeros(scale, 5, dtype=torch.float64)
    for phase in range(scale):
        source = (phase + 0.5) / scale - 0.5  # half-pixel centres (align_corners=False)
        first = math.floor(source) - 1
        for tap in range(first, first + 4):
            taps[phase, tap + 2] = cubic_weight(source - tap)
    return torch.einsum("ik,jl->ijkl", taps, taps).reshape(scale * scale, 1, 5, 5).float()


class BicubicPhases(nn.Module):
    """Bicubic upscale before the pixel shuffle: `(N, 3, h, w)` → `(N, 3·s², h, w)`, exactly
    `pixel_unshuffle(upscale_bicubic(lr, s), s)` (borders replicated like torch's), in float32."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.register_buffer("kernels", bicubic_phase_kernels(scale).repeat(3, 1, 1, 1), persistent=False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        with torch.autocast(lr.device.type, enabled=False):
            padded = F.pad(lr.float(), (2, 2, 2, 2), mode="replicate")
            return F.conv2d(padded, self.kernels, groups=3)


class PReLU(nn.PReLU):
    """`nn.PReLU` (same parameters) that stays fast on bf16 channels-last CPU tensors, where torch's
    kernel was 4× slower than an elementwise `x + (a − 1)·min(x, 0)`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last):
            slope_minus_one = (self.weight - 1).to(x.dtype).view(1, -1, 1, 1)
            return torch.addcmul(x, x.clamp_max(0), slope_minus_one)
        return super().forward(x)


class ResidualBlock(nn.Module):
    """conv3×3 → PReLU → conv3×3, added to the input; `(N, C, h, w)` → same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x))).add_(x)


class SRResNet(nn.Module):
    """Compact SRResNet: `(N, 3, h, w)` in [0, 1] → `(N, 3, h·scale, w·scale)` (not clamped)."""

    def __init__(self, scale: int = 4, channels: int = 64, blocks: int = 6) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.scale, self.channels, self.blocks = scale, channels, blocks
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.body_out = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)
        self.bicubic = BicubicPhases(scale)
        with torch.no_grad():  # start close to plain bicubic, so early training refines instead of repairs
            self.upsample.weight.mul_(0.1)
            self.upsample.bias.zero_()

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        features = self.head(lr)
        features = self.body_out(self.body(features)).add_(features)
        return F.pixel_shuffle(self.bicubic(lr).add_(self.upsample(features)), self.scale)

    def config(self) -> dict[str, Any]:
        """What `build_generator` needs to rebuild this network."""
        return {"architecture": ARCHITECTURE, "scale": self.scale, "channels": self.channels, "blocks": self.blocks}


def build_generator(metadata: dict[str, Any]) -> SRResNet:
    """An untrained `SRResNet` shaped as recorded in a weights file's metadata."""
    return SRResNet(int(metadata["scale"]), int(metadata["channels"]), int(metadata["blocks"]))


class Discriminator(nn.Module):
    """SRGAN-style discriminator of strided convolutions with LeakyReLU (no batch norm).

    `(N, 3, H, W)` → (logits `(N,)`, list of the intermediate feature maps used for feature matching).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 256)) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        previous = 3
        for width in widths:
            stages.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            ))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.classify = nn.Linear(previous, 1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        x = image * 2 - 1
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self.classify(x.mean(dim=(2, 3))).squeeze(1), features


class VGGFeatures(nn.Module):
    """VGG-19 features up to relu5_4 (SRGAN's VGG54 content loss), from a user-supplied torchvision file.

    `(N, 3, H, W)` in [0, 1] → `(N, 512, H/16, W/16)`.
    """

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        from torchvision.models import vgg19

        features = vgg19(weights=None).features[:36]
        prefix = "features."
        wanted = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        own = features.state_dict()
        missing = sorted(set(own) - set(wanted))
        if missing:
            raise ValueError(f"not a torchvision VGG-19 state dict (missing features.{missing[0]})")
        features.load_state_dict({k: wanted[k] for k in own})
        self.features = features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.features((image - self.mean) / self.std)
