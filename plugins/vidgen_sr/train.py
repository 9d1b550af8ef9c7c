"""`vidgen train sr`: train the SRResNet generator (L1) or fine-tune it adversarially (SRGAN) on photos."""

from __future__ import annotations

from typing import Any, Callable

import click
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidgen.compute import compute_dtype
from vidgen.errors import VidgenError
from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, load_images, random_crops, set_learning_rate,
                             split_holdout, train_options)
from vidgen.weights import load_weights
from vidgen_sr.degrade import degrade_real
from vidgen_sr.evaluate import crop_to_multiple, to_uint8, y_psnr_ssim
from vidgen_sr.model import SCALES, Discriminator, SRResNet, VGGFeatures, downscale, upscale_bicubic

VALIDATION_CROP = 256
ADVERSARIAL_WEIGHT = 1e-3  # SRGAN's weight of the adversarial term
FEATURE_MATCHING_WEIGHT = 1.0
VGG_WEIGHT = 0.1


Degrade = Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]
DEGRADATIONS: dict[str, Degrade] = {"bicubic": lambda hr, scale, rng: downscale(hr, scale), "real": degrade_real}
VALIDATION_SEED = 0  # the real degradation of the validation crops is drawn from this seed at every validation


def validate(generator: SRResNet, images: list[np.ndarray], scale: int, device: torch.device,
             dtype: torch.dtype, degrade: Degrade) -> tuple[float, float]:
    """Mean Y-PSNR of (generator, bicubic) on centre crops of held-out `images` `(H, W, 3)` uint8, degraded
    by `degrade` (random choices drawn from `VALIDATION_SEED`, so every validation sees the same inputs)."""
    ours, bicubic = [], []
    rng = np.random.default_rng(VALIDATION_SEED)
    generator.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        for image in images:
            h, w = image.shape[:2]
            size = min(VALIDATION_CROP, h, w)
            y, x = (h - size) // 2, (w - size) // 2
            hr_np = crop_to_multiple(image[y:y + size, x:x + size], 2 * scale)
            hr = torch.from_numpy(np.ascontiguousarray(hr_np)).permute(2, 0, 1)[None].float().div(255).to(device)
            lr = degrade(hr, scale, rng)
            ours.append(y_psnr_ssim(to_uint8(generator(lr)[0]), hr_np, scale)[0])
            bicubic.append(y_psnr_ssim(to_uint8(upscale_bicubic(lr, scale)[0]), hr_np, scale)[0])
    generator.train()
    return float(np.mean(ours)), float(np.mean(bicubic))


def augment_colours(hr: torch.Tensor, rng: np.random.Generator, invert: float, permute: bool) -> torch.Tensor:
    """Photometric augmentation of HR patches `(N, 3, H, W)` in [0, 1]: a random order of the colour channels
    (with `permute`) and, with probability `invert`, the negative image. Both commute with the bicubic
    degradation, so the LR patches made from the result stay consistent with it."""
    if permute:
        hr = torch.stack([patch[torch.from_numpy(rng.permutation(3))] for patch in hr])
    if invert:
        negative = torch.from_numpy(rng.random(len(hr)) < invert).view(-1, 1, 1, 1)
        hr = torch.where(negative, 1 - hr, hr)
    return hr


def grow_from(generator: SRResNet, tensors: dict[str, torch.Tensor], init_blocks: int) -> None:
    """Load a trained generator's `tensors` into a deeper and/or wider `generator` without changing its output.

    Blocks beyond `init_blocks` become identities (their second convolution is zeroed). Added channels keep
    their random initialisation (scaled by 0.1) but every convolution's weights from an added input channel
    into an original output channel are zeroed, so the original channels, and the output, are unchanged while
    gradients still reach the new weights. The upsampler of a generator of another scale is not loaded (its
    sub-pixel channels mean other things).
    """
    for name, target in generator.state_dict().items():
        source = tensors.get(name)
        if source is None or (name.startswith("upsample.") and source.shape[0] != target.shape[0]):
            continue  # the upsampler of another scale: keep this network's initialisation
        if source.shape != target.shape:
            target.mul_(0.1)
        target[tuple(slice(0, n) for n in source.shape)] = source
        if target.dim() == 4:  # conv weight (out, in, k, k): original outputs ignore the added inputs
            target[:source.shape[0], source.shape[1]:] = 0
    for block in generator.body[init_blocks:]:
        nn.init.zeros_(block.conv2.weight)
        nn.init.zeros_(block.conv2.bias)


