"""`vidgen bench inpaint-init`: how a new hole's latent starts — the z-encoder, Lahiri's pool, or Yeh's random z.

Two tables, each from one run: (1) real footage under a static box, through the processor (masked PSNR,
s/frame, search steps, the speed-up over per-frame Yeh); (2) held-out photo crops with tile-like holes, the
latent search alone (hole PSNR after the Poisson blend, seconds per tile).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch

from vidgen.bench import BenchOptions, FrameSize, NumberList, bench_options, print_table, read_frames, timed
from vidgen.training import load_images, random_crops, split_holdout
from vidgen_inpaint.bench import Clip, score, telea
from vidgen_inpaint.model import TILE, encoder_path, load_encoder, load_gan
from vidgen_inpaint.processor import FIRST_SEARCH
from vidgen_inpaint.search import SearchSettings, nearest_latents, poisson_blend, random_latents, search_latents
from vidgen_inpaint.train_encoder import hole_psnr, random_holes


def box_clip(path: str, frames: int, width: int, height: int, box: int) -> Clip:
    """Real footage (first `frames`, resized to `width` × `height`) under a static `box` × `box` box in the
    middle, painted over: nothing in the clip is hidden, so the truth under the box is known."""
    import cv2

    truth = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                      for frame in read_frames(path, frames)])
    masks = np.zeros(truth.shape[:3], bool)
    x0, y0 = (width - box) // 2, (height - box) // 2
    masks[:, y0:y0 + box, x0:x0 + box] = True
    corrupted = truth.copy()
    corrupted[masks] = (30, 140, 220)
    return Clip(f"{Path(path).name}/static box", truth, corrupted, masks)


def run_processor(clip: Clip, options: dict, first_search: tuple[int, float] | None, device: str,
                  precision: str) -> tuple[np.ndarray, float, int]:
    """Inpaint `clip` (`first_search`: the encoder's first-search steps and rate): (frames, seconds, steps)."""
    import vidgen

    ready = vidgen.processor("inpaint", device=device, precision=precision, mask=clip.masks, **options)
    processor = ready.processors[0]
    if first_search is not None:
        processor.first_search = dict(processor.first_search, encoder=first_search)
    result, seconds = timed(lambda: ready(clip.corrupted), device)
    return result, seconds, processor.stats.search_steps


def tile_rows(photos: str, weights: str | None, count: int, encoder_steps: list[int], yeh_iterations: int,
              autocast, seed: int) -> list[list[str]]:
    """Hole PSNR (Poisson-blended) and seconds per tile of each initialisation on held-out photo crops."""
    netG, netD, _ = load_gan(weights)
    encoder = load_encoder(encoder_path(weights), netG)
    _, held = split_holdout(load_images(photos, min_size=TILE + 1))
    rng = np.random.default_rng(seed + 1)
    crops = random_crops(held, TILE, count, rng, (0.25, 1.0))
    known = random_holes(count, rng)
    base = SearchSettings()

    def measure(label: str, start_latents, settings: SearchSettings) -> list[str]:
        started = time.perf_counter()
        z0 = start_latents()
        images = search_latents(netG, netD, crops, known, z0, settings, autocast=autocast).images
        seconds = time.perf_counter() - started
        return [label, f"{hole_psnr(poisson_blend(images, crops, known), crops, known):.2f}",
                f"{hole_psnr(images, crops, known):.2f}", f"{1000 * seconds / count:.1f}"]

    def from_encoder():
        with torch.no_grad(), autocast:
            return encoder(crops, known).float()

    def from_pool():
        return nearest_latents(netG, crops, known, 64, generator=torch.Generator().manual_seed(seed), autocast=autocast)

    def from_random():
        return random_latents(count, netG.z_dim, crops.device, torch.Generator().manual_seed(seed))

    lr = FIRST_SEARCH["encoder"][1]
    rows = [measure(f"Yeh: random z + {yeh_iterations} steps (lr 0.03)", from_random,
                    SearchSettings(max_steps=yeh_iterations, early_stop=False))]
    steps, pool_lr = FIRST_SEARCH["pool"]
    rows.append(measure(f"pool of 64 + {steps} annealed steps (lr {pool_lr})", from_pool, base.image_search(steps, pool_lr)))
    for steps in encoder_steps:
        rows.append(measure(f"encoder + {steps} annealed steps (lr {lr})", from_encoder, base.image_search(steps, lr)))
    return rows


@click.command("inpaint-init")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True),
              help="Real footage (a video file or a folder of frames), resized to --size, under a static box; "
                   "repeat for several clips.")
@click.option("--frames", type=click.IntRange(1), default=12, show_default=True)
@click.option("--size", type=FrameSize(), default="320x180", show_default=True)
@click.option("--box", type=click.IntRange(4), default=40, show_default=True, help="Side of the static box, px.")
@click.option("--yeh-frames", type=click.IntRange(1), default=4, show_default=True,
              help="Frames per-frame Yeh runs on; every method is scored on these first frames.")
@click.option("--yeh-iterations", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--encoder-steps", type=NumberList(int), default="0,10,25,50", show_default=True,
              help="First-search steps tried from the encoder's latent.")
