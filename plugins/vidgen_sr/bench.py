"""`vidgen bench sr`: quality (Y-PSNR/SSIM) and speed of bicubic, Lanczos, the shipped models and published
peers (`--peer`) in one run, on photos and, with `--clip`, on real footage downscaled and H.264-compressed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click
import numpy as np
import torch

from vidgen import frames_to_uint8
from vidgen.bench import (SPEED_HEADER, BenchOptions, bench_options, contact_sheet, count_flops, print_table,
                          read_frames, sheet_frames, timed)
from vidgen.metrics import warping_error
from vidgen.processor import ProcessorContext, VideoMeta
from vidgen.synth import evaluation_photos
from vidgen_sr.degrade import h264
from vidgen_sr.evaluate import crop_to_multiple, to_uint8, y_psnr_ssim
from vidgen_sr.model import SCALES, downscale
from vidgen_sr.processor import ENSEMBLE_SIZES, MODELS, SuperResolution, shipped_scales

SPEED_OUTPUT = (1280, 720)
ENSEMBLE = max(ENSEMBLE_SIZES)  # the bench's self-ensemble rows: all flips and quarter turns
SPEED_REPEATS = 3  # rounds over the speed rows; each row reports its best


def ready(model: str, scale: int, device: torch.device, dtype: torch.dtype, **options: object) -> SuperResolution:
    """A set-up `sr` processor for frames of the size that upscale to `SPEED_OUTPUT` (size only matters for logs);
    `scale` 0 with `weights=PATH` takes the checkpoint's scale."""
    processor = SuperResolution(model=model, scale=scale, **options)
    meta = VideoMeta(SPEED_OUTPUT[0] // (scale or 4), SPEED_OUTPUT[1] // (scale or 4), 25.0)
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


def per_frame(method: Callable[[np.ndarray, int], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A x4 frame method applied to each frame of a `(T, h, w, 3)` uint8 clip on its own."""
    return lambda clip: np.stack([method(frame, 4) for frame in clip])


def streamed(processor: SuperResolution) -> Callable[[np.ndarray], np.ndarray]:
    """A set-up processor run over a `(T, h, w, 3)` uint8 clip as one stream (so `sr.steady` sees the frames
    before each one), in batches of `sr.batch`."""

    def run(clip: np.ndarray) -> np.ndarray:
        processor.reset()
        frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div(255).to(processor.device)
        batch = processor.settings.batch
        with torch.no_grad():
            return np.concatenate([frames_to_uint8(processor.upscale_stream(frames[first:first + batch]))
                                   for first in range(0, len(frames), batch)])

    return run


def flops_per_frame(processor: SuperResolution, width: int, height: int) -> float:
    """FLOPs of one forward pass on a `width` × `height` frame (torch's FLOP counter)."""
    frame = torch.zeros(1, 3, height, width, device=processor.device)
    return count_flops(lambda: processor.upscaler.network(frame))


@dataclass
class SpeedRow:
    """One network row of the speed table: what it is called and what it times."""

    name: str
    processor: SuperResolution
    width: int
    height: int
    frames: int
    precision: torch.dtype
    tile: int = 0
    ensemble: int = 1


def frames_per_second(rows: list[SpeedRow], batch: int, repeats: int = SPEED_REPEATS) -> list[float]:
    """Upscaling rate of each row (`frames` random frames of `width` × `height`, `batch` per call): the best
    of `repeats` passes, taken in rounds over all rows after one warm-up call each, so a row timed early in
    the run (a growing heap, a busy machine) is not at a disadvantage to the rows after it."""
    clips = [torch.rand(row.frames, 3, row.height, row.width, device=row.processor.device) for row in rows]
    best = [float("inf")] * len(rows)
    with torch.no_grad():
        for row, clip in zip(rows, clips):
            row.processor.upscale(clip[:batch])
        for _ in range(repeats):
            for index, (row, clip) in enumerate(zip(rows, clips)):
                seconds = timed(lambda: [row.processor.upscale(clip[first:first + batch])
                                         for first in range(0, row.frames, batch)], row.processor.device)[1]
                best[index] = min(best[index], seconds)
    return [row.frames / seconds for row, seconds in zip(rows, best)]


def compressed_clip(path: Path, frames: int, scale: int, crf: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth `(T, H, W, 3)`, LR `(T, H/s, W/s, 3)`) uint8: the first `frames` of real footage, cropped to a multiple
    of 2·`scale`, downscaled ×`scale` (antialiased bicubic) and encoded with H.264 at `crf` (libx264 medium)."""
    truth = np.stack([crop_to_multiple(frame, 2 * scale) for frame in read_frames(path, frames)])
    hr = torch.from_numpy(truth).permute(0, 3, 1, 2).float().div(255)
    lr = np.stack([to_uint8(image) for image in downscale(hr, scale)])
    return truth, h264(lr, crf, preset="medium")


def centre_crops(images: list[np.ndarray], size: int) -> np.ndarray:
    """`(N, size, size, 3)`: the centre `size`² crop of each `(H, W, 3)` image (for the contact sheet)."""
    return np.stack([image[(image.shape[0] - size) // 2:(image.shape[0] + size) // 2,
                           (image.shape[1] - size) // 2:(image.shape[1] + size) // 2] for image in images])


@click.command("sr")
@click.option("--frames", type=click.IntRange(1), default=16, show_default=True, help="Frames timed per speed row.")
@click.option("--batch", type=click.IntRange(1), default=4, show_default=True, help="Frames per forward pass in the speed rows.")
@click.option("--peer", "peers", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A published checkpoint (any spandrel SR model) benched alongside, same frames, same run; repeatable.")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Real footage (video file or frame folder) also scored at x4 after downscaling and H.264; repeatable.")
@click.option("--clip-frames", type=click.IntRange(2), default=24, show_default=True, help="Frames read from each --clip.")
@click.option("--crf", type=click.IntRange(0, 51), default=28, show_default=True, help="H.264 CRF of the --clip inputs.")
@bench_options(default_device="auto")
def bench_command(options: BenchOptions, frames: int, batch: int, peers: tuple[Path, ...], clips: tuple[Path, ...],
                  clip_frames: int, crf: int) -> None:
    """Y-PSNR/SSIM on photographs the models never saw, and fps for 320x180 -> 1280x720 (x4) / 640x360 (x2).

    With --clip, also Y-PSNR/SSIM and warping error at x4 on real footage (downscaled, H.264 at --crf). The
    contact sheet (--sheet) shows the centre of each photo at x4 (LR input, each method, truth), or with
    --clip the centre of the first clip's first, middle and last frames."""
    import cv2

    device, dtype = options.device, options.dtype
    peer_processors = {path: ready("srresnet", 0, device, dtype, weights=str(path)) for path in peers}
    peer_names = {path: f"peer: {processor.upscaler.label}" for path, processor in peer_processors.items()}
    photos = {name: crop_to_multiple(photo, max(SCALES)) for name, photo in evaluation_photos().items()}
    methods: dict[str, dict[int, Callable[[np.ndarray, int], np.ndarray]]] = {
        "bicubic (cv2)": {s: classic(cv2.INTER_CUBIC) for s in SCALES},
        "Lanczos (cv2)": {s: classic(cv2.INTER_LANCZOS4) for s in SCALES},
    }
    for model in MODELS:
        if shipped_scales(model):
            methods[model] = {s: network(ready(model, s, device, dtype)) for s in shipped_scales(model)}
    methods[f"srresnet, ensemble {ENSEMBLE}"] = {s: network(ready("srresnet", s, device, dtype,
                                                                  ensemble=ENSEMBLE)) for s in SCALES}
    for path, processor in peer_processors.items():
        methods[peer_names[path]] = {processor.scale: network(processor)}

    scores: dict[tuple[str, int], list[tuple[float, float]]] = {}
    sheet: dict[str, list[np.ndarray]] = {"input (LR)": []}
    for scale in SCALES:
        for name, photo in photos.items():
            hr = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float().div(255)
            lr = to_uint8(downscale(hr, scale)[0])
            if scale == 4:
                sheet["input (LR)"].append(cv2.resize(lr, photo.shape[1::-1], interpolation=cv2.INTER_NEAREST))
            for method, by_scale in methods.items():
                if scale not in by_scale:
                    continue
                output = by_scale[scale](lr, scale)
                scores.setdefault((method, scale), []).append(y_psnr_ssim(output, photo, scale))
                if scale == 4:
                    sheet.setdefault(method, []).append(output)

    click.echo(f"Quality on {', '.join(photos)} (scikit-image; antialiased bicubic downscale, 8-bit LR), "
               f"Y channel, {'/'.join(map(str, SCALES))}-pixel border cropped; mean over photos; {dtype}\n")
    print_table(["method", *[f"x{s} {what}" for s in SCALES for what in ("Y-PSNR (dB)", "Y-SSIM")]],
                [[method, *[cell for s in SCALES for cell in mean_cells(scores.get((method, s)))]]
                 for method in methods])
    click.echo("\nY-PSNR (dB) per photo, x4\n")
    print_table(["method", *photos], [[method, *[f"{p:.2f}" for p, _ in scores[(method, 4)]]]
                                      for method in methods if (method, 4) in scores])
    if clips:
        clip_methods = {f"{name} (per frame)" if name in MODELS else name: per_frame(by_scale[4])
                        for name, by_scale in methods.items() if 4 in by_scale and "ensemble" not in name}
        for model in ("srresnet", "real"):
            clip_methods[f"{model}, steady (default)"] = streamed(ready(model, 4, device, dtype))
        clip_table(clips, clip_frames, crf, clip_methods, options.sheet)
    elif options.sheet:
        size = min(min(photo.shape[:2]) for photo in photos.values()) // 2
        columns = {name: centre_crops(images, size) for name, images in sheet.items()}
        columns["truth"] = centre_crops(list(photos.values()), size)
        contact_sheet(options.sheet, columns, range(len(photos)))

    click.echo(f"\nSpeed on {device.type} ({torch.get_num_threads()} threads), output {SPEED_OUTPUT[0]}x"
               f"{SPEED_OUTPUT[1]}, {frames} frames, batch {batch}, best of {SPEED_REPEATS} rounds over the networks; {options.rates.describe()}\n")
    rows: list[list[str] | SpeedRow] = []
    for scale in SCALES:
        width, height = SPEED_OUTPUT[0] // scale, SPEED_OUTPUT[1] // scale
        lr = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
        resize = classic(cv2.INTER_CUBIC)
        seconds = timed(lambda: [resize(lr, scale) for _ in range(frames)])[1]
        rows.append([f"bicubic (cv2) x{scale}", f"{width}x{height}", "uint8", "-", f"{frames / seconds:.1f}",
                     *["-"] * len(SPEED_HEADER)])
        fp32_row = [(torch.float32, 0, 1)] if dtype != torch.float32 else []
        for precision, tile, ensemble in [(dtype, 0, 1), *fp32_row, (dtype, 96, 1), (dtype, 0, ENSEMBLE)]:
            processor = ready("srresnet", scale, device, precision, tile=tile, batch=batch, ensemble=ensemble)
            timed_frames = max(batch, frames // ensemble)  # the ensemble rows time fewer frames: each is N passes
            name = f"srresnet x{scale}" + (f", ensemble {ensemble}" if ensemble > 1 else "")
            rows.append(SpeedRow(name, processor, width, height, timed_frames, precision, tile, ensemble))
        if scale in shipped_scales("real"):  # the same network as srresnet x4, other weights: the same speed
            for precision in dict.fromkeys([dtype, torch.float32]):
                processor = ready("real", scale, device, precision, batch=batch)
                rows.append(SpeedRow(f"real x{scale}", processor, width, height, frames, precision))
    for path, peer in peer_processors.items():
        width, height = SPEED_OUTPUT[0] // peer.scale, SPEED_OUTPUT[1] // peer.scale
        for precision in dict.fromkeys([dtype, torch.float32]):
            processor = ready("srresnet", 0, device, precision, weights=str(path), batch=batch)
            ran = precision if processor.upscaler.reduced_precision else torch.float32
            rows.append(SpeedRow(f"{peer_names[path]} x{peer.scale}", processor, width, height, frames, ran))
    networks = [row for row in rows if isinstance(row, SpeedRow)]
    rates = iter(frames_per_second(networks, batch))
    for index, row in enumerate(rows):
        if isinstance(row, SpeedRow):
            fps = next(rates)
            flops = flops_per_frame(row.processor, row.width, row.height) * row.ensemble
            rows[index] = [row.name, f"{row.width}x{row.height}", str(row.precision).replace("torch.", ""),
                           row.tile or "-", f"{fps:.2f}", *options.speed_cells(flops, fps)]
    print_table(["method", "input", "precision", "tile", "fps", *SPEED_HEADER], rows)


def mean_cells(pairs: list[tuple[float, float]] | None) -> tuple[str, str]:
    """Table cells: mean Y-PSNR and Y-SSIM of (psnr, ssim) pairs, or dashes for a scale a method lacks."""
    if not pairs:
        return "-", "-"
    return f"{np.mean([p for p, _ in pairs]):.2f}", f"{np.mean([q for _, q in pairs]):.4f}"


def clip_table(clips: tuple[Path, ...], frames: int, crf: int,
               methods: dict[str, Callable[[np.ndarray], np.ndarray]], sheet: Path | None) -> None:
    """Print Y-PSNR/SSIM per clip and warping error of each x4 method on real footage (downscaled ×4, H.264 at
    `crf`), and write the contact sheet of the first clip."""
    scale = 4
    rows, steadiness = [], []
    for index, path in enumerate(clips):
        truth, lr = compressed_clip(path, frames, scale, crf)
        outputs = {name: method(lr) for name, method in methods.items()}
        for name, output in outputs.items():
            pairs = [y_psnr_ssim(o, t, scale) for o, t in zip(output, truth)]
            rows.append([path.name, name, *mean_cells(pairs), f"{warping_error(output, truth):.3f}"])
        if index == 0 and sheet:
            import cv2

            size = min(truth.shape[1:3]) // 2
            columns = {"input (LR, nearest)": np.stack([cv2.resize(frame, truth.shape[2:0:-1],
                                                                   interpolation=cv2.INTER_NEAREST) for frame in lr])}
            columns |= {name: output for name, output in outputs.items()} | {"truth": truth}
            contact_sheet(sheet, {name: centre_crops(list(clip), size) for name, clip in columns.items()},
                          sheet_frames(len(truth)))
        steadiness.append(f"{path.name} truth {warping_error(truth, truth):.3f}")
    click.echo(f"\nReal footage: first {frames} frames, cropped to a multiple of {2 * scale}, downscaled x{scale} "
               f"(antialiased bicubic), H.264 crf {crf} (libx264 medium); Y channel, {scale}-pixel border cropped; "
               f"warping error x1000 (flow of the truth; lower is steadier; {'; '.join(steadiness)})\n")
    print_table(["clip", "method", "Y-PSNR (dB)", "Y-SSIM", "warping error"], rows)
