"""`vidgen train inpaint-encoder`: a z-encoder for a frozen DCGAN prior (IcGAN), so a new hole starts near its z.

The encoder E maps a masked 64×64 tile and its mask to a latent; it is trained with G frozen to make G(E(x))
match the whole crop x, hole included (the truth is known in training), plus a z-space term on G's own
samples (E(G(z)) ≈ z). The holes imitate the processor's tiles: a hole spans at most 40/64 of its tile.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch

from vidgen import frames_to_uint8
from vidgen.metrics import psnr
from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, load_images, random_crops, set_learning_rate,
                             split_holdout, train_options)
from vidgen_inpaint.model import TILE, Discriminator, Encoder, Generator, encoder_path, generator_fingerprint, load_gan
from vidgen_inpaint.search import SearchSettings, nearest_latents, random_latents, search_latents

LONGEST_HOLE = 40  # the processor's tiles: the hole's short side spans at most 40/64 of the tile


def random_holes(count: int, rng: np.random.Generator) -> torch.Tensor:
    """`(count, 1, 64, 64)` known-pixel masks (1 known, 0 hole) shaped like the holes of the processor's tiles:
    boxes, ellipses and strokes (text, object outlines, what propagation left), short side 4–40 px, long side
    up to the whole tile (a row of tiles over a caption), centred within a few pixels."""
    import cv2

    known = np.ones((count, TILE, TILE), np.uint8)
    for i in range(count):
        short = int(rng.integers(4, LONGEST_HOLE + 1))
        long = int(rng.integers(short, TILE + 1))
        w, h = (long, short) if rng.random() < 0.5 else (short, long)
        cx, cy = TILE // 2 + rng.integers(-4, 5), TILE // 2 + rng.integers(-4, 5)
        x0, y0 = int(cx - w // 2), int(cy - h // 2)
        kind = rng.integers(3)
        if kind == 0:
            known[i, max(y0, 0):y0 + h, max(x0, 0):x0 + w] = 0
        elif kind == 1:
            cv2.ellipse(known[i], (int(cx), int(cy)), (max(w // 2, 1), max(h // 2, 1)), 0, 0, 360, 0, -1)
        else:
            points = np.stack([rng.integers(x0, x0 + w + 1, 6), rng.integers(y0, y0 + h + 1, 6)], 1)
            cv2.polylines(known[i], [points.astype(np.int32)], False, 0, int(rng.integers(2, 9)))
    return torch.from_numpy(known).float()[:, None]


def hole_psnr(images: torch.Tensor, crops: torch.Tensor, known: torch.Tensor) -> float:
    """PSNR over the hole pixels of `images` against `crops` (both `(N, 3, 64, 64)` in [0, 1])."""
    hole = np.broadcast_to((known[:, 0] == 0).cpu().numpy()[..., None], (len(crops), TILE, TILE, 3))
    return psnr(frames_to_uint8(images), frames_to_uint8(crops), hole)


def encoder_loss(netG: Generator, encoder: Encoder, crops: torch.Tensor, known: torch.Tensor,
                 z_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(image loss, z loss): L1 of G(E(x)) against the crops over all pixels plus over the hole pixels, and
    L1 of E(G(z)) against z for prior samples under the same masks."""
    images = netG(encoder(crops, known))
    error = (images - crops).abs().mean(1, keepdim=True)
    hole = 1 - known
    image_loss = error.mean() + (error * hole).sum() / hole.sum().clamp_min(1)
    if z_weight == 0:
        return image_loss, torch.zeros((), device=crops.device)
    z = random_latents(len(crops), netG.z_dim, crops.device)
    with torch.no_grad():
        samples = netG(z)
    return image_loss, (encoder(samples, known) - z).abs().mean()


def validate_encoder(netG: Generator, netD: Discriminator, encoder: Encoder, crops: torch.Tensor, known: torch.Tensor,
                     steps: int) -> dict[str, float]:
    """Hole PSNR of G(E(x)) (no search) and after `steps` annealed search steps from E's z."""
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        z0 = encoder(crops, known)
    start = time.perf_counter()
    result = search_latents(netG, netD, crops, known, z0, SearchSettings().image_search(steps))
    seconds = time.perf_counter() - start
    encoder.train(was_training)
    with torch.no_grad():
        direct = netG(z0)
    return {"encoder_hole_psnr": hole_psnr(direct, crops, known),
            f"encoder_{steps}_steps_hole_psnr": hole_psnr(result.images, crops, known), "search_seconds": seconds}


def pool_reference(netG: Generator, netD: Discriminator, crops: torch.Tensor, known: torch.Tensor, steps: int,
                   seed: int) -> float:
    """Hole PSNR of the processor's pool initialisation (64 latents) + `steps` annealed search steps."""
    generator = torch.Generator(crops.device).manual_seed(seed)
    z0 = nearest_latents(netG, crops, known, pool=64, generator=generator)
    return hole_psnr(search_latents(netG, netD, crops, known, z0, SearchSettings().image_search(steps)).images,
                     crops, known)


@click.command("inpaint-encoder")
@click.option("--prior", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The G/D weights file the encoder is for (kept frozen). The processor finds the encoder of "
                   "prior X.safetensors at X.encoder.safetensors.")