@click.option("--refine-steps", type=NumberList(int), default=None,
              help="Also run the encoder start (shipped first search) with each group's refinement capped at "
                   "these steps, without and with propagation.")
@click.option("--photos", type=click.Path(exists=True, file_okay=False),
              help="Photo folder: also run the tile table on crops of its held-out photos (every 10th).")
@click.option("--crops", type=click.IntRange(1), default=128, show_default=True, help="Crops of the tile table.")
@click.option("--weights", default=None, help="G/D weights file (default: the shipped prior); its encoder "
                                              "is the X.encoder.safetensors beside it.")
@click.option("--seed", type=int, default=0, show_default=True)
@bench_options(default_device="cpu")
def bench_command(options: BenchOptions, clips: tuple[str, ...], frames: int, size: tuple[int, int], box: int,
                  yeh_frames: int, yeh_iterations: int, encoder_steps: list[int], refine_steps: list[int] | None,
                  photos: str | None, crops: int, weights: str | None, seed: int) -> None:
    """Encoder vs pool initialisation vs per-frame Yeh: quality and speed of the latent search."""
    if not clips and not photos:
        raise click.UsageError("give --clip (one or more) and/or --photos")
    device, precision = str(options.device), options.precision
    width, height = size
    scored = min(yeh_frames, frames)
    common = {"weights": weights, "seed": seed, "dilate": 0}
    default_steps = FIRST_SEARCH["encoder"][0]
    methods: dict[str, tuple[dict, tuple[int, float] | None]] = {
        f"per-frame Yeh ({yeh_iterations} it)": (dict(common, schedule="per-frame", propagate=False,
                                                      iterations=yeh_iterations), None),
        "video, init=pool, no propagation": (dict(common, init="pool", propagate=False), None),
    }
    for steps in encoder_steps:
        methods[f"video, init=encoder + {steps} steps, no propagation"] = (
            dict(common, init="encoder", propagate=False), (steps, FIRST_SEARCH["encoder"][1]))
    refine_steps = refine_steps or []
    for steps in refine_steps:
        methods[f"video, init=encoder + {default_steps} steps, refine <= {steps}, no propagation"] = (
            dict(common, init="encoder", propagate=False, refine=steps), None)
    methods["default (propagate), init=pool"] = (dict(common, init="pool"), None)
    methods[f"default (propagate), init=encoder + {default_steps} steps"] = (dict(common, init="encoder"), None)
    for steps in refine_steps:
        methods[f"default (propagate), init=encoder + {default_steps} steps, refine <= {steps}"] = (
            dict(common, init="encoder", refine=steps), None)
    rows, speeds = [], {}
    for path in clips:
        clip = box_clip(path, frames, width, height, box)
        result, seconds = timed(lambda: telea(clip, 0))
        rows.append([clip.name, "OpenCV Telea", score(clip, result, 0, scored)["psnr"], seconds / frames, ""])
        for label, (settings, first_search) in methods.items():
            run_on = Clip(clip.name, clip.truth[:scored], clip.corrupted[:scored], clip.masks[:scored]) \
                if settings.get("schedule") == "per-frame" else clip
            result, seconds, steps = run_processor(run_on, settings, first_search, device, precision)
            per_frame = seconds / len(run_on.truth)
            rows.append([clip.name, label, score(clip, result, 0, scored)["psnr"], per_frame, str(steps)])
            speeds.setdefault(label, []).append(per_frame)
            click.echo(f"  {clip.name}: {label} done in {seconds:.1f} s", err=True)
    if clips:
        click.echo(f"clips: {frames} frames at {width}x{height}, a static {box}x{box} box in the middle; per-frame Yeh "
                   f"runs on the first {scored} frames and every method is scored on those; torch threads "
                   f"{torch.get_num_threads()}, device {device}, {options.dtype}; {options.rates.describe()}\n")
        print_table(["clip", "method", "masked PSNR (dB)", "s/frame", "search steps"],
                    [[c, m, f"{p:.2f}", f"{s:.3f}", n] for c, m, p, s, n in rows])
        yeh = np.mean(next(v for k, v in speeds.items() if k.startswith("per-frame")))
        click.echo("\nspeed-up over per-frame Yeh (mean s/frame over clips): " + ", ".join(
            f"{label}: {yeh / np.mean(values):.0f}x" for label, values in speeds.items()
            if not label.startswith("per-frame")))
    if photos:
        autocast = torch.autocast("cpu", dtype=options.dtype, enabled=options.dtype != torch.float32) \
            if options.device.type == "cpu" else torch.autocast("cuda", dtype=options.dtype)
        table = tile_rows(photos, weights, crops, encoder_steps, yeh_iterations, autocast, seed)
        click.echo(f"\ntiles: {crops} crops (64x64, rescaled 0.25-1x) of the held-out photos (every 10th) of {photos}, "
                   f"tile-like holes; all tiles searched as one batch; {options.dtype}\n")
        print_table(["initialisation + search", "hole PSNR, blended (dB)", "hole PSNR, raw G(z) (dB)", "ms/tile"], table)
