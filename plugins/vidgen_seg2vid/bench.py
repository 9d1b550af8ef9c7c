"""`vidgen bench seg2vid`: quality, label fidelity and temporal stability on photos the model never saw.

For each of `vidgen.synth.evaluation_photos()` the photo is segmented with the fixed segmentation; the
label map and the photo are moved along the same pan/zoom path (labels nearest-neighbour), and the label
clip is rendered by each method. Metrics are averaged over frames and photos:
PSNR / SSIM (RGB) against the real moving frames, label accuracy (the output segmented the same way vs
the input labels), warping error (Lai et al., flow from the real frames, ×1000, lower is steadier).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

import vidgen
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
@click.option("--size", default="192x128", show_default=True, help="Clip size WxH.")
@click.option("--frames", type=int, default=12, show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Generator weights (default: shipped).")
@click.option("--device", default="auto", show_default=True)
def bench_command(size: str, frames: int, weights: str | None, device: str) -> None:
    """seg2vid (with previous-frame conditioning) vs per-frame generation vs flat class colours."""
    width, height = (int(v) for v in size.lower().split("x"))
    options = {"weights": Path(weights)} if weights else {}
    methods: dict[str, dict] = {
        "class-mean colours (no model)": {},
        "seg2vid per-frame (temporal=false)": {"temporal": False},
        "seg2vid (style 0)": {},
        "seg2vid (style 1)": {"style": 1},
        "seg2vid (style 2)": {"style": 2},
    }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in [*methods, "real frames (reference)"]}
    for seed, (photo_name, photo) in enumerate(evaluation_photos().items()):
        labels = label_path(segment(photo), width, height, frames, seed=seed)
        real = camera_path(photo, width, height, frames, seed=seed)
        clip = colourise(labels)
        style0 = None
        for name, method_options in methods.items():
            started = time.perf_counter()
            if not name.startswith("seg2vid"):
                outputs = class_mean_render(labels)
            else:
                outputs = vidgen.processor("seg2vid", device=device, **options, **method_options)(clip)
            fps = frames / (time.perf_counter() - started)
            row = scores(outputs, real, labels) | {"fps": fps}
            if name == "seg2vid (style 0)":
                style0 = outputs
            if style0 is not None and name.startswith("seg2vid (style") and outputs is not style0:
                row["style_change"] = float(np.abs(outputs.astype(np.float64) - style0).mean())
            rows[name].append(row)
        rows["real frames (reference)"].append(scores(real, real, labels))
        click.echo(f"{photo_name}: done", err=True)
    click.echo(f"\nseg2vid on {', '.join(evaluation_photos())} ({width}x{height}, {frames} frames each, moving labels; "
               "means over frames and photos)\n")
    click.echo("| method | PSNR dB | SSIM | label accuracy | warping error ×1000 | mean abs Δ vs style 0 | fps |")
    click.echo("|---|---|---|---|---|---|---|")
    for name, results in rows.items():
        mean = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        quality = "–" if name.startswith("real") else f"{mean['psnr']:.2f}"
        similarity = "–" if name.startswith("real") else f"{mean['ssim']:.3f}"
        change = f"{mean['style_change']:.1f}" if "style_change" in mean else "–"
        fps = f"{mean['fps']:.1f}" if "fps" in mean else "–"
        click.echo(f"| {name} | {quality} | {similarity} | {mean['accuracy']:.1%} | {mean['warping']:.3f} | {change} | {fps} |")
