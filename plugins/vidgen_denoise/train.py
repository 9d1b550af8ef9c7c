"""`vidgen train denoise`: train the temporal RED-Net on synthetic noisy clips cut from still photographs."""

from __future__ import annotations


import click
import numpy as np
import torch
import torch.nn.functional as F

from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, load_images, random_crops, set_learning_rate,
                             split_holdout, train_options)
from vidgen.weights import load_weights
from vidgen_denoise.model import TemporalREDNet

MAX_SIGMA = 55.0


def moving_clips(crops: torch.Tensor, frames: int, size: int, rng: np.random.Generator,
                 max_speed: float = 6.0) -> torch.Tensor:
    """`(B, frames, 3, size, size)` clips seen by a camera drifting over `crops` `(B, 3, S, S)`.

    Each clip pans at a random velocity (up to `max_speed` px/frame) with sub-pixel jitter, a slight
    zoom and rotation; the centre frame is the exact central crop (no resampling).
    """
    batch, _, source, _ = crops.shape
    offsets = np.arange(frames) - frames // 2
    angle = rng.uniform(0, 2 * np.pi, batch)
    speed = rng.uniform(0, max_speed, batch)
    zoom = rng.uniform(-0.01, 0.01, batch)
    spin = rng.uniform(-0.005, 0.005, batch)
    theta = np.zeros((batch, frames, 2, 3), np.float32)
    for t, offset in enumerate(offsets):
        jitter = rng.uniform(-0.5, 0.5, (batch, 2)) * (offset != 0)
        shift_x = speed * np.cos(angle) * offset + jitter[:, 0]
        shift_y = speed * np.sin(angle) * offset + jitter[:, 1]
        scale = size / source * (1 + zoom * offset)
        rot = spin * offset
        theta[:, t, 0] = np.stack([scale * np.cos(rot), -scale * np.sin(rot), 2 * shift_x / source], -1)
        theta[:, t, 1] = np.stack([scale * np.sin(rot), scale * np.cos(rot), 2 * shift_y / source], -1)
    theta_t = torch.from_numpy(theta).view(batch * frames, 2, 3)
    grid = F.affine_grid(theta_t, [batch * frames, 3, size, size], align_corners=False)
    repeated = crops.unsqueeze(1).expand(-1, frames, -1, -1, -1).reshape(batch * frames, 3, source, source)
    clips = F.grid_sample(repeated, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    clips = clips.view(batch, frames, 3, size, size).clamp(0, 1)
    clips[:, frames // 2] = crops[:, :, (source - size) // 2:(source - size) // 2 + size,
                                  (source - size) // 2:(source - size) // 2 + size]
    return clips


def add_noise(clips: torch.Tensor, rng: np.random.Generator, poisson_share: float = 0.2,
              sigma_known_share: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh noise per frame on `(B, K, 3, H, W)` clean clips → (noisy clips, σ/255 per clip `(B,)`).

    Gaussian σ ∈ [0, 55] (0-255 scale) per clip, or for `poisson_share` of clips signal-dependent
    Poisson-Gaussian camera noise. The returned level is 0 (blind) except for `sigma_known_share` of
    the Gaussian clips. Results are clipped to [0, 1] and quantised to 8 bits, as in a decoded video.
    """
    batch = clips.shape[0]
    sigma = torch.from_numpy(rng.uniform(0, MAX_SIGMA / 255, batch)).float()
    poisson = torch.from_numpy(rng.random(batch) < poisson_share)
    gain = torch.from_numpy(rng.uniform(0.002, 0.03, batch)).float()
    read = torch.from_numpy(rng.uniform(0.0, 0.03, batch)).float()
    view = (batch, 1, 1, 1, 1)
    gaussian_std = sigma.view(view).expand_as(clips)
    camera_std = torch.sqrt(gain.view(view) * clips + read.view(view) ** 2)
    std = torch.where(poisson.view(view), camera_std, gaussian_std)
    noisy = (clips + std * torch.randn_like(clips)).clamp(0, 1).mul(255).round().div(255)
    known = torch.from_numpy(rng.random(batch) < sigma_known_share) & ~poisson
    return noisy, torch.where(known, sigma, torch.zeros_like(sigma))


def network_input(noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """`(B, K, 3, H, W)` frames and `(B,)` noise levels → `(B, 3K + 1, H, W)` network input."""
    batch, frames, _, height, width = noisy.shape
    level_map = level.view(batch, 1, 1, 1).expand(batch, 1, height, width).to(noisy)
    return torch.cat([noisy.reshape(batch, 3 * frames, height, width), level_map], 1)


def training_batch(images: list[np.ndarray], batch: int, size: int, frames: int, rng: np.random.Generator,
                   max_speed: float = 6.0, single_share: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch: (network input `(B, 3K+1, P, P)`, clean centre frames `(B, 3, P, P)`).

    `single_share` of the clips repeat the noisy centre frame in every slot (per-frame mode), and a
    tenth replicate the first or last one or two frames, as the processor does at the ends of a video.
    """
    margin = int(2 * max_speed * (frames // 2) + 8)
    crops = random_crops(images, size + 2 * margin, batch, rng, scale_range=(0.5, 1.0))
    clean = moving_clips(crops, frames, size, rng, max_speed)
    noisy, level = add_noise(clean, rng)
    centre = frames // 2
    for i in range(batch):
        draw = rng.random()
        if draw < single_share:
            noisy[i] = noisy[i, centre]
        elif draw < single_share + 0.1:
            missing = int(rng.integers(1, centre + 1))
            if rng.random() < 0.5:
                noisy[i, :missing] = noisy[i, missing]
            else:
                noisy[i, frames - missing:] = noisy[i, frames - missing - 1]
    return network_input(noisy, level), clean[:, centre]


def validation_set(images: list[np.ndarray], frames: int, seed: int,
                   max_speed: float = 4.0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Fixed held-out clips at σ = 25 (blind): 'temporal' (moving clips) and 'per-frame' (centre repeated)."""
    rng = np.random.default_rng(seed + 1)
    size = min(128, (min(min(image.shape[:2]) for image in images) - 64) // 4 * 4)
    crops = random_crops(images, size + 2 * 32, 24, rng)
    clean = moving_clips(crops, frames, size, rng, max_speed)
    noisy = (clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)
    noisy = noisy.mul(255).round().div(255)
    blind = torch.zeros(len(clean))
    single = noisy[:, frames // 2: frames // 2 + 1].expand_as(noisy)
    target = clean[:, frames // 2]
    return {"temporal": (network_input(noisy, blind), target), "per-frame": (network_input(single, blind), target)}


def mean_psnr(model: TemporalREDNet, inputs: torch.Tensor, target: torch.Tensor, device: torch.device) -> float:
    """Mean PSNR (dB) of the model's outputs on `inputs` `(N, 3K+1, H, W)` against `target` `(N, 3, H, W)`."""
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        out = torch.cat([model(chunk.to(device)).float().cpu() for chunk in inputs.split(8)]).clamp(0, 1)
    mse = (out - target).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


@click.command("denoise")
@click.option("--images", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder of clean photographs (searched recursively); every 10th is held out for validation.")
@train_options(default_out="denoise.safetensors", default_minutes=15.0)
@click.option("--frames", type=int, default=5, show_default=True, help="Neighbouring frames the network sees (odd).")
@click.option("--width", type=int, default=24, show_default=True, help="Channels at full resolution (2x at 1/2, 4x at 1/4).")
@click.option("--body-layers", type=int, default=3, show_default=True, help="Convolutions at 1/4 resolution.")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--patch", type=int, default=64, show_default=True, help="Training crop size in pixels.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate (cosine-decayed over the budget).")
@click.option("--max-speed", type=float, default=6.0, show_default=True,
              help="Largest camera motion between neighbouring training frames, px/frame. The processor aligns "
                   "neighbours with optical flow first, so a small value (residual misalignment) suits it.")
@click.option("--single-share", type=float, default=0.25, show_default=True,
              help="Share of training clips that repeat the centre frame (trains frames=1 mode).")
@click.option("--init", "init_weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from these weights (same architecture) instead of random ones.")
@click.option("--validate-every", type=float, default=90.0, show_default=True, help="Seconds between validations and saves.")
def train_command(options: TrainOptions, images: str, frames: int, width: int, body_layers: int, batch: int,
                  patch: int, lr: float, max_speed: float, single_share: float, init_weights: str | None,
                  validate_every: float) -> None:
    """Train the denoiser on clips made from still photographs with synthetic camera motion and noise."""
    if frames < 1 or frames % 2 == 0:
        raise click.BadParameter("must be odd", param_hint="--frames")
    device = options.device
    train_images, held_out = split_holdout(load_images(images, min_size=patch + 64))
    if not held_out:
        train_images, held_out = train_images[1:], train_images[:1]
    validation = validation_set(held_out, frames, options.seed, min(max_speed, 4.0))
    model = TemporalREDNet(frames, width, body_layers)
    if init_weights:
        model.load_state_dict(load_weights(init_weights)[0])
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    run = TrainingRun(options, {"model": model, "optimizer": optimizer}, torch.bfloat16, validate_every)
    click.echo(f"{len(train_images)} training / {len(held_out)} validation images; "
               f"{sum(p.numel() for p in model.parameters())} parameters; budget {options.minutes} min")
    last_check, running = run.elapsed, 0.0

    def validate_and_save() -> None:
        """Print the validation scores and write the current weights with them."""
        model.eval()
        scores = {name: round(mean_psnr(model, *data, device), 2) for name, data in validation.items()}
        model.train()
        click.echo(f"step {run.step}  {run.elapsed / 60:.1f} min  loss {running:.5f}  "
                   f"val PSNR σ25 temporal {scores['temporal']:.2f} dB  per-frame {scores['per-frame']:.2f} dB")
        card = run.model_card([images], {"val_psnr_sigma25": scores}, validation_images=len(held_out))
        run.save_weights(model.state_dict(), model.config(), card)

    for step in run.steps():
        set_learning_rate(optimizer, cosine_rate(lr, run.progress, floor=0.02))
        inputs, target = training_batch(train_images, batch, patch, frames, run.rng, max_speed, single_share)
        inputs = inputs.to(device, memory_format=torch.channels_last)
        with run.autocast():
            loss = F.mse_loss(model(inputs).float(), target.to(device))
        run.optimise(loss, optimizer)
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if run.elapsed - last_check >= validate_every:
            last_check = run.elapsed
            validate_and_save()
    validate_and_save()
    click.echo(f"wrote {options.out}")
