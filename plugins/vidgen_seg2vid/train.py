"""`vidgen train seg2vid`: train the label-to-photo generator on (photo, label map) pairs.

Each step draws two-frame clips: two views of the same photo, the second moved by a random affine motion
(pan, zoom, rotation) plus a smooth random flow field, with the label maps moved the same way
(nearest-neighbour). Frame 0 is generated without history; frame 1 from its labels and frame 0's output
warped by the motion estimated between the two label maps (as the processor does). Losses:
  L1 of the 4×-downscaled outputs to the photos (colour and layout, not texture placement)
  + discriminator feature matching + hinge GAN (two-scale label-conditioned PatchGAN)
  + temporal: L1 between output 1 and output 0 warped by the true motion (visible pixels)
  + KL of the style encoder's code (cVAE-GAN).
No pretrained perceptual network (no VGG weights): feature matching on the discriminator's layers and the
low-resolution L1 take its place.
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
from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, load_images, set_learning_rate, split_holdout,
                             train_options)
from vidgen_seg2vid.labels import CAMVID_CLASSES, CAMVID_PALETTE, PALETTE, class_names, label_flow, segment
from vidgen_seg2vid.model import Generator, MultiScaleDiscriminator, StyleEncoder, warp


@dataclass
class Pair:
    """A training photo `(3, H, W)` uint8, the same photo halved (for zoomed-out crops) and its class map
    `(1, 1, H, W)` float (class indices, sampled nearest-neighbour)."""

    photo: torch.Tensor
    half: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(cls, rgb: np.ndarray, labels: np.ndarray) -> Pair:
        import cv2

        half = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)  # noqa: E731
        return cls(as_tensor(rgb), as_tensor(half), torch.from_numpy(labels).float()[None, None])


@dataclass
class ClipBatch:
    """Two consecutive frames per sample: photos `(N, 3, S, S)` in [0, 1], labels `(N, S, S)` int64; for
    frame 1 the true `grid` `(N, S, S, 2)` (grid_sample coordinates) that samples frame 0 at the same scene
    point, valid where `visible` `(N, 1, S, S)`, and `flow` `(N, S, S, 2)` pixels estimated from the labels."""

    photo0: torch.Tensor
    photo1: torch.Tensor
    labels0: torch.Tensor
    labels1: torch.Tensor
    grid: torch.Tensor
    visible: torch.Tensor
    flow: torch.Tensor

    def to(self, device: torch.device) -> ClipBatch:
        return ClipBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def pairs_from_images(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Photos of `folder` with labels from the fixed unsupervised segmentation."""
    return [(image, segment(image)) for image in load_images(folder)]


def pairs_from_folder(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """CamVid-like pairs: `folder/images/NAME.(png|jpg)` with class-index PNG `folder/labels/NAME.png`."""
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


def smooth_field(size: int, amplitude: float, rng: np.random.Generator) -> torch.Tensor:
    """A smooth random displacement `(2, size, size)` (pixels, up to about `amplitude`): random values on a
    4×4 grid, upsampled bicubically."""
    coarse = torch.from_numpy(rng.uniform(-amplitude, amplitude, (1, 2, 4, 4))).float()
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0]


