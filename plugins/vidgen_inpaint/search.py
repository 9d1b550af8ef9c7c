"""Latent search (Yeh et al. 2017, Lahiri et al. 2019): find z so that G(z) fits the known pixels of a tile.

All tensors are batched over tiles: `target` `(N, 3, 64, 64)` in [0, 1], `known` `(N, 1, 64, 64)` with 1 where
the pixel is known and 0 in the hole, latents `z` `(N, z_dim)` in [-1, 1].
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from vidgen_inpaint.model import Discriminator, Generator


@dataclass
class SearchSettings:
    """Weights and stopping rule of the z-search."""

    max_steps: int = 1000
    lr: float = 0.03
    structure_weight: float = 1.0  # Lahiri's structure loss on image gradients
    perceptual_weight: float = 0.01  # −log D(G(z)), Yeh's prior loss
    consistency_weight: float = 0.05  # |z_i − z_j| within a temporal window of one track
    early_stop: bool = True  # stop when the loss stops improving (else run max_steps)
    patience: int = 8
    tolerance: float = 2e-3  # relative improvement that counts as progress
    min_steps: int = 5
    final_lr: float = 1.0  # learning rate at the last step as a share of lr (cosine decay; 1 = constant)

    def image_search(self, steps: int = 150, lr: float = 0.1) -> SearchSettings:
        """Settings for the first search of a new hole: a fixed budget of at most `steps` steps with the
        learning rate annealed from `lr` to a tenth of it, which settles deeper in that budget than a constant
        rate stopped early (docs/inpaint.md, runs 6 and 7)."""
        return replace(self, max_steps=min(steps, self.max_steps), lr=lr, final_lr=0.1, early_stop=False)

    def rate(self, step: int) -> float:
        """Learning rate of `step` (1-based): cosine from `lr` to `final_lr · lr` over `max_steps`."""
        share = 0.5 * (1 + math.cos(math.pi * (step - 1) / max(self.max_steps - 1, 1)))
        return self.lr * (self.final_lr + (1 - self.final_lr) * share)

    def refining(self, steps: int) -> SearchSettings:
        """Settings for latents that start converged (carried from earlier frames): smaller steps, a looser
        stopping rule and at most `steps` steps, so a search only follows the scene's change ("reuse noise
        priors")."""
        return replace(self, max_steps=min(steps, self.max_steps), lr=self.lr / 3, patience=3, tolerance=5e-3,
                       min_steps=min(3, steps))


def importance_weights(known: torch.Tensor, window: int = 15, floor: float = 0.05) -> torch.Tensor:
    """Yeh's contextual weights `(N, 1, 64, 64)`: a known pixel weighs by the share of unknown pixels around it.

    `floor` keeps a little weight on far context so that colour and texture away from the hole still count.
    """
    unknown_share = F.avg_pool2d(1 - known, window, stride=1, padding=window // 2, count_include_pad=False)
    return known * (unknown_share + floor)


def _gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]


def fit_losses(images: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
               structure_weight: float) -> torch.Tensor:
    """Per-tile data (weighted L1) + structure (weighted L1 of x/y gradients) loss, `(N,)`.

    `images` may be `(N, 3, 64, 64)` or `(N, P, 3, 64, 64)` against a pool (then the result is `(N, P)`).
    """
    if images.ndim == 5:
        target, weights = target.unsqueeze(1), weights.unsqueeze(1)
    dims = tuple(range(-3, 0))
    data = (weights * (images - target).abs()).sum(dims) / (3 * weights.sum(dims)).clamp_min(1e-6)
    if structure_weight == 0:
        return data
    gx, gy = _gradients(images)
    tx, ty = _gradients(target)
    wx = torch.minimum(weights[..., :, 1:], weights[..., :, :-1])
    wy = torch.minimum(weights[..., 1:, :], weights[..., :-1, :])
    structure = ((wx * (gx - tx).abs()).sum(dims) + (wy * (gy - ty).abs()).sum(dims)) / (
        3 * (wx.sum(dims) + wy.sum(dims))).clamp_min(1e-6)
    return data + structure_weight * structure


