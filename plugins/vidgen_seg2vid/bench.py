"""`vidgen bench seg2vid`: quality, label fidelity and temporal stability on photos the model never saw.

For each of `vidgen.synth.evaluation_photos()` the photo is segmented with the fixed segmentation; the
label map and the photo are moved along the same pan/zoom path (labels nearest-neighbour), and the label
clip is rendered by each method. Metrics are averaged over frames and photos:
PSNR / SSIM (RGB) against the real moving frames, label accuracy (the output segmented the same way vs
the input labels), warping error (Lai et al., flow from the real frames, ×1000, lower is steadier).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

import vidgen
from vidgen.bench import (SPEED_HEADER, BenchOptions, FrameSize, bench_options, contact_sheet, count_flops, print_table,
                          sheet_frames, timed)
from vidgen.metrics import psnr, ssim, warping_error
from vidgen.synth import camera_path, evaluation_photos
from vidgen_seg2vid.labels import colourise, label_path, segment, segmentation_model


def class_mean_render(labels: np.ndarray) -> np.ndarray:
    """Baseline without a model: paint each class `(T, H, W)` with its segmentation centre colour."""
    import cv2

    centres = np.asarray(segmentation_model()["centres"], np.float32)[None]
    rgb = np.clip(cv2.cvtColor(centres, cv2.COLOR_Lab2RGB)[0], 0, 1)
    return (rgb[labels] * 255).round().astype(np.uint8)


def scores(outputs: np.ndarray, real: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, label accuracy and warping error of `outputs` `(T, H, W, 3)` uint8."""
    return {
        "psnr": float(np.mean([psnr(o, r) for o, r in zip(outputs, real)])),
        "ssim": float(np.mean([ssim(o, r) for o, r in zip(outputs, real)])),
        "accuracy": float(np.mean([(segment(o) == l).mean() for o, l in zip(outputs, labels)])),
        "warping": warping_error(outputs, real),
    }


@click.command("seg2vid")
@click.option("--size", type=FrameSize(), default="192x128", show_default=True, help="Clip size WIDTHxHEIGHT.")
@click.option("--frames", type=click.IntRange(2), default=12, show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Generator weights (default: shipped).")
@bench_options(default_device="auto")
def bench_command(options: BenchOptions, size: tuple[int, int], frames: int, weights: str | None) -> None:
    """seg2vid (with previous-frame conditioning) vs per-frame generation vs flat class colours.

    The contact sheet (--sheet) shows the first photo's clip: the label input, each method, the real frames."""
    width, height = size
    settings = {"weights": Path(weights)} if weights else {}
    methods: dict[str, dict] = {
        "class-mean colours (no model)": {},
        "seg2vid per-frame (temporal=false)": {"temporal": False},
        "seg2vid (style 0)": {},
        "seg2vid (style 1)": {"style": 1},
        "seg2vid (style 2)": {"style": 2},
    }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in [*methods, "real frames (reference)"]}
    flops: dict[str, float] = {}
    photos = evaluation_photos()
    for seed, (photo_name, photo) in enumerate(photos.items()):
        labels = label_path(segment(photo), width, height, frames, seed=seed)
        real = camera_path(photo, width, height, frames, seed=seed)
        clip = colourise(labels)
        sheet = {"labels": clip}
        style0 = None
        for name, method_options in methods.items():
            if name.startswith("seg2vid"):
                ready = vidgen.processor("seg2vid", device=str(options.device), precision=options.precision,
                                         **settings, **method_options)
                outputs, seconds = timed(lambda: ready(clip), options.device)
                if seed == 0:
                    flops[name] = count_flops(lambda: ready(clip)) / frames
            else:
                outputs, seconds = timed(lambda: class_mean_render(labels))
            row = scores(outputs, real, labels) | {"fps": frames / seconds}
            if name == "seg2vid (style 0)":
                style0 = outputs
            if style0 is not None and name.startswith("seg2vid (style") and outputs is not style0:
                row["style_change"] = float(np.abs(outputs.astype(np.float64) - style0).mean())
            rows[name].append(row)
            sheet[name] = outputs
        rows["real frames (reference)"].append(scores(real, real, labels))
        if options.sheet and seed == 0:
            contact_sheet(options.sheet, {**sheet, "real": real}, sheet_frames(frames))
        click.echo(f"{photo_name}: done", err=True)
    click.echo(f"\nseg2vid on {', '.join(photos)} ({width}x{height}, {frames} frames each, moving labels; "
               f"means over frames and photos); {options.device}, {options.dtype}; {options.rates.describe()}\n")
    table = []
    for name, results in rows.items():
        mean = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        reference = name.startswith("real")
        speed = options.speed_cells(flops[name], mean["fps"]) if name in flops else ["–"] * len(SPEED_HEADER)
        table.append([name, "–" if reference else f"{mean['psnr']:.2f}", "–" if reference else f"{mean['ssim']:.3f}",
                      f"{mean['accuracy']:.1%}", f"{mean['warping']:.3f}",
                      f"{mean['style_change']:.1f}" if "style_change" in mean else "–",
                      f"{mean['fps']:.1f}" if "fps" in mean else "–", *speed])
    print_table(["method", "PSNR dB", "SSIM", "label accuracy", "warping error ×1000", "mean abs Δ vs style 0", "fps",
                 *SPEED_HEADER], table)
