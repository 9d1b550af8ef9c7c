"""`vidgen train seg2vid`: train the label-to-photo generator on (photo, label map) pairs.

Each step draws pairs of consecutive "frames" — two views of the same photo under a small random pan and
zoom, with their label maps moved the same way (nearest-neighbour) — and trains
  L1(G(labels_0, no previous), photo_0) + L1(G(labels_1, previous = output_0), photo_1)
  + temporal: L1 between output_1 and output_0 warped by the known motion (visible pixels)
  + adversarial (hinge, label-conditioned PatchGAN) + KL of the style encoder's code (cVAE-GAN style).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from vidgen import VidgenError, frames_to_uint8
from vidgen.metrics import psnr
from vidgen.training import TrainingRun, TrainOptions, load_images, split_holdout, train_options
from vidgen_seg2vid.labels import PALETTE, class_names, segment
from vidgen_seg2vid.model import Generator, PatchDiscriminator, StyleEncoder

@dataclass
class Pair:
    """A training photo `(3, H, W)` float in [0, 1], the same photo halved (for zoomed-out crops) and
    its class map `(1, 1, H, W)` float (class indices, sampled nearest-neighbour)."""

    photo: torch.Tensor
    half: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(cls, rgb: np.ndarray, labels: np.ndarray) -> Pair:
        import cv2

        half = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
        as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1).float().div(255)  # noqa: E731
        return cls(as_tensor(rgb), as_tensor(half), torch.from_numpy(labels).float()[None, None])


@dataclass
class ClipBatch:
    """Two consecutive frames per sample: photos `(N, 3, S, S)`, labels `(N, S, S)` int64, and for frame 1
    the `grid` `(N, S, S, 2)` that samples frame 0 at the same scene point, valid where `visible` `(N, 1, S, S)`."""

    photo0: torch.Tensor
    photo1: torch.Tensor
    labels0: torch.Tensor
    labels1: torch.Tensor
    grid: torch.Tensor
    visible: torch.Tensor

    def to(self, device: torch.device) -> ClipBatch:
        return ClipBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def pairs_from_images(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Photos of `folder` with labels from the fixed unsupervised segmentation."""
    return [(image, segment(image)) for image in load_images(folder)]


