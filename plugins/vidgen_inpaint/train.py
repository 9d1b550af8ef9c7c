"""`vidgen train inpaint`: train the DCGAN prior on 64×64 crops of photographs (resumable, time-budgeted)."""

from __future__ import annotations

import contextlib
import time

import click
import numpy as np
import torch
import torch.nn.functional as F

from vidgen import frames_to_uint8
from vidgen.compute import compute_dtype
from vidgen.metrics import psnr
from vidgen.training import TrainingRun, TrainOptions, load_images, random_crops, split_holdout, train_options
from vidgen_inpaint.model import TILE, Discriminator, Generator, init_weights, save_gan
from vidgen_inpaint.search import SearchSettings, nearest_latents, random_latents, search_latents


def auto_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to the precision `--precision auto` picks on `device` (fp16 on CUDA; bf16 on a CPU where it
    measures faster than fp32; otherwise none)."""
    dtype = compute_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def gan_step(netG: Generator, netD: Discriminator, optG: torch.optim.Optimizer, optD: torch.optim.Optimizer,
             real: torch.Tensor, autocast: contextlib.AbstractContextManager | None = None,
             scaler: torch.amp.GradScaler | None = None) -> tuple[float, float]:
    """One DCGAN update of D then G on a batch of real images `(N, 3, 64, 64)`; returns (loss_D, loss_G).

    With `scaler` (fp16 training), the losses are scaled before back-propagation; the caller updates it."""
    context = autocast or contextlib.nullcontext()
    scale = scaler.scale if scaler is not None else (lambda loss: loss)

    def update(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        scale(loss).backward()
        scaler.step(optimizer) if scaler is not None else optimizer.step()

    z = random_latents(len(real), netG.z_dim, real.device)
    with context:
        fake = netG(z)
        loss_d = F.softplus(-netD(real)).mean() + F.softplus(netD(fake.detach())).mean()
    update(loss_d, optD)
    with context:
        loss_g = F.softplus(-netD(fake)).mean()  # non-saturating −log D(G(z))
    update(loss_g, optG)
    return loss_d.item(), loss_g.item()


def recalibrate_batch_norm(netG: Generator, batches: int = 16, batch: int = 64) -> None:
    """Set G's batch-norm running statistics to exact averages over fresh prior samples (for eval mode)."""
    norms = [m for m in netG.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    device = next(netG.parameters()).device
    was_training = netG.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    netG.train()
    with torch.no_grad():
        for _ in range(batches):
            netG(random_latents(batch, netG.z_dim, device))
    for norm in norms:
        norm.momentum = 0.1
    netG.train(was_training)


def centre_hole_known(count: int, hole: int, device: torch.device) -> torch.Tensor:
    """`(count, 1, 64, 64)` known-pixel masks with a `hole`×`hole` square hole in the centre."""
    known = torch.ones(count, 1, TILE, TILE, device=device)
    start = (TILE - hole) // 2
    known[:, :, start:start + hole, start:start + hole] = 0
    return known


def validate(netG: Generator, netD: Discriminator, crops: torch.Tensor, hole: int = 24, steps: int = 50,
             seed: int = 0) -> dict[str, float]:
    """Inpaint a centred square hole in held-out crops (pool init + `steps` search steps): hole PSNR/time.

    Also reports the PSNR of filling the hole with the mean colour of the known pixels, as a floor.
    """
    netG.eval()
    netD.eval()
    known = centre_hole_known(len(crops), hole, crops.device)
    generator = torch.Generator(crops.device).manual_seed(seed)
    start = time.perf_counter()
    autocast = auto_autocast(crops.device)
    z0 = nearest_latents(netG, crops, known, pool=128, generator=generator, autocast=autocast)
    result = search_latents(netG, netD, crops, known, z0, SearchSettings(max_steps=steps, early_stop=False),
                            autocast=autocast)
    seconds = time.perf_counter() - start
    netG.train()
    netD.train()
    mean_fill = (crops * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    hole_mask = (known[:, 0] == 0).cpu().numpy()[..., None]
    truth = frames_to_uint8(crops)
    return {
        "hole_psnr": psnr(frames_to_uint8(result.images), truth, np.broadcast_to(hole_mask, truth.shape)),
        "mean_fill_psnr": psnr(frames_to_uint8(mean_fill.expand_as(crops)), truth, np.broadcast_to(hole_mask, truth.shape)),
        "search_seconds": seconds,
    }


@click.command("inpaint")
@click.option("--images", "image_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of photographs (searched recursively); every 10th image is held out for validation.")
@train_options(default_out="inpaint-dcgan64.safetensors", default_minutes=15.0)
@click.option("--batch", default=64, show_default=True)
@click.option("--width", default=32, show_default=True, help="Channel width of G and D (ngf = ndf).")
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--scale-min", default=0.25, show_default=True,
              help="Smallest random rescale of a photo before cropping.")
@click.option("--scale-max", default=1.0, show_default=True)
@click.option("--log-every", default=50, show_default=True, help="Steps between progress lines.")
@click.option("--save-minutes", default=3.0, show_default=True, help="Minutes between checkpoints and validation.")
def train_command(options: TrainOptions, image_dir: str, batch: int, width: int, lr: float, scale_min: float,
                  scale_max: float, log_every: int, save_minutes: float) -> None:
    """Train the DCGAN prior (G and D) of the inpaint plugin on random 64×64 crops of photographs.

    Use the result with -p inpaint.weights=OUT."""
    device = options.device
    train_images, held_images = split_holdout(load_images(image_dir, min_size=TILE + 1))
    click.echo(f"{len(train_images)} training / {len(held_images)} validation images, device {device}")
    val_crops = random_crops(held_images, TILE, 16, np.random.default_rng(options.seed + 1), (scale_min, scale_max))
    val_crops = val_crops.to(device)
    netG, netD = Generator(width=width).to(device), Discriminator(width=width).to(device)
    netG.apply(init_weights)
    netD.apply(init_weights)
    optG = torch.optim.Adam(netG.parameters(), lr=lr, betas=(0.5, 0.999))
    optD = torch.optim.Adam(netD.parameters(), lr=lr, betas=(0.5, 0.999))
    run = TrainingRun(options, {"G": netG, "D": netD, "optG": optG, "optD": optD}, compute_dtype(device),
                      save_minutes * 60)
    losses: list[tuple[float, float]] = []

    def validate_and_save(final: bool) -> None:
        """Recalibrate G's batch norm, print the validation scores and write the weights with them."""
        recalibrate_batch_norm(netG)
        scores = validate(netG, netD, val_crops, seed=options.seed)
        click.echo(f"step {run.step}: validation hole PSNR {scores['hole_psnr']:.2f} dB (mean-colour fill "
                   f"{scores['mean_fill_psnr']:.2f} dB), search {scores['search_seconds']:.1f} s; "
                   f"{'final' if final else 'checkpoint'} saved after {run.elapsed / 60:.1f} min")
        card = run.model_card([image_dir], {"validation_hole_psnr": round(scores["hole_psnr"], 2),
                                            "validation_mean_fill_psnr": round(scores["mean_fill_psnr"], 2)},
                              batch=batch, lr=lr, scale_range=[scale_min, scale_max])
        save_gan(options.out, netG, netD, card.as_metadata())

    netG.train()
    netD.train()
    last_save = run.elapsed
    for step in run.steps():
        real = random_crops(train_images, TILE, batch, run.rng, (scale_min, scale_max)).to(device)
        losses.append(gan_step(netG, netD, optG, optD, real, run.autocast(), run.scaler))
        if (step + 1) % log_every == 0:
            d_loss, g_loss = np.mean(losses, axis=0)
            losses.clear()
            click.echo(f"step {step + 1}: loss_D {d_loss:.3f} loss_G {g_loss:.3f} "
                       f"({(step + 1) / max(run.elapsed, 1e-6):.1f} steps/s)")
        if run.elapsed - last_save > save_minutes * 60:
            validate_and_save(final=False)
            last_save = run.elapsed
    validate_and_save(final=True)
    click.echo(f"wrote {options.out}")