@click.command("sr")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="Folder of training photos (searched recursively).")
@click.option("--scale", type=click.Choice([str(s) for s in SCALES]), default="4", show_default=True)
@click.option("--model", "model_kind", type=click.Choice(["srresnet", "srgan"]), default="srresnet", show_default=True,
              help="srresnet: L1 training; srgan: adversarial fine-tune of --init.")
@click.option("--degrade", "degradation", type=click.Choice(list(DEGRADATIONS)), default="bicubic", show_default=True,
              help="bicubic: clean antialiased downscale; real: random blur, downscale, noise, JPEG and H.264 "
                   "(for real, compressed video; docs/sr.md).")
@train_options(default_out="sr.safetensors", default_minutes=10.0)
@click.option("--init", "init_path", type=click.Path(dir_okay=False),
              help="Start the generator from these weights (required for srgan); with more --blocks or --channels "
                   "than they have, the network is grown without changing its output.")
@click.option("--vgg", "vgg_path", type=click.Path(dir_okay=False), help="torchvision VGG-19 weights for SRGAN's VGG54 content loss.")
@click.option("--channels", type=int, default=48, show_default=True, help="Generator width (shipped: 48).")
@click.option("--blocks", type=int, default=5, show_default=True, help="Residual blocks (shipped: 5).")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--patch", type=int, default=32, show_default=True, help="Low-resolution patch size (HR = patch x scale).")
@click.option("--min-scale", type=click.FloatRange(0.05, 1.0), default=0.6, show_default=True,
              help="Photos are randomly downscaled by a factor in [MIN_SCALE, 1] before cropping.")