@click.option("--images", "image_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of photographs (searched recursively); every 10th image is held out for validation.")
@train_options(default_out="inpaint.encoder.safetensors", default_minutes=15.0)
@click.option("--batch", default=32, show_default=True)
@click.option("--width", default=16, show_default=True, help="Channel width of the encoder.")
@click.option("--lr", default=1e-3, show_default=True, help="Adam learning rate (cosine decay over the budget).")
@click.option("--z-weight", default=0.1, show_default=True, help="Weight of the z-space loss on G's samples.")
@click.option("--scale-min", default=0.25, show_default=True, help="Smallest random rescale of a photo.")
@click.option("--scale-max", default=1.0, show_default=True)
@click.option("--validation-steps", default=25, show_default=True,
              help="Search steps from E's z in the validation (compared with the pool initialisation).")
@click.option("--log-every", default=50, show_default=True, help="Steps between progress lines.")
@click.option("--save-minutes", default=3.0, show_default=True, help="Minutes between checkpoints and validation.")
def train_command(options: TrainOptions, prior: str, image_dir: str, batch: int, width: int, lr: float,
                  z_weight: float, scale_min: float, scale_max: float, validation_steps: int, log_every: int,
                  save_minutes: float) -> None:
    """Train a z-encoder for a frozen DCGAN prior on 64×64 crops of photographs with tile-like holes.

    With it beside the prior (X.encoder.safetensors), `-p inpaint.init=encoder` starts each new hole from
    E's latent instead of a pool search."""
    device = options.device
    netG, netD, _ = load_gan(prior)
    netG, netD = netG.to(device), netD.to(device)
    for parameter in [*netG.parameters(), *netD.parameters()]:
        parameter.requires_grad_(False)
    train_images, held_images = split_holdout(load_images(image_dir, min_size=TILE + 1))
    click.echo(f"{len(train_images)} training / {len(held_images)} validation images, device {device}; prior {prior} "
               f"(expected beside it as {encoder_path(prior).name})")
    val_rng = np.random.default_rng(options.seed + 1)
    val_crops = random_crops(held_images, TILE, 64, val_rng, (scale_min, scale_max)).to(device)
    val_known = random_holes(len(val_crops), val_rng).to(device)
    encoder = Encoder(netG.z_dim, width).to(device)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr, betas=(0.9, 0.999))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    run = TrainingRun(options, {"E": encoder, "optimiser": optimiser}, dtype, save_minutes * 60)
    reference = {f"pool_{validation_steps}_steps_hole_psnr": pool_reference(
        netG, netD, val_crops, val_known, validation_steps, options.seed)}
    click.echo(f"reference: pool initialisation + {validation_steps} steps: hole PSNR "
               f"{reference[f'pool_{validation_steps}_steps_hole_psnr']:.2f} dB on {len(val_crops)} held-out crops")
    losses: list[tuple[float, float]] = []

    def validate_and_save(final: bool) -> None:
        scores = validate_encoder(netG, netD, encoder, val_crops, val_known, validation_steps)
        click.echo(f"step {run.step}: validation hole PSNR {scores['encoder_hole_psnr']:.2f} dB from E's z, "
                   f"{scores[f'encoder_{validation_steps}_steps_hole_psnr']:.2f} dB after {validation_steps} steps "
                   f"({scores['search_seconds']:.1f} s); {'final' if final else 'checkpoint'} saved after "
                   f"{run.elapsed / 60:.1f} min")
        metrics = {key: round(value, 2) for key, value in {**scores, **reference}.items() if key != "search_seconds"}
        card = run.model_card([image_dir], metrics, batch=batch, lr=lr, z_weight=z_weight,
                              scale_range=[scale_min, scale_max], validation_crops=len(val_crops))
        tensors = {f"E.{k}": v for k, v in encoder.state_dict().items()}
        run.save_weights(tensors, {"z_dim": encoder.z_dim, "e_width": width, "prior": Path(prior).name,
                                     "prior_fingerprint": generator_fingerprint(netG)}, card)

    encoder.train()
    last_save = run.elapsed
    for step in run.steps():
        set_learning_rate(optimiser, cosine_rate(lr, run.progress, floor=0.05))
        crops = random_crops(train_images, TILE, batch, run.rng, (scale_min, scale_max)).to(device)
        known = random_holes(batch, run.rng).to(device)
        with run.autocast():
            image_loss, z_loss = encoder_loss(netG, encoder, crops, known, z_weight)
        run.optimise(image_loss + z_weight * z_loss, optimiser)
        losses.append((image_loss.item(), z_loss.item()))
        if (step + 1) % log_every == 0:
            image_mean, z_mean = np.mean(losses, axis=0)
            losses.clear()
            click.echo(f"step {step + 1}: image L1 {image_mean:.4f} z L1 {z_mean:.4f} "
                       f"({(step + 1) / max(run.elapsed, 1e-6):.1f} steps/s)")
        if run.elapsed - last_save > save_minutes * 60:
            validate_and_save(final=False)
            last_save = run.elapsed
    validate_and_save(final=True)
    click.echo(f"wrote {options.out}")
