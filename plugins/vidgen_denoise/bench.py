"""`vidgen bench denoise`: fastNlMeans vs per-frame vs temporal RED-Net on camera-motion clips of unseen photos."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import click
import numpy as np

from vidgen.bench import (SPEED_HEADER, BenchOptions, FrameSize, NumberList, bench_options, contact_sheet,
                          count_flops, print_table, sheet_frames, timed)
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


def score_cells(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> list[str]:
    """Table cells: mean PSNR (2 decimals) and SSIM (3 decimals)."""
    value_psnr, value_ssim = scores(outputs, cleans)
    return [f"{value_psnr:.2f}", f"{value_ssim:.3f}"]


@click.command("denoise")
@click.option("--size", type=FrameSize(), default="640x360", show_default=True, help="Clip frame size WIDTHxHEIGHT.")
@click.option("--frames", type=click.IntRange(1), default=8, show_default=True, help="Frames per clip (one clip per photo).")
@click.option("--sigmas", type=NumberList(float), default="15,25,50", show_default=True,
              help="Gaussian noise levels (0-255 scale).")
@click.option("--tile", type=int, default=1024, show_default=True, help="denoise.tile for the network runs.")
@click.option("--compare-tile", type=int, default=320, show_default=True,
              help="Also time temporal mode with this tile size on the last σ's clips (0 = skip).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Weights to benchmark (default: the shipped model).")
@click.option("--peer", "peers", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A published checkpoint (any spandrel denoiser, e.g. DnCNN) benched per frame alongside, on the "
                   "same clips in the same run, at --precision and at fp32; repeatable.")
@click.option("--seed", type=int, default=0, show_default=True)
@bench_options(default_device="cpu")
def bench_command(options: BenchOptions, size: tuple[int, int], frames: int, sigmas: list[float], tile: int,
                  compare_tile: int, weights: Path | None, peers: tuple[Path, ...], seed: int) -> None:
    """PSNR/SSIM/fps of fastNlMeans (h tuned per σ), per-frame and temporal denoise on unseen photographs.

    Clips: scikit-image's astronaut, coffee, chelsea and rocket seen by a panning, zooming camera, with
    fresh Gaussian noise in every frame. h is tuned on the first 3 frames of the first clip. The contact
    sheet (--sheet) shows the first clip at the first σ.
    """
    import torch

    import vidgen
    from vidgen.synth import camera_path, evaluation_photos

    width, height = size
    photos = evaluation_photos()
    cleans = [camera_path(photo, width, height, frames, seed=i) for i, photo in enumerate(photos.values())]
    settings = {"tile": tile, **({"weights": weights} if weights else {})}
    ready = functools.partial(vidgen.processor, "denoise", device=str(options.device), precision=options.precision)
    networks = {"vidgen per-frame (frames=1)": ready(frames=1, **settings),
                "vidgen temporal (frames=5)": ready(frames=5, **settings)}
    precisions = {str(options.dtype).replace("torch.", ""): options.precision, "float32": "fp32"}
    for path in peers:
        for label, precision in precisions.items():
            peer = functools.partial(vidgen.processor, "denoise", device=str(options.device), precision=precision)
            networks[f"peer: {path.name} ({label})"] = peer(frames=1, tile=tile, weights=path)
    for network in networks.values():
        network(cleans[0][:3])  # warm-up: kernel selection happens on the first call
    flops = {label: count_flops(lambda: network(cleans[0])) / frames for label, network in networks.items()}
    click.echo(f"clips: {', '.join(photos)}; {frames} frames of {width}x{height} each; device {options.device}, "
               f"{options.dtype}; torch threads {torch.get_num_threads()}; {options.rates.describe()}\n")
    rows = []
    for sigma in sigmas:
        rng = np.random.default_rng(seed + int(sigma))
        noisy = [add_gaussian_noise(clip, sigma, rng) for clip in cleans]
        rows.append([f"{sigma:g}", "noisy input", *score_cells(noisy, cleans), "", *[""] * len(SPEED_HEADER)])
        tuning = [nlm_denoiser(sigma * f)(noisy[0][:3]) for f in NLM_H_FACTORS]
        best_h = sigma * NLM_H_FACTORS[int(np.argmax([scores([t], [cleans[0][:3]])[0] for t in tuning]))]
        methods = {f"cv2.fastNlMeansDenoisingColored h={best_h:g}": nlm_denoiser(best_h), **networks}
        sheet = {"noisy": noisy[0]}
        for label, method in methods.items():
            outputs, seconds = timed(lambda: [method(clip) for clip in noisy], options.device)
            fps = frames * len(noisy) / seconds
            speed = options.speed_cells(flops[label], fps) if label in flops else ["-"] * len(SPEED_HEADER)
            rows.append([f"{sigma:g}", label, *score_cells(outputs, cleans), f"{fps:.1f}", *speed])
            sheet[label] = outputs[0]
        if options.sheet and sigma == sigmas[0]:
            contact_sheet(options.sheet, {**sheet, "clean": cleans[0]}, sheet_frames(frames))
    print_table(["σ", "method", "PSNR (dB)", "SSIM", "fps", *SPEED_HEADER], rows)
    if compare_tile:
        tiled = ready(**{**settings, "tile": compare_tile})
        tiled(cleans[0][:3])
        tiled_fps = frames * len(noisy) / timed(lambda: [tiled(clip) for clip in noisy], options.device)[1]
        whole = networks["vidgen temporal (frames=5)"]
        whole_fps = frames * len(noisy) / timed(lambda: [whole(clip) for clip in noisy], options.device)[1]
        click.echo(f"\ntemporal mode speed at σ={sigma:g}: tile={tile} {whole_fps:.1f} fps, "
                   f"tile={compare_tile} {tiled_fps:.1f} fps")