@click.option("--invert", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Probability that a patch is replaced by its negative.")
@click.option("--permute-colours", is_flag=True, help="Shuffle the RGB channels of every patch.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate [default: 4e-4 srresnet, 5e-5 srgan].")
@click.option("--holdout-every", type=int, default=10, show_default=True, help="Every N-th image is held out for validation.")
@click.option("--validate-every", type=int, default=250, show_default=True, help="Steps between validations.")
@click.option("--checkpoint-every", type=float, default=60.0, show_default=True, help="Seconds between checkpoints.")
def train_command(options: TrainOptions, images: str, scale: str, model_kind: str, degradation: str,
                  init_path: str | None,
                  vgg_path: str | None, channels: int, blocks: int, batch: int, patch: int, min_scale: float,
                  invert: float, permute_colours: bool, learning_rate: float | None, holdout_every: int,
                  validate_every: int, checkpoint_every: float) -> None:
    """Train an sr model on patches of the photos in --images (bicubic or real ×SCALE degradation)."""
    factor = int(scale)
    degrade = DEGRADATIONS[degradation]
    if degradation == "real" and patch % 2:
        raise VidgenError(f"--degrade real needs an even --patch (H.264 takes even frame sizes), got {patch}")
    device = options.device
    dtype = compute_dtype(device)
    photos = load_images(images, min_size=patch * factor + 1)
    train_set, held_out = split_holdout(photos, holdout_every)
    if not train_set or not held_out:
        raise VidgenError(f"{images}: need at least {holdout_every} images (one is held out for validation)")

    generator = SRResNet(factor, channels, blocks)
    if init_path:
        tensors, meta = load_weights(init_path)
        init_channels, init_blocks = int(meta.get("channels", channels)), int(meta.get("blocks", blocks))
        if init_channels > channels or init_blocks > blocks:
            raise VidgenError(f"{init_path}: has {init_channels} channels / {init_blocks} blocks; "
                              f"pass at least as many --channels and --blocks")
        grow_from(generator, tensors, init_blocks)
        added = [f"{blocks - init_blocks} identity blocks"] if blocks > init_blocks else []
        added += [f"{channels - init_channels} channels"] if channels > init_channels else []
        click.echo(f"initialised from {init_path}" + (f" ({' and '.join(added)} added; same output)" if added else ""))
    elif model_kind == "srgan":
        raise VidgenError("--model srgan fine-tunes a trained generator: pass --init SRRESNET_WEIGHTS")
    generator = generator.to(device, memory_format=torch.channels_last)
    base_rate = learning_rate or (4e-4 if model_kind == "srresnet" else 5e-5)
    optimizer = torch.optim.Adam(generator.parameters(), lr=base_rate, betas=(0.9, 0.99))
    parts: dict[str, Any] = {"generator": generator, "optimizer": optimizer}
    discriminator = d_optimizer = vgg = None
    if model_kind == "srgan":
        discriminator = Discriminator().to(device, memory_format=torch.channels_last)
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.9, 0.99))
        parts.update(discriminator=discriminator, d_optimizer=d_optimizer)
        if vgg_path:
            try:
                vgg = VGGFeatures(load_weights(vgg_path)[0])
            except ValueError as exc:
                raise VidgenError(f"{vgg_path}: {exc}") from None
            vgg = vgg.to(device, memory_format=torch.channels_last)
    run = TrainingRun(options, parts, dtype, checkpoint_every)
    rng = run.rng

    click.echo(f"sr {model_kind} x{factor}, {degradation} degradation: {len(train_set)} training / {len(held_out)} validation images, "
               f"{channels} ch x {blocks} blocks, batch {batch} of {patch * factor}px, {dtype}, {options.minutes} min")
    losses: list[float] = []
    for step in run.steps():
        rate = cosine_rate(base_rate, run.progress, floor=0.05)
        set_learning_rate(optimizer, rate)
        hr = random_crops(train_set, patch * factor, batch, rng, scale_range=(min_scale, 1.0))
        hr = augment_colours(hr, rng, invert, permute_colours).to(device)
        lr = degrade(hr, factor, rng)
        hr = hr.contiguous(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
        with run.autocast():
            sr = generator(lr).float()
        loss = F.l1_loss(sr, hr)
        if discriminator is not None:
            with torch.no_grad(), run.autocast():
                real_features = discriminator(hr)[1]
            with run.autocast():
                fake_logits, fake_features = discriminator(sr)
            matching = sum(F.l1_loss(f.float(), r.float().detach()) for f, r in zip(fake_features, real_features))
            adversarial = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits.float()))
            loss = loss + FEATURE_MATCHING_WEIGHT * matching + ADVERSARIAL_WEIGHT * adversarial
            if vgg is not None:
                with run.autocast():
                    loss = loss + VGG_WEIGHT * F.l1_loss(vgg(sr).float(), vgg(hr).float())
        run.optimise(loss, optimizer)
        if discriminator is not None:
            with run.autocast():
                real_logits = discriminator(hr)[0].float()
                fake_logits = discriminator(sr.detach())[0].float()
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            run.optimise(d_loss, d_optimizer)
        losses.append(float(loss.detach()))
        if (step + 1) % validate_every == 0:
            ours, bicubic = validate(generator, held_out, factor, device, dtype, degrade)
            click.echo(f"step {step + 1}  {run.elapsed / 60:.1f} min  loss {np.mean(losses):.4f}  "
                       f"lr {rate:.2e}  val Y-PSNR {ours:.2f} dB (bicubic {bicubic:.2f}, {ours - bicubic:+.2f})")
            losses.clear()

    ours, bicubic = validate(generator, held_out, factor, device, dtype, degrade)
    content_loss = "l1" if discriminator is None else (
        "l1+vgg54+feature-matching" if vgg is not None else "l1+feature-matching")
    card = run.model_card([images], {"val_y_psnr": round(ours, 3), "val_bicubic_y_psnr": round(bicubic, 3)},
                          train_images=len(train_set), validation_images=len(held_out), content_loss=content_loss,
                          degradation=degradation, validation=f"every {holdout_every}th image sorted by path")
    name = "real" if degradation == "real" and model_kind == "srresnet" else model_kind
    run.save_weights(generator.state_dict(), {**generator.config(), "model": name}, card)
    click.echo(f"done: {run.step} steps in {run.elapsed / 60:.1f} min; validation Y-PSNR {ours:.2f} dB "
               f"(bicubic {bicubic:.2f}, {ours - bicubic:+.2f}); wrote {options.out}")