def sample_clips(pairs: list[Pair], size: int, count: int, rng: np.random.Generator,
                 scale_range: tuple[float, float] = (0.5, 1.0), max_shift: float = 6.0, max_zoom: float = 0.04,
                 max_degrees: float = 2.0, max_warp: float = 3.0) -> ClipBatch:
    """`count` random two-frame clips of `size`² pixels: frame 1 is frame 0 panned by up to `max_shift`
    output pixels, zoomed by up to `max_zoom`, rotated by up to `max_degrees` and bent by a smooth flow
    field of up to `max_warp` pixels; crops are rescaled by `scale_range` and mirrored."""
    offsets = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    v, u = torch.meshgrid(offsets, offsets, indexing="ij")
    photos, labels, grids, visible, flows = [[], []], [[], []], [], [], []
    for _ in range(count):
        pair = pairs[rng.integers(len(pairs))]
        height, width = pair.photo.shape[-2:]
        smallest = 1.2 * size / min(height, width)
        s0 = rng.uniform(max(scale_range[0], smallest), max(scale_range[1], smallest))
        s1 = s0 * (1 + rng.uniform(-max_zoom, max_zoom))
        flip = -1.0 if rng.random() < 0.5 else 1.0
        half_extent = size / (2 * s0)
        c0 = np.array([rng.uniform(half_extent, width - half_extent), rng.uniform(half_extent, height - half_extent)])
        c1 = c0 + rng.uniform(-max_shift, max_shift, 2) / s0
        angle = np.radians(rng.uniform(-max_degrees, max_degrees))
        bend = smooth_field(size, max_warp, rng)
        u1 = np.cos(angle) * u - np.sin(angle) * v + bend[0]
        v1 = np.sin(angle) * u + np.cos(angle) * v + bend[1]
        points = []
        for frame, (centre, scale, uu, vv) in enumerate(((c0, s0, u, v), (c1, s1, u1, v1))):
            x = centre[0] + flip * uu / scale
            y = centre[1] + vv / scale
            points.append((x, y))
            grid = torch.stack([2 * x / width - 1, 2 * y / height - 1], -1)[None]
            source = (pair.half if scale < 0.7 else pair.photo)[None].float() / 255
            photos[frame].append(F.grid_sample(source, grid, "bilinear", "reflection", align_corners=False))
            labels[frame].append(F.grid_sample(pair.labels, grid, "nearest", "reflection", align_corners=False))
        x1, y1 = points[1]
        grid0 = torch.stack([2 * flip * (x1 - c0[0]) * s0 / size, 2 * (y1 - c0[1]) * s0 / size], -1)
        grids.append(grid0)
        visible.append(((grid0.abs() <= 1 - 1 / size).all(-1)).float()[None])
        flows.append(torch.from_numpy(label_flow(labels[0][-1][0, 0].byte().numpy(), labels[1][-1][0, 0].byte().numpy())))
    return ClipBatch(torch.cat(photos[0]), torch.cat(photos[1]), torch.cat(labels[0])[:, 0].long(),
                     torch.cat(labels[1])[:, 0].long(), torch.stack(grids), torch.stack(visible), torch.stack(flows))


def validate(generator: Generator, batch: ClipBatch, classes: int, autocast: torch.autocast,
             colour_regions: bool) -> tuple[float, float | None]:
    """Style-0 outputs of the first frames of `batch`: mean PSNR (dB) to the photos and, for the colour-region
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
    if not colour_regions:
        return float(np.mean(scores)), None
    accuracy = [float((segment(o) == l).mean()) for o, l in zip(outputs, batch.labels0.numpy())]
    return float(np.mean(scores)), float(np.mean(accuracy))


def describe(val_psnr: float, val_accuracy: float | None) -> str:
    """The validation part of a progress line."""
    accuracy = "" if val_accuracy is None else f", label accuracy {val_accuracy:.1%}"
    return f"val PSNR {val_psnr:.2f} dB{accuracy}"


def hinge_and_matching(critic: MultiScaleDiscriminator, labels: torch.Tensor, fakes: torch.Tensor,
                       reals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator side: the hinge adversarial loss of `fakes` and the L1 feature matching to `reals`, both
    averaged over the critic's scales (and layers)."""
    with torch.no_grad():
        real_outputs = critic(labels, reals)
    adversarial, matching = 0.0, 0.0
    for fake_scale, real_scale in zip(critic(labels, fakes), real_outputs):
        adversarial = adversarial - fake_scale[-1].mean()
        matching = matching + sum(F.l1_loss(f, r) for f, r in zip(fake_scale[:-1], real_scale[:-1])) / (len(fake_scale) - 1)
    return adversarial / len(real_outputs), matching / len(real_outputs)


