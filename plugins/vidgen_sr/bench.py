"""`vidgen bench sr`: quality (Y-PSNR/SSIM) and speed of bicubic, Lanczos, srresnet and srgan in one run."""

from __future__ import annotations

import time
from typing import Callable

import click
import numpy as np
import torch

from vidgen.compute import compute_dtype, resolve_device
from vidgen.processor import ProcessorContext, VideoMeta
from vidgen.synth import evaluation_photos
from vidgen_sr.evaluate import crop_to_multiple, to_uint8, y_psnr_ssim
from vidgen_sr.model import SCALES, downscale
from vidgen_sr.processor import ENSEMBLE_SIZES, MODELS, SuperResolution

SPEED_OUTPUT = (1280, 720)
ENSEMBLE = max(ENSEMBLE_SIZES)  # the bench's self-ensemble rows: all flips and quarter turns


def ready(model: str, scale: int, device: torch.device, dtype: torch.dtype, **options: object) -> SuperResolution:
    """A set-up `sr` processor for frames of the size that upscale to `SPEED_OUTPUT` (size only matters for logs)."""
    processor = SuperResolution(model=model, scale=scale, **options)
    meta = VideoMeta(SPEED_OUTPUT[0] // scale, SPEED_OUTPUT[1] // scale, 25.0)
    processor.setup(ProcessorContext(device, dtype, meta, lambda message: None))
    return processor


def classic(interpolation: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """An OpenCV resize `(h, w, 3)` uint8 → `(h·s, w·s, 3)` uint8."""
    import cv2

    return lambda lr, scale: cv2.resize(lr, (lr.shape[1] * scale, lr.shape[0] * scale), interpolation=interpolation)


def network(processor: SuperResolution) -> Callable[[np.ndarray, int], np.ndarray]:
    """Wrap a set-up processor as `(h, w, 3)` uint8 → `(h·s, w·s, 3)` uint8."""

    def run(lr: np.ndarray, scale: int) -> np.ndarray:
        frames = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(processor.device)
        with torch.no_grad():
            return to_uint8(processor.upscale(frames)[0])

    return run


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 4096, repeats: int = 3) -> float:
    """Best FLOP/s of a `size`² matmul in `dtype` (the machine's dense rate for that precision)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def flops_per_frame(processor: SuperResolution, width: int, height: int) -> float:
    """FLOPs of one forward pass on a `width` × `height` frame (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        processor.upscaler.network(torch.zeros(1, 3, height, width, device=processor.device))
    return float(counter.get_total_flops())


def frames_per_second(processor: SuperResolution, width: int, height: int, frames: int, batch: int) -> float:
    """Upscaling rate of `frames` random frames of `width` × `height`, `batch` per call, after one warm-up."""
    clip = torch.rand(frames, 3, height, width, device=processor.device)
    with torch.no_grad():
        processor.upscale(clip[:batch])
        if processor.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for first in range(0, frames, batch):
            processor.upscale(clip[first:first + batch])
        if processor.device.type == "cuda":
            torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


@click.command("sr")
@click.option("--frames", type=int, default=16, show_default=True, help="Frames timed per speed row.")
@click.option("--batch", type=int, default=4, show_default=True, help="Frames per forward pass in the speed rows.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def bench_command(frames: int, batch: int, device: str) -> None:
    """Y-PSNR/SSIM on photographs the models never saw, and fps for 320x180 -> 1280x720 (x4) / 640x360 (x2)."""
    import cv2

    torch_device = resolve_device(device)
    dtype = compute_dtype(torch_device)
    photos = {name: crop_to_multiple(photo, max(SCALES)) for name, photo in evaluation_photos().items()}
    methods: dict[str, dict[int, Callable[[np.ndarray, int], np.ndarray]]] = {
        "bicubic (cv2)": {s: classic(cv2.INTER_CUBIC) for s in SCALES},
        "Lanczos (cv2)": {s: classic(cv2.INTER_LANCZOS4) for s in SCALES},
    }
    for model in MODELS:
        methods[model] = {s: network(ready(model, s, torch_device, dtype)) for s in SCALES}
    methods[f"srresnet, ensemble {ENSEMBLE}"] = {s: network(ready("srresnet", s, torch_device, dtype,
                                                                  ensemble=ENSEMBLE)) for s in SCALES}

    scores: dict[tuple[str, int], list[tuple[float, float]]] = {}
    per_photo: dict[tuple[str, int], list[float]] = {}
    for scale in SCALES:
        for name, photo in photos.items():
            hr = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float().div(255)
            lr = to_uint8(downscale(hr, scale)[0])
            for method, by_scale in methods.items():
                value = y_psnr_ssim(by_scale[scale](lr, scale), photo, scale)
                scores.setdefault((method, scale), []).append(value)
                per_photo.setdefault((method, scale), []).append(value[0])

    click.echo(f"Quality on {', '.join(photos)} (scikit-image; antialiased bicubic downscale, 8-bit LR), "
               f"Y channel, {'/'.join(map(str, SCALES))}-pixel border cropped; mean over photos\n")
    header = " | ".join(f"x{s} Y-PSNR (dB) | x{s} Y-SSIM" for s in SCALES)
    click.echo(f"| method | {header} |")
    click.echo("|---" * (1 + 2 * len(SCALES)) + "|")
    for method in methods:
        cells = " | ".join(f"{np.mean([p for p, _ in scores[(method, s)]]):.2f} | "
                           f"{np.mean([q for _, q in scores[(method, s)]]):.4f}" for s in SCALES)
        click.echo(f"| {method} | {cells} |")
    click.echo(f"\nY-PSNR (dB) per photo, x4\n\n| method | {' | '.join(photos)} |")
    click.echo("|---" * (1 + len(photos)) + "|")
    for method in methods:
        click.echo(f"| {method} | " + " | ".join(f"{v:.2f}" for v in per_photo[(method, 4)]) + " |")

    peak = matmul_peak(torch_device, dtype)
    click.echo(f"\nSpeed on {torch_device.type} ({torch.get_num_threads()} threads), output {SPEED_OUTPUT[0]}x"
               f"{SPEED_OUTPUT[1]}, {frames} frames, batch {batch}; {dtype} matmul peak measured now: "
               f"{peak / 1e9:.0f} GFLOP/s\n")
    click.echo("| method | input | precision | tile | fps | GFLOP/frame (untiled) | achieved GFLOP/s | % of matmul peak |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for scale in SCALES:
        width, height = SPEED_OUTPUT[0] // scale, SPEED_OUTPUT[1] // scale
        lr = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
        resize = classic(cv2.INTER_CUBIC)
        start = time.perf_counter()
        for _ in range(frames):
            resize(lr, scale)
        click.echo(f"| bicubic (cv2) x{scale} | {width}x{height} | uint8 | - | "
                   f"{frames / (time.perf_counter() - start):.1f} | - | - | - |")
        fp32_row = [(torch.float32, 0, 1)] if dtype != torch.float32 else []
        for precision, tile, ensemble in [(dtype, 0, 1), *fp32_row, (dtype, 96, 1), (dtype, 0, ENSEMBLE)]:
            processor = ready("srresnet", scale, torch_device, precision, tile=tile, batch=batch, ensemble=ensemble)
            timed = max(batch, frames // ensemble)  # the ensemble rows time fewer frames: each is N passes
            fps = frames_per_second(processor, width, height, timed, batch)
            flops = flops_per_frame(processor, width, height) * ensemble
            achieved = flops * fps
            share = f"{100 * achieved / peak:.0f} %" if precision == dtype and not tile else "-"
            name = f"srresnet x{scale}" + (f", ensemble {ensemble}" if ensemble > 1 else "")
            click.echo(f"| {name} | {width}x{height} | {str(precision).replace('torch.', '')} | "
                       f"{tile or '-'} | {fps:.2f} | {flops / 1e9:.1f} | {achieved / 1e9:.0f} | {share} |")
