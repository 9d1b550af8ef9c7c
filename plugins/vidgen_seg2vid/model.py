"""seg2vid networks: a SPADE-style generator with previous-frame input, a style encoder and a multi-scale
label-conditioned PatchGAN that also gives features for feature matching."""

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


class SpadeResBlock(nn.Module):
    """Residual block whose normalisations are re-modulated per pixel by the label map (SPADE) and per
    video by the style code: x + conv(act(mod(norm(x)))) twice, `(N, C, h, w)` → `(N, C, h, w)`.

    `norm` is a parameter-free instance norm; `mod` multiplies by (1 + γ) and adds β, where γ, β come from
    a small convolution of the one-hot labels resized to (h, w) plus a per-channel shift from the style.
    """

    def __init__(self, channels: int, classes: int, style_dim: int, hidden: int) -> None:
        super().__init__()
        self.label_features = nn.Sequential(conv(classes, hidden), nn.ReLU())
        self.gamma_beta = nn.ModuleList([conv(hidden, 2 * channels) for _ in range(2)])
        self.style = nn.Linear(style_dim, 4 * channels)
        self.convs = nn.ModuleList([conv(channels, channels) for _ in range(2)])

    def forward(self, x: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        labels = F.interpolate(labels, size=x.shape[-2:], mode="nearest")
        features = self.label_features(labels)
        style_scale, style_shift = self.style(z)[:, :, None, None].chunk(2, 1)
        out = x
        for index, (gamma_beta, convolution) in enumerate(zip(self.gamma_beta, self.convs)):
            gamma, beta = gamma_beta(features).chunk(2, 1)
            width = out.shape[1]
            scale = style_scale[:, index * width:(index + 1) * width]
            shift = style_shift[:, index * width:(index + 1) * width]
            normed = F.instance_norm(out.float()).to(out.dtype)
            out = convolution(F.leaky_relu(normed * (1 + gamma) * (1 + scale) + beta + shift, 0.2))
        return x + out


class Generator(nn.Module):
    """One-hot labels `(N, K, H, W)`, the previous output warped onto this frame `(N, 3, H, W)`, a flag
    `(N, 1, H, W)` (1 where that previous frame is valid) and a style code `(N, Z)` → frame `(N, 3, H, W)`
    in [0, 1]. H and W must be multiples of 8 (the processor pads).

    Encoder: three stride-2 convolutions to 1/8 size; two SPADE blocks there; decoder: ×2 upsampling with a
    skip connection and a SPADE block at 1/4 and 1/2, then a full-size head that sees the labels again.
    """

    def __init__(self, classes: int, style_dim: int = 8, widths: tuple[int, int, int] = (24, 48, 96),
                 hidden: int = 32) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.classes, self.style_dim, self.widths, self.hidden = classes, style_dim, widths, hidden
        self.down1 = conv(classes + 4, w1, 2)
        self.down2 = conv(w1, w2, 2)
        self.down3 = conv(w2, w3, 2)
        self.bottom = nn.ModuleList([SpadeResBlock(w3, classes, style_dim, hidden) for _ in range(2)])
        self.up2 = nn.Conv2d(w3, w2, 1)
        self.block2 = SpadeResBlock(w2, classes, style_dim, hidden)
        self.up1 = nn.Conv2d(w2, w1, 1)
        self.block1 = SpadeResBlock(w1, classes, style_dim, hidden // 2)
        self.head = conv(w1 + classes + 4, 16)
        self.out = conv(16, 3)

    def forward(self, labels: torch.Tensor, previous: torch.Tensor, has_previous: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([labels, 2 * previous - 1, has_previous], 1)
        e1 = F.leaky_relu(self.down1(inputs), 0.2)
        e2 = F.leaky_relu(self.down2(e1), 0.2)
        x = F.leaky_relu(self.down3(e2), 0.2)
        for block in self.bottom:
            x = block(x, labels, z)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        x = self.block2(self.up2(up(x)) + e2, labels, z)
        x = self.block1(self.up1(up(x)) + e1, labels, z)
        x = F.leaky_relu(self.head(torch.cat([up(x), inputs], 1)), 0.2)
        return torch.sigmoid(self.out(x).float())


class StyleEncoder(nn.Module):
    """Real image `(N, 3, H, W)` → mean and log-variance `(N, Z)` each of its style code (cVAE-GAN)."""

    def __init__(self, style_dim: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(3, 16, 2), nn.LeakyReLU(0.2), conv(16, 32, 2), nn.LeakyReLU(0.2),
            conv(32, 64, 2), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 2 * style_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.head(self.body(2 * image - 1)).float().chunk(2, 1)
        return mean, log_var.clamp(-8, 4)


class PatchDiscriminator(nn.Module):
    """PatchGAN on labels + image `(N, K + 3, H, W)` → its intermediate features and realness scores
    `(N, 1, H/8, W/8)` (spectral norm on every layer)."""

    def __init__(self, classes: int, width: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.layers = nn.ModuleList([
            nn.Sequential(sn(nn.Conv2d(classes + 3, width, 4, 2, 1)), nn.LeakyReLU(0.2)),
            nn.Sequential(sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2)),
            nn.Sequential(sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)), nn.LeakyReLU(0.2)),
            sn(nn.Conv2d(4 * width, 1, 3, 1, 1))])

    def forward(self, labels: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([labels, 2 * image - 1], 1)
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x.float())
        return outputs


class MultiScaleDiscriminator(nn.Module):
    """Two PatchGANs, on the full-size and the half-size pair (pix2pixHD): a list per scale of
    `[features..., scores]`."""

    def __init__(self, classes: int, width: int = 32) -> None:
        super().__init__()
        self.scales = nn.ModuleList([PatchDiscriminator(classes, width) for _ in range(2)])

    def forward(self, labels: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for index, critic in enumerate(self.scales):
            if index:
                labels, image = F.avg_pool2d(labels, 2), F.avg_pool2d(image, 2)
            results.append(critic(labels, image))
        return results


def warp(frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: `frames` `(N, C, H, W)` sampled at p + flow[p], flow `(N, H, W, 2)` in pixels (x, y)."""
    height, width = frames.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, device=frames.device, dtype=torch.float32),
                            torch.arange(width, device=frames.device, dtype=torch.float32), indexing="ij")
    x = (xs + flow[..., 0] + 0.5) * 2 / width - 1
    y = (ys + flow[..., 1] + 0.5) * 2 / height - 1
    return F.grid_sample(frames, torch.stack([x, y], -1).to(frames.dtype), "bilinear", "border", align_corners=False)