def pairs_from_folder(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cityscapes-like pairs: `folder/images/NAME.(png|jpg)` with class-index PNG `folder/labels/NAME.png`."""
    import cv2

    root = Path(folder)
    images = sorted(p for p in (root / "images").glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not images:
        raise VidgenError(f"{root / 'images'}: no .png/.jpg photos found")
    pairs = []
    for path in images:
        label_path = root / "labels" / f"{path.stem}.png"
        if not label_path.is_file():
            raise VidgenError(f"{label_path}: missing label map for {path.name}")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        labels = cv2.imread(str(label_path), cv2.IMREAD_GRAYSCALE)
        if bgr is None or labels is None or bgr.shape[:2] != labels.shape:
            raise VidgenError(f"{path.name}: photo and label map must be readable and of the same size")
        pairs.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels))
    return pairs


def sample_clips(pairs: list[Pair], size: int, count: int, rng: np.random.Generator,
                 scale_range: tuple[float, float] = (0.4, 1.0), max_shift: float = 4.0,
                 max_zoom: float = 0.04) -> ClipBatch:
    """`count` random two-frame clips of `size`² pixels: frame 1 is frame 0 panned by up to `max_shift`
    output pixels and zoomed by up to `max_zoom`; crops are rescaled by `scale_range` and mirrored."""
    offsets = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    v, u = torch.meshgrid(offsets, offsets, indexing="ij")
    photos, labels, grids, visible = [[], []], [[], []], [], []
    for _ in range(count):
        pair = pairs[rng.integers(len(pairs))]
        height, width = pair.photo.shape[-2:]
        smallest = 1.1 * size / min(height, width)
        s0 = rng.uniform(max(scale_range[0], smallest), max(scale_range[1], smallest))
        s1 = s0 * (1 + rng.uniform(-max_zoom, max_zoom))
        flip = -1.0 if rng.random() < 0.5 else 1.0
        half_extent = size / (2 * s0)
        c0 = np.array([rng.uniform(half_extent, width - half_extent), rng.uniform(half_extent, height - half_extent)])
        c1 = c0 + rng.uniform(-max_shift, max_shift, 2) / s0
        points = []
        for frame, (centre, scale) in enumerate(((c0, s0), (c1, s1))):
            x = centre[0] + flip * u / scale
            y = centre[1] + v / scale
            points.append((x, y))
            grid = torch.stack([2 * x / width - 1, 2 * y / height - 1], -1)[None]
            source = pair.half if scale < 0.7 else pair.photo
            photos[frame].append(F.grid_sample(source[None], grid, "bilinear", "reflection", align_corners=False))
            labels[frame].append(F.grid_sample(pair.labels, grid, "nearest", "reflection", align_corners=False))
        x1, y1 = points[1]
        u0 = flip * (x1 - c0[0]) * s0
        v0 = (y1 - c0[1]) * s0
        grid0 = torch.stack([2 * u0 / size, 2 * v0 / size], -1)
        grids.append(grid0)
        visible.append(((grid0.abs() <= 1 - 1 / size).all(-1)).float()[None])
    return ClipBatch(torch.cat(photos[0]), torch.cat(photos[1]), torch.cat(labels[0])[:, 0].long(),
                     torch.cat(labels[1])[:, 0].long(), torch.stack(grids), torch.stack(visible))


def validate(generator: Generator, batch: ClipBatch, classes: int, autocast: torch.autocast,
             builtin_classes: bool) -> tuple[float, float | None]:
    """Style-0 outputs of the first frames of `batch`: mean PSNR (dB) to the photos and, for the built-in
    classes, the fraction of pixels whose segmentation matches the input labels (else None)."""
    generator.eval()
    device = next(generator.parameters()).device
    with torch.no_grad(), autocast:
        onehot = F.one_hot(batch.labels0.to(device), classes).permute(0, 3, 1, 2).float()
        zeros = torch.zeros_like(batch.photo0, device=device)
        out = generator(onehot, zeros, zeros[:, :1], torch.zeros(len(onehot), generator.style_dim, device=device))
    generator.train()
    outputs, photos = frames_to_uint8(out), frames_to_uint8(batch.photo0)
    scores = [psnr(o, p) for o, p in zip(outputs, photos)]
    if not builtin_classes:
        return float(np.mean(scores)), None
    accuracy = [float((segment(o) == l).mean()) for o, l in zip(outputs, batch.labels0.numpy())]
    return float(np.mean(scores)), float(np.mean(accuracy))


def describe(val_psnr: float, val_accuracy: float | None) -> str:
    """The validation part of a progress line."""
    accuracy = "n/a" if val_accuracy is None else f"{val_accuracy:.1%}"
    return f"val PSNR {val_psnr:.2f} dB, label accuracy {accuracy}"


@click.command("seg2vid")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), help="Photos only: labels come from the built-in segmentation (how the shipped model was trained).")
@click.option("--pairs", "pairs_dir", type=click.Path(file_okay=False), help="Your own pairs: DIR/images/NAME.png|jpg and class-index DIR/labels/NAME.png.")
@train_options(default_out="seg2vid.safetensors", default_minutes=10.0)
@click.option("--crop", type=int, default=80, show_default=True, help="Training crop size (multiple of 8).")
@click.option("--batch", type=int, default=6, show_default=True)
@click.option("--lr", type=float, default=5e-4, show_default=True, help="Adam learning rate (generator, encoder and critic).")
@click.option("--temporal-weight", type=float, default=1.0, show_default=True, help="Weight of the warping loss between consecutive outputs.")
@click.option("--adversarial-weight", type=float, default=0.05, show_default=True)
@click.option("--kl-weight", type=float, default=0.01, show_default=True)
@click.option("--holdout-every", type=int, default=10, show_default=True, help="Every N-th pair is held out for validation.")
def train_command(options: TrainOptions, images_dir: str | None, pairs_dir: str | None, crop: int, batch: int,
                  lr: float, temporal_weight: float, adversarial_weight: float, kl_weight: float,
                  holdout_every: int) -> None:
    """Train the seg2vid generator; prints step, losses and validation PSNR / label accuracy.

    Use the result with -p seg2vid.weights=OUT."""
    if (images_dir is None) == (pairs_dir is None):
        raise click.UsageError("give exactly one of --images DIR or --pairs DIR")
    if crop % 8:
        raise click.UsageError("--crop must be a multiple of 8")
    device = options.device
    arrays = pairs_from_images(images_dir) if images_dir else pairs_from_folder(pairs_dir)
    classes = int(max(labels.max() for _, labels in arrays)) + 1
    if classes > len(PALETTE):
        raise VidgenError(f"labels go up to class {classes - 1}; at most {len(PALETTE)} classes are supported")
    names = class_names() if images_dir else [f"class {k}" for k in range(classes)]
    if images_dir:
        classes = len(names)
    kept, held = split_holdout(arrays, holdout_every)
    if not held:
        raise VidgenError(f"need at least {holdout_every} pairs to hold out a validation one")
    train_pairs = [Pair.from_arrays(*a) for a in kept]
    valid_batch = sample_clips([Pair.from_arrays(*a) for a in held], crop, 16, np.random.default_rng(12345))
    click.echo(f"{len(kept)} training / {len(held)} validation pairs, {classes} classes")

    generator, encoder = Generator(classes).to(device), StyleEncoder().to(device)
    critic = PatchDiscriminator(classes).to(device)
    opt_g = torch.optim.Adam([*generator.parameters(), *encoder.parameters()], lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr, betas=(0.5, 0.999))
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    run = TrainingRun(options, {"generator": generator, "encoder": encoder, "critic": critic, "opt_g": opt_g,
                                "opt_d": opt_d}, dtype, checkpoint_every=120.0)
    last_report = None

    for step in run.steps():
        clips = sample_clips(train_pairs, crop, batch, run.rng).to(device)
        onehot0 = F.one_hot(clips.labels0, classes).permute(0, 3, 1, 2).float()
        onehot1 = F.one_hot(clips.labels1, classes).permute(0, 3, 1, 2).float()
        with run.autocast():
            mean, log_var = encoder(clips.photo0)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            zeros = torch.zeros_like(clips.photo0)
            out0 = generator(onehot0, zeros, zeros[:, :1], z)
            out1 = generator(onehot1, out0.detach(), torch.ones_like(zeros[:, :1]), z)
            warped0 = F.grid_sample(out0.detach(), clips.grid, "bilinear", "border", align_corners=False)
            reconstruction = (out0 - clips.photo0).abs().mean() + (out1 - clips.photo1).abs().mean()
            temporal = ((out1 - warped0).abs() * clips.visible).sum() / (3 * clips.visible.sum() + 1)
            kl = -0.5 * torch.mean(1 + log_var - mean**2 - log_var.exp())
            fakes = torch.cat([out0, out1])
            labels = torch.cat([onehot0, onehot1])
            adversarial = -critic(labels, fakes).mean()
            loss = reconstruction + temporal_weight * temporal + kl_weight * kl + adversarial_weight * adversarial
        run.optimise(loss, opt_g)
        with run.autocast():
            reals = torch.cat([clips.photo0, clips.photo1])
            critic_loss = F.relu(1 - critic(labels, reals)).mean() + F.relu(1 + critic(labels, fakes.detach())).mean()
        run.optimise(critic_loss, opt_d)
        if last_report is None or run.elapsed - last_report > 60:
            val_psnr, val_accuracy = validate(generator, valid_batch, classes, run.autocast(), images_dir is not None)
            click.echo(f"step {step + 1} [{run.elapsed / 60:.1f} min] L1 {reconstruction.item():.4f} temporal "
                       f"{temporal.item():.4f} KL {kl.item():.3f} adv {adversarial.item():.3f} "
                       f"D {critic_loss.item():.3f} | "
                       + describe(val_psnr, val_accuracy))
            last_report = run.elapsed
    with torch.no_grad(), run.autocast():  # where the encoder puts real photos: styles are drawn from this spread
        codes = encoder(sample_clips(train_pairs, crop, 64, run.rng).photo0.to(device))[0].float()
    val_psnr, val_accuracy = validate(generator, valid_batch, classes, run.autocast(), images_dir is not None)
    config = {"classes": classes, "class_names": names, "style_dim": generator.style_dim,
              "widths": list(generator.widths), "style_mean": [round(v, 4) for v in codes.mean(0).tolist()],
              "style_std": [round(v, 4) for v in codes.std(0).tolist()]}
    card = run.model_card([images_dir or pairs_dir], {"val_psnr_style0": round(val_psnr, 2),
                                                      "val_label_accuracy": val_accuracy and round(val_accuracy, 4)},
                          crop=crop, batch=batch, lr=lr, train_pairs=len(kept), validation_pairs=len(held),
                          loss_weights={"l1": 1.0, "temporal": temporal_weight, "adversarial": adversarial_weight,
                                        "kl": kl_weight})
    run.save_weights(generator.state_dict(), config, card)
    click.echo(f"done: {run.step} steps in {run.elapsed / 60:.1f} min; {describe(val_psnr, val_accuracy)}; "
               f"wrote {options.out}")
