"""`vidgen train denoise`: train the temporal RED-Net on real video (neighbours aligned as the processor aligns
them), or the two-stage RED-Net on raw neighbours, and on synthetic noisy clips cut from still photographs."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from vidgen import VidgenError
from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, load_images, random_crops, set_learning_rate,
                             split_holdout, train_options)
from vidgen.weights import load_weights
from vidgen_denoise.data import VideoCropPool, find_clips, load_clip, to_tensor
from vidgen_denoise.model import TemporalREDNet, TwoStageREDNet
from vidgen_denoise.processor import aligned_stack

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


def mean_psnr(model: TemporalREDNet | TwoStageREDNet, inputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor | list[torch.Tensor],
              device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Mean PSNR (dB) of the model's outputs on `inputs` `(N, 3K+1, H, W)` against `target` `(N, 3, H, W)`
    (or on lists of `(1, 3K+1, H, W)` / `(3, H, W)` samples of different sizes)."""
    chunks = inputs.split(8) if isinstance(inputs, torch.Tensor) else inputs
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        outputs = [model(chunk.to(device)).float().cpu().clamp(0, 1) for chunk in chunks]
    if isinstance(inputs, torch.Tensor):
        outputs, target = [torch.cat(outputs)], [target]
    errors = torch.cat([(out - truth).pow(2).flatten(1).mean(1) for out, truth in zip(outputs, target)])
    return float((10 * torch.log10(1 / errors)).mean())


