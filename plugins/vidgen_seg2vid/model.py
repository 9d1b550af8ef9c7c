"""seg2vid networks: a style-modulated U-Net generator, a style encoder and a label-conditioned PatchGAN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def style_code(style: int, dim: int) -> torch.Tensor:
    """The standardised style code `(dim,)` of style number `style`: 0 → zeros, N ≥ 1 → N(0, 1) seeded by N.

    The processor maps it through the mean and spread of the encoder's codes recorded with the weights."""
    if style == 0:
        return torch.zeros(dim)
    return torch.randn(dim, generator=torch.Generator().manual_seed(style))


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


class StyleBlock(nn.Module):
    """conv → per-channel scale/shift from the style code (FiLM) → LeakyReLU.

    No instance normalisation: it would erase which class fills a uniform region (the absolute level).
    """

    def __init__(self, cin: int, cout: int, style_dim: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = conv(cin, cout, stride)
        self.modulation = nn.Linear(style_dim, 2 * cout)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(z)[:, :, None, None].chunk(2, 1)
        return F.leaky_relu(self.conv(x) * (1 + scale) + shift, 0.2)


class Generator(nn.Module):
    """U-Net: one-hot labels `(N, K, H, W)`, previous output `(N, 3, H, W)`, a flag `(N, 1, H, W)` that is 1
    where a previous frame exists, and a style code `(N, Z)` → frame `(N, 3, H, W)` in [0, 1].

    H and W must be multiples of 8 (the processor pads).
    """

    def __init__(self, classes: int, style_dim: int = 8, widths: tuple[int, int, int, int] = (16, 32, 64, 96)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.classes, self.style_dim, self.widths = classes, style_dim, widths
        self.inp = conv(classes + 4, w1)
        self.enc1 = StyleBlock(w1, w1, style_dim)
        self.enc2 = StyleBlock(w1, w2, style_dim, 2)
        self.enc3 = StyleBlock(w2, w3, style_dim, 2)
        self.bottom = StyleBlock(w3, w4, style_dim, 2)
        self.bottom2 = StyleBlock(w4, w4, style_dim)
        self.dec3 = StyleBlock(w4 + w3, w3, style_dim)
        self.dec2 = StyleBlock(w3 + w2, w2, style_dim)
        self.dec1 = StyleBlock(w2 + w1, w1, style_dim)
        self.out = nn.Conv2d(w1, 3, 3, 1, 1)

    def forward(self, labels: torch.Tensor, previous: torch.Tensor, has_previous: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.inp(torch.cat([labels, previous, has_previous], 1)), 0.2)
        e1 = self.enc1(x, z)
        e2 = self.enc2(e1, z)
        e3 = self.enc3(e2, z)
        b = self.bottom2(self.bottom(e3, z), z)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        d3 = self.dec3(torch.cat([up(b), e3], 1), z)
        d2 = self.dec2(torch.cat([up(d3), e2], 1), z)
        d1 = self.dec1(torch.cat([up(d2), e1], 1), z)
        return torch.sigmoid(self.out(d1).float())


class StyleEncoder(nn.Module):
    """Real image `(N, 3, H, W)` → mean and log-variance `(N, Z)` each of its style code (cVAE-GAN)."""

    def __init__(self, style_dim: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(3, 16, 2), nn.LeakyReLU(0.2), conv(16, 32, 2), nn.LeakyReLU(0.2),
            conv(32, 64, 2), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 2 * style_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.head(self.body(image)).float().chunk(2, 1)
        return mean, log_var.clamp(-8, 4)


class PatchDiscriminator(nn.Module):
    """PatchGAN on labels + image `(N, K + 3, H, W)` → realness scores `(N, 1, H/8, W/8)`."""

    def __init__(self, classes: int, width: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.body = nn.Sequential(
            sn(nn.Conv2d(classes + 3, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * width, 1, 3, 1, 1)))

    def forward(self, labels: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([labels, image], 1)).float()
