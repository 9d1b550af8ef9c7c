"""`vidgen bench denoise`: fastNlMeans vs per-frame vs temporal RED-Net on camera-motion clips of unseen photos."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import click
import numpy as np

from vidgen.metrics import psnr, ssim

NLM_H_FACTORS = (0.3, 0.45, 0.6, 0.8, 1.0)  # fastNlMeans filter strength h tried per σ, as multiples of σ


def add_gaussian_noise(clip: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """`(T, H, W, 3)` uint8 + fresh N(0, σ²) noise per frame (0-255 scale), clipped and rounded."""
    return np.clip(clip + rng.normal(0, sigma, clip.shape), 0, 255).round().astype(np.uint8)


def nlm_denoiser(h: float) -> Callable[[np.ndarray], np.ndarray]:
    """Per-frame `cv2.fastNlMeansDenoisingColored` (7×7 template, 21×21 search) on `(T, H, W, 3)` RGB."""
    import cv2

    def run(clip: np.ndarray) -> np.ndarray:
        return np.stack([cv2.fastNlMeansDenoisingColored(frame, None, h, h, 7, 21) for frame in clip])

    return run


def scores(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> tuple[float, float]:
    """Mean RGB PSNR and SSIM over every frame of every clip."""
    pairs = [(o, c) for out, clean in zip(outputs, cleans) for o, c in zip(out, clean)]
    return float(np.mean([psnr(o, c) for o, c in pairs])), float(np.mean([ssim(o, c) for o, c in pairs]))


def timed(method: Callable[[np.ndarray], np.ndarray], clips: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Outputs of `method` on each clip and the frames per second over all of them."""
    start = time.perf_counter()
    outputs = [method(clip) for clip in clips]
    return outputs, sum(len(c) for c in clips) / (time.perf_counter() - start)


@click.command("denoise")
@click.option("--size", default="640x360", show_default=True, help="Clip frame size WIDTHxHEIGHT.")
@click.option("--frames", type=int, default=8, show_default=True, help="Frames per clip (one clip per photo).")
@click.option("--sigmas", default="15,25,50", show_default=True, help="Gaussian noise levels (0-255 scale).")
@click.option("--tile", type=int, default=1024, show_default=True, help="denoise.tile for the network runs.")
@click.option("--compare-tile", type=int, default=320, show_default=True,
              help="Also time temporal mode with this tile size on the last σ's clips (0 = skip).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Weights to benchmark (default: the shipped model).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--seed", type=int, default=0, show_default=True)
def bench_command(size: str, frames: int, sigmas: str, tile: int, compare_tile: int, weights: Path | None,
                  device: str, seed: int) -> None:
    """PSNR/SSIM/fps of fastNlMeans (h tuned per σ), per-frame and temporal denoise on unseen photographs.

    Clips: scikit-image's astronaut, coffee, chelsea and rocket seen by a panning, zooming camera, with
    fresh Gaussian noise in every frame. h is tuned on the first 3 frames of the first clip.
    """
    import torch

    import vidgen
    from vidgen.synth import camera_path, evaluation_photos

    width, height = (int(v) for v in size.lower().split("x"))
    photos = evaluation_photos()
    cleans = [camera_path(photo, width, height, frames, seed=i) for i, photo in enumerate(photos.values())]
    options = {"tile": tile, **({"weights": weights} if weights else {})}
    networks = {
        "vidgen per-frame (frames=1)": vidgen.processor("denoise", device=device, frames=1, **options),
        "vidgen temporal (frames=5)": vidgen.processor("denoise", device=device, frames=5, **options),
    }
    for network in networks.values():
        network(cleans[0][:3])  # warm-up: kernel selection happens on the first call
    click.echo(f"clips: {', '.join(photos)}; {frames} frames of {width}x{height} each; device {device}; "
               f"torch threads {torch.get_num_threads()}\n")
    click.echo("| σ | method | PSNR (dB) | SSIM | fps |")
    click.echo("|---|---|---|---|---|")
    for sigma in (float(s) for s in sigmas.split(",")):
        rng = np.random.default_rng(seed + int(sigma))
        noisy = [add_gaussian_noise(clip, sigma, rng) for clip in cleans]
        noisy_psnr, noisy_ssim = scores(noisy, cleans)
        click.echo(f"| {sigma:g} | noisy input | {noisy_psnr:.2f} | {noisy_ssim:.3f} | |")
        tuning = [nlm_denoiser(sigma * f)(noisy[0][:3]) for f in NLM_H_FACTORS]
        best_h = sigma * NLM_H_FACTORS[int(np.argmax([scores([t], [cleans[0][:3]])[0] for t in tuning]))]
        methods = {f"cv2.fastNlMeansDenoisingColored h={best_h:g}": nlm_denoiser(best_h), **networks}
        for label, method in methods.items():
            outputs, fps = timed(method, noisy)
            value_psnr, value_ssim = scores(outputs, cleans)
            click.echo(f"| {sigma:g} | {label} | {value_psnr:.2f} | {value_ssim:.3f} | {fps:.1f} |")
    if compare_tile:
        tiled = vidgen.processor("denoise", device=device, **{**options, "tile": compare_tile})
        tiled(cleans[0][:3])
        _, tiled_fps = timed(tiled, noisy)
        _, whole_fps = timed(networks["vidgen temporal (frames=5)"], noisy)
        click.echo(f"\ntemporal mode speed at σ={sigma:g}: tile={tile} {whole_fps:.1f} fps, "
                   f"tile={compare_tile} {tiled_fps:.1f} fps")