def critic_loss(critic: MultiScaleDiscriminator, labels: torch.Tensor, fakes: torch.Tensor,
                reals: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the critic on real and generated frames, averaged over scales."""
    loss = 0.0
    for real_scale, fake_scale in zip(critic(labels, reals), critic(labels, fakes)):
        loss = loss + F.relu(1 - real_scale[-1]).mean() + F.relu(1 + fake_scale[-1]).mean()
    return loss / 2


@click.command("seg2vid")
@click.option("--pairs", "pairs_dir", type=click.Path(file_okay=False), help="(photo, label) pairs: DIR/images/NAME.png|jpg and class-index DIR/labels/NAME.png, CamVid classes (how the shipped model was trained).")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), help="Photos only: labels are the built-in colour-region segmentation (8 classes that are colours, not objects).")
@train_options(default_out="seg2vid.safetensors", default_minutes=10.0)
@click.option("--crop", type=int, default=128, show_default=True, help="Training crop size (multiple of 8).")
@click.option("--batch", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=4e-4, show_default=True, help="Adam learning rate (generator, encoder and critic), cosine decay.")
@click.option("--temporal-weight", type=float, default=1.0, show_default=True, help="Weight of the warping loss between consecutive outputs.")
@click.option("--adversarial-weight", type=float, default=0.2, show_default=True)
@click.option("--matching-weight", type=float, default=2.0, show_default=True, help="Weight of discriminator feature matching.")
@click.option("--kl-weight", type=float, default=0.01, show_default=True)
@click.option("--holdout-every", type=int, default=10, show_default=True, help="Every N-th pair is held out for validation.")
def train_command(options: TrainOptions, pairs_dir: str | None, images_dir: str | None, crop: int, batch: int,
                  lr: float, temporal_weight: float, adversarial_weight: float, matching_weight: float,
                  kl_weight: float, holdout_every: int) -> None:
    """Train the seg2vid generator and style encoder; prints step, losses and validation PSNR.

    Use the result with -p seg2vid.weights=OUT."""
    if (images_dir is None) == (pairs_dir is None):
        raise click.UsageError("give exactly one of --pairs DIR or --images DIR")
    if crop % 8:
        raise click.UsageError("--crop must be a multiple of 8")
    device = options.device
    if images_dir:
        arrays, names, palette = pairs_from_images(images_dir), class_names(), PALETTE[:len(class_names())]
    else:
        arrays = pairs_from_folder(pairs_dir)
        classes = int(max(labels.max() for _, labels in arrays)) + 1
        if classes > len(CAMVID_PALETTE):
            raise VidgenError(f"labels go up to class {classes - 1}; CamVid-style pairs have at most "
                              f"{len(CAMVID_PALETTE)} classes (0-{len(CAMVID_PALETTE) - 1})")
        names, palette = list(CAMVID_CLASSES[:classes]), CAMVID_PALETTE[:classes]
    classes = len(names)
    kept, held = split_holdout(arrays, holdout_every)
    if not held:
        raise VidgenError(f"need at least {holdout_every} pairs to hold out a validation one")
    train_pairs = [Pair.from_arrays(*a) for a in kept]
    valid_batch = sample_clips([Pair.from_arrays(*a) for a in held], crop, 16, np.random.default_rng(12345))
    click.echo(f"{len(kept)} training / {len(held)} validation pairs, {classes} classes")

    generator, encoder = Generator(classes).to(device), StyleEncoder().to(device)
    critic = MultiScaleDiscriminator(classes).to(device)
    opt_g = torch.optim.Adam([*generator.parameters(), *encoder.parameters()], lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr, betas=(0.5, 0.999))
    # CPU: float32, measured faster than bf16 autocast for this network (instance norms, small convolutions)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    run = TrainingRun(options, {"generator": generator, "encoder": encoder, "critic": critic, "opt_g": opt_g,
                                "opt_d": opt_d}, dtype, checkpoint_every=120.0)
    last_report = None
    for step in run.steps():
        for optimizer in (opt_g, opt_d):
            set_learning_rate(optimizer, cosine_rate(lr, run.progress, floor=0.1))
        clips = sample_clips(train_pairs, crop, batch, run.rng).to(device)
        onehot0 = F.one_hot(clips.labels0, classes).permute(0, 3, 1, 2).float()
        onehot1 = F.one_hot(clips.labels1, classes).permute(0, 3, 1, 2).float()
        labels = torch.cat([onehot0, onehot1])
        reals = torch.cat([clips.photo0, clips.photo1])
        keep_history = torch.from_numpy(run.rng.random(batch) < 0.85).float().to(device)[:, None, None, None]
        with run.autocast():
            mean, log_var = encoder(clips.photo0)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            zeros = torch.zeros_like(clips.photo0)
            out0 = generator(onehot0, zeros, zeros[:, :1], z)
            history = keep_history.expand_as(zeros[:, :1])
            out1 = generator(onehot1, warp(out0.detach(), clips.flow) * history, history, z)
            fakes = torch.cat([out0, out1])
            reconstruction = F.l1_loss(F.avg_pool2d(fakes, 4), F.avg_pool2d(reals, 4))
            true_warp = F.grid_sample(out0.detach(), clips.grid, "bilinear", "border", align_corners=False)
            temporal = ((out1 - true_warp).abs() * clips.visible).sum() / (3 * clips.visible.sum() + 1)
            kl = -0.5 * torch.mean(1 + log_var - mean**2 - log_var.exp())
            adversarial, matching = hinge_and_matching(critic, labels, fakes, reals)
            loss = (reconstruction + temporal_weight * temporal + kl_weight * kl + adversarial_weight * adversarial
                    + matching_weight * matching)
        run.optimise(loss, opt_g)
        with run.autocast():
            d_loss = critic_loss(critic, labels, fakes.detach(), reals)
        run.optimise(d_loss, opt_d)
        if last_report is None or run.elapsed - last_report > 60:
            val_psnr, val_accuracy = validate(generator, valid_batch, classes, run.autocast(), images_dir is not None)
            click.echo(f"step {step + 1} [{run.elapsed / 60:.1f} min] L1/4 {reconstruction.item():.4f} temporal "
                       f"{temporal.item():.4f} FM {matching.item():.3f} adv {adversarial.item():.3f} "
                       f"KL {kl.item():.3f} D {d_loss.item():.3f} | " + describe(val_psnr, val_accuracy))
            last_report = run.elapsed
    with torch.no_grad(), run.autocast():  # where the encoder puts real photos: styles are drawn from this spread
        codes = encoder(sample_clips(train_pairs, crop, 64, run.rng).photo0.to(device))[0].float()
    val_psnr, val_accuracy = validate(generator, valid_batch, classes, run.autocast(), images_dir is not None)
    config = {"labels": "colour-regions" if images_dir else "camvid", "classes": classes, "class_names": names,
              "palette": [list(c) for c in palette], "style_dim": generator.style_dim,
              "widths": list(generator.widths), "hidden": generator.hidden,
              "style_mean": [round(v, 4) for v in codes.mean(0).tolist()],
              "style_std": [round(v, 4) for v in codes.std(0).tolist()]}
    metrics = {"val_psnr_style0": round(val_psnr, 2)}
    if val_accuracy is not None:
        metrics["val_label_accuracy"] = round(val_accuracy, 4)
    card = run.model_card([images_dir or pairs_dir], metrics,
                          crop=crop, batch=batch, lr=lr, train_pairs=len(kept), validation_pairs=len(held),
                          loss_weights={"l1_downscaled_4x": 1.0, "temporal": temporal_weight,
                                        "adversarial": adversarial_weight, "feature_matching": matching_weight,
                                        "kl": kl_weight})
    tensors = {**{f"generator.{k}": t for k, t in generator.state_dict().items()},
               **{f"encoder.{k}": t for k, t in encoder.state_dict().items()}}
    run.save_weights(tensors, config, card)
    click.echo(f"done: {run.step} steps in {run.elapsed / 60:.1f} min; {describe(val_psnr, val_accuracy)}; "
               f"wrote {options.out}")