def random_latents(count: int, z_dim: int, device: torch.device, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """`(count, z_dim)` latents drawn from the prior U[-1, 1]."""
    return torch.rand(count, z_dim, device=device, generator=generator) * 2 - 1


def nearest_latents(netG: Generator, target: torch.Tensor, known: torch.Tensor, pool: int,
                    structure_weight: float = 1.0, generator: torch.Generator | None = None,
                    autocast: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """Lahiri's initialisation: run G once on a pool of `pool` latents; each tile starts from its best match.

    Returns `(N, z_dim)`.
    """
    pool_z = random_latents(pool, netG.z_dim, target.device, generator)
    weights = importance_weights(known)
    with torch.no_grad(), autocast or contextlib.nullcontext():
        images = netG(pool_z)
    losses = torch.stack([fit_losses(images, target[i:i + 1].expand_as(images), weights[i:i + 1].expand(
        len(images), -1, -1, -1), structure_weight) for i in range(len(target))])
    return pool_z[losses.argmin(1)].clone()


def consistency_pairs(tracks: list[int], times: list[int], window: int, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j) of tiles on the same track less than `window` frames apart, for the group loss."""
    first, second = [], []
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            if tracks[i] == tracks[j] and abs(times[i] - times[j]) < window:
                first.append(i)
                second.append(j)
    return torch.tensor(first, dtype=torch.long, device=device), torch.tensor(second, dtype=torch.long, device=device)


@dataclass
class SearchResult:
    """Converged latents `(N, z_dim)`, their images `(N, 3, 64, 64)` and the number of steps run."""

    z: torch.Tensor
    images: torch.Tensor
    steps: int


def search_latents(netG: Generator, netD: Discriminator | None, target: torch.Tensor, known: torch.Tensor,
                   z_init: torch.Tensor, settings: SearchSettings,
                   pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
                   autocast: contextlib.AbstractContextManager | None = None) -> SearchResult:
    """Optimise the tiles' latents jointly with Adam, clamping them to the prior's range [-1, 1].

    Each tile's loss is contextual + structure + perceptual; `pairs` adds the group-consistency loss.
    The per-tile losses are summed, so a tile's gradient does not depend on the batch size.
    """
    weights = importance_weights(known)
    z = z_init.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=settings.lr)
    best, since_best, step = float("inf"), 0, 0
    use_d = netD is not None and settings.perceptual_weight > 0
    with torch.enable_grad():
        for step in range(1, settings.max_steps + 1):
            optimiser.param_groups[0]["lr"] = settings.rate(step)
            with autocast or contextlib.nullcontext():
                images = netG(z)
                loss = fit_losses(images, target, weights, settings.structure_weight).sum()
                if use_d:
                    loss = loss + settings.perceptual_weight * F.softplus(-netD(images)).sum()
            if pairs is not None and len(pairs[0]) and settings.consistency_weight > 0:
                loss = loss + settings.consistency_weight * (z[pairs[0]] - z[pairs[1]]).abs().mean(1).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                z.clamp_(-1, 1)
            value = loss.item()
            if value < best * (1 - settings.tolerance):
                best, since_best = value, 0
            else:
                since_best += 1
            if settings.early_stop and step >= settings.min_steps and since_best >= settings.patience:
                break
    with torch.no_grad(), autocast or contextlib.nullcontext():
        images = netG(z).float()
    return SearchResult(z.detach(), images, step)


def poisson_blend(generated: torch.Tensor, target: torch.Tensor, known: torch.Tensor,
                  iterations: int = 40, omega: float = 1.9) -> torch.Tensor:
    """Gradient-domain blend: add to `generated` the harmonic field that matches `target` at the hole's border.

    Solves Laplace's equation for the correction inside the hole (red-black successive over-relaxation,
    started from the mean border difference) so that G's gradients are kept and its colour joins the
    context seamlessly. 40 iterations reach the solution of a 40×40 hole to within 0.003 (300 Jacobi
    iterations: 0.02). `(N, 3, h, w)`.
    """
    difference = (target - generated) * known
    border = known * F.max_pool2d(1 - known, 3, 1, 1)  # known pixels next to the hole
    start = (difference * border).sum((2, 3), keepdim=True) / border.sum((2, 3), keepdim=True).clamp_min(1)
    correction = difference * known + start * (1 - known)
    height, width = known.shape[-2:]
    parity = (torch.arange(height, device=known.device)[:, None] + torch.arange(width, device=known.device)) % 2
    # over-relaxation weight of each checkerboard colour's hole pixels, 0 elsewhere
    steps = [(omega * (1 - known) * (parity == p)).expand_as(correction).contiguous() for p in (0, 1)]
    padded = F.pad(correction, (1, 1, 1, 1), mode="replicate")  # updated in place, its border replicated
    inside = padded[..., 1:-1, 1:-1]
    update = torch.empty_like(correction)
    for _ in range(iterations):
        for step in steps:
            torch.add(padded[..., 1:-1, :-2], padded[..., 1:-1, 2:], out=update)
            update.add_(padded[..., :-2, 1:-1]).add_(padded[..., 2:, 1:-1]).mul_(0.25).sub_(inside).mul_(step)
            inside.add_(update)
            padded[..., 0, :], padded[..., -1, :] = padded[..., 1, :], padded[..., -2, :]
            padded[..., :, 0], padded[..., :, -1] = padded[..., :, 1], padded[..., :, -2]
    return (generated + inside).clamp(0, 1)


def match_colours(generated: torch.Tensor, target: torch.Tensor, known: torch.Tensor, ring: int = 8) -> torch.Tensor:
    """Give `generated` the context's colours: per tile and channel, shift and scale it so that its mean and
    standard deviation on a ring of known pixels around the hole (`ring` px wide) equal the target's there.
    `(N, 3, h, w)`; the gain is kept within [0.5, 2] so a flat ring cannot blow up G's texture."""
    hole = 1 - known
    around = known * F.max_pool2d(hole, 2 * ring + 1, 1, ring)
    count = around.sum((2, 3), keepdim=True).clamp_min(1)

    def stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (images * around).sum((2, 3), keepdim=True) / count
        spread = (((images - mean) ** 2 * around).sum((2, 3), keepdim=True) / count).sqrt()
        return mean, spread

    mean_g, spread_g = stats(generated)
    mean_t, spread_t = stats(target)
    gain = (spread_t / spread_g.clamp_min(1e-3)).clamp(0.5, 2.0)
    return ((generated - mean_g) * gain + mean_t).clamp(0, 1)