def training_loss(output: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Loss of `(B, 3, H, W)` outputs against targets: `mse` over the batch, or `psnr`: the mean of
    log(MSE + 1e-5) per crop, which is −mean PSNR up to scale and offset (capped at 50 dB)."""
    if kind == "mse":
        return F.mse_loss(output, target)
    return (output - target).square().mean(dim=(1, 2, 3)).add(1e-5).log().mean()


def held_out_clip_names(paths: list[Path], hold_out: tuple[str, ...]) -> set[str]:
    """The clips kept for validation: those named by `--hold-out` (file or folder name, without suffix), or
    every 5th clip when none is named (at least one when there are two or more)."""
    names = [path.stem for path in paths]
    if hold_out:
        unknown = sorted(set(hold_out) - set(names))
        if unknown:
            raise VidgenError(f"--hold-out {', '.join(unknown)}: no such clip (clips: {', '.join(names)})")
        return set(hold_out)
    held = set(split_holdout(names, every=5)[1])
    return held or ({names[-1]} if len(names) > 1 else set())


def video_validation_set(clips: dict[str, np.ndarray], frames: int, reject: float, seed: int,
                         align: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Fixed held-out real-clip samples at σ = 25 (blind), neighbours aligned as the processor does (when
    `align`): 'video temporal' and 'video per-frame', three centre frames per clip (whole frames)."""
    rng = np.random.default_rng(seed + 2)
    temporal, single, targets = [], [], []
    for clip in clips.values():
        for centre in np.linspace(frames // 2, len(clip) - 1 - frames // 2, 3).round().astype(int):
            window = clip[centre - frames // 2:centre + frames // 2 + 1]
            noisy = to_tensor(np.clip(window + rng.normal(0, 25, window.shape), 0, 255).round().astype(np.uint8))
            stack = aligned_stack(noisy, frames // 2, list(range(frames)), reject) if align else noisy
            temporal.append(stack)
            single.append(noisy[frames // 2:frames // 2 + 1].expand_as(stack))
            targets.append(to_tensor(window[frames // 2:frames // 2 + 1])[0])
    blind = torch.zeros(1)
    return {name: ([network_input(stack[None], blind) for stack in stacks], [target[None] for target in targets])
            for name, stacks in (("video temporal", temporal), ("video per-frame", single))}


def grown(model: TemporalREDNet | TwoStageREDNet, path: str) -> None:
    """Load `path` into `model`: residual blocks the file lacks keep their identity start (a grown network),
    and the file's residual blocks past the model's count are left out (a pruned network: each block adds a
    correction to what the blocks before it computed, so the first ones are kept)."""
    tensors = load_weights(path)[0]
    kept = {key: value for key, value in tensors.items() if not pruned_block(model, key)}
    try:
        missing, unexpected = model.load_state_dict(kept, strict=False)
    except RuntimeError:  # tensors of other shapes
        raise VidgenError(f"--init {path}: not weights of this network (other widths or frames)") from None
    if unexpected or any(not {"quarter_refine", "half_refine"} & set(key.split(".")) for key in missing):
        raise VidgenError(f"--init {path}: not weights of this network (missing {len(missing)}, "
                          f"unexpected {len(unexpected)} tensors)")


def pruned_block(model: torch.nn.Module, key: str) -> bool:
    """Whether the tensor named `key` belongs to a residual block past the count of `model`'s (a `quarter_refine`
    or `half_refine` sequence)."""
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if part in ("quarter_refine", "half_refine") and parts[depth + 1].isdigit():
            owner = model.get_submodule(".".join(parts[:depth])) if depth else model
            return int(parts[depth + 1]) >= len(getattr(owner, part))
    return False


@click.command("denoise")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of clean photographs (searched recursively); every 10th is held out for validation.")
@click.option("--videos", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of clean-ish real video (video files and folders of frames, searched recursively); "
                   "repeatable. Neighbours are aligned with the processor's own optical flow and rejection "
                   "(--arch rednet) or left as they are (two-stage).")
@click.option("--hold-out", multiple=True, help="Clip kept for validation (file or folder name without suffix); "
                                                 "repeatable; default: every 5th clip.")
@train_options(default_out="denoise.safetensors", default_minutes=15.0)
@click.option("--arch", type=click.Choice(["rednet", "two-stage"]), default="rednet", show_default=True,
              help="rednet: one network on neighbours aligned with optical flow (the processor aligns them); "
                   "two-stage: FastDVDnet-style, a shared 3-frame stage on each window of three raw frames, then a "
                   "stage fusing their outputs (no optical flow; --width etc. give each stage's shape).")
@click.option("--frames", type=int, default=5, show_default=True, help="Neighbouring frames the network sees (odd).")
@click.option("--width", type=int, default=24, show_default=True, help="Channels at full resolution (2x at 1/2, 4x at 1/4).")
@click.option("--body-layers", type=int, default=3, show_default=True, help="Convolutions at 1/4 resolution.")
@click.option("--quarter-blocks", type=int, default=0, show_default=True, help="Residual blocks at 1/4 resolution.")
@click.option("--half-blocks", type=int, default=0, show_default=True, help="Residual blocks at 1/2 resolution (decoder).")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--patch", type=int, default=64, show_default=True, help="Training crop size in pixels.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate (cosine-decayed over the budget).")
@click.option("--max-speed", type=float, default=6.0, show_default=True,
              help="Largest camera motion between neighbouring frames of the photo clips, px/frame. The processor "
                   "aligns neighbours with optical flow first, so a small value (residual misalignment) suits "
                   "--arch rednet; the two-stage network sees the motion itself.")
@click.option("--single-share", type=float, default=0.25, show_default=True,
              help="Share of the photo clips that repeat the centre frame (trains frames=1 mode).")
@click.option("--video-single-share", type=float, default=0.15, show_default=True,
              help="Share of the --videos samples that repeat the centre frame (frames=1 mode on real frames).")
@click.option("--video-share", type=float, default=0.6, show_default=True,
              help="Share of each batch from --videos (the rest from --images).")
@click.option("--video-height", type=int, default=240, show_default=True,
              help="Video frames are resized to this height (area): cleaner targets, fewer source artefacts.")
@click.option("--clip-frames", type=int, default=120, show_default=True, help="Frames read from each clip.")
@click.option("--h264-share", type=float, default=0.3, show_default=True,
              help="Share of video samples whose noisy frames are H.264-compressed (crf 18-28) before alignment.")
@click.option("--reject", type=float, default=4.0, show_default=True,
              help="The processor's `reject` used to build the aligned training samples.")
@click.option("--pool", type=int, default=4096, show_default=True, help="Video crops kept in memory.")
@click.option("--init", "init_weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from these weights: the same network, one with fewer residual blocks (the new blocks "
                   "start as the identity) or one with more (the blocks past --quarter-blocks / --half-blocks are "
                   "left out: a smaller, faster network fine-tuned from a larger one).")
@click.option("--warmup", type=int, default=0, show_default=True,
              help="Steps of linear learning-rate warm-up (use a few hundred when fine-tuning with --init: Adam's "
                   "first full-size steps would undo much of what the weights learned).")
@click.option("--refresh-every", type=int, default=2, show_default=True,
              help="Steps between new video samples in the pool (each gives 16 crops).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Training precision (auto: bf16 on CUDA, fp32 on a CPU, where bf16 was measured slower).")
@click.option("--loss", type=click.Choice(["mse", "psnr"]), default="mse", show_default=True,
              help="mse: mean squared error of the batch (high noise levels dominate); psnr: mean log-MSE per crop, "
                   "i.e. mean PSNR, which weights every noise level alike.")
@click.option("--validate-every", type=float, default=90.0, show_default=True, help="Seconds between validations and saves.")
def train_command(options: TrainOptions, images: str | None, videos: tuple[str, ...], hold_out: tuple[str, ...],
                  arch: str, frames: int, width: int, body_layers: int, quarter_blocks: int, half_blocks: int,
                  batch: int, patch: int, lr: float, max_speed: float, single_share: float, video_single_share: float,
                  video_share: float, video_height: int, clip_frames: int, h264_share: float, reject: float,
                  pool: int, init_weights: str | None, warmup: int, refresh_every: int, precision: str, loss: str,
                  validate_every: float) -> None:
    """Train the denoiser on real video clips with synthetic noise (--videos) and on clips made from still
    photographs with synthetic camera motion and noise (--images)."""
    if frames < 1 or frames % 2 == 0 or (arch == "two-stage" and frames < 3):
        raise click.BadParameter("must be odd (and at least 3 for --arch two-stage)", param_hint="--frames")
    if not images and not videos:
        raise click.UsageError("give --images, --videos or both")
    if videos and pool < max(batch, 16):
        raise click.BadParameter(f"must be at least {max(batch, 16)} (--batch and one sample's 16 crops)",
                                 param_hint="--pool")
    if clip_frames < 2 * frames:
        raise click.BadParameter(f"must be at least {2 * frames}", param_hint="--clip-frames")
    device = options.device
    validation: dict[str, tuple] = {}
    train_images, held_out = [], []
    if images:
        train_images, held_out = split_holdout(load_images(images, min_size=patch + 64))
        if not held_out:
            train_images, held_out = train_images[1:], train_images[:1]
        validation.update(validation_set(held_out, frames, options.seed, min(max_speed, 4.0)))
    network = TwoStageREDNet if arch == "two-stage" else TemporalREDNet
    model = network(frames, width, body_layers, quarter_blocks, half_blocks)
    if init_weights:
        grown(model, init_weights)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    dtype = torch.bfloat16 if precision == "bf16" or (precision == "auto" and device.type == "cuda") else torch.float32
    run = TrainingRun(options, {"model": model, "optimizer": optimizer}, dtype, validate_every)
    video_pool, held_clips = None, []
    if videos:
        paths = [path for folder in videos for path in find_clips(folder)]
        held_names = held_out_clip_names(paths, hold_out)
        loaded = {path.stem: load_clip(path, video_height, clip_frames) for path in paths}
        loaded = {name: clip for name, clip in loaded.items() if len(clip) >= frames and min(clip.shape[1:3]) > patch}
        held_clips = sorted(held_names & loaded.keys())
        training_clips = [clip for name, clip in loaded.items() if name not in held_names]
        if not training_clips:
            raise VidgenError("--videos: no clip left to train on (each needs more frames than --frames and to be "
                              "larger than --patch after resizing)")
        validation.update(video_validation_set({name: loaded[name] for name in held_clips}, frames, reject, run.seed,
                                               model.aligned_input))
        video_pool = VideoCropPool(training_clips, pool, patch, frames, reject, run.rng, crops_per_sample=16,
                                   align=model.aligned_input, h264_share=h264_share, single_share=video_single_share)
        click.echo(f"{len(training_clips)} training clips; held out: {', '.join(held_clips) or 'none'}")
    video_count = batch if not train_images else round(batch * video_share) if video_pool else 0
    click.echo(f"{len(train_images)} training / {len(held_out)} validation images; "
               f"{sum(p.numel() for p in model.parameters())} parameters; budget {options.minutes} min")
    last_check, running = run.elapsed, 0.0

    def validate_and_save() -> None:
        """Print the validation scores and write the current weights with them."""
        model.eval()
        scores = {name: round(mean_psnr(model, *data, device, dtype), 2) for name, data in validation.items()}
        model.train()
        click.echo(f"step {run.step}  {run.elapsed / 60:.1f} min  loss {running:.5f}  val PSNR σ25 "
                   + "  ".join(f"{name} {value:.2f} dB" for name, value in scores.items()))
        card = run.model_card([*([images] if images else []), *videos], {"val_psnr_sigma25": scores},
                              validation_images=len(held_out), validation_clips=held_clips)
        run.save_weights(model.state_dict(), model.config(), card)

    if run.step == 0:
        validate_and_save()
    for step in run.steps():
        set_learning_rate(optimizer, cosine_rate(lr, run.progress, floor=0.02) * min(1.0, (step + 1) / (warmup + 1)))
        parts = []
        if video_count:
            if step % refresh_every == 0:
                video_pool.refresh()
            noisy, clean, level = video_pool.batch(video_count)
            parts.append((network_input(noisy, level), clean))
        if batch - video_count:
            parts.append(training_batch(train_images, batch - video_count, patch, frames, run.rng, max_speed,
                                        single_share))
        inputs = torch.cat([p[0] for p in parts]).to(device, memory_format=torch.channels_last)
        target = torch.cat([p[1] for p in parts]).to(device)
        with run.autocast():
            objective = training_loss(model(inputs).float(), target, loss)
        run.optimise(objective, optimizer)
        running = 0.98 * running + 0.02 * objective.item() if step else objective.item()
        if run.elapsed - last_check >= validate_every:
            last_check = run.elapsed
            validate_and_save()
    validate_and_save()
    click.echo(f"wrote {options.out}")
