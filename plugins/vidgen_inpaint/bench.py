"""`vidgen bench inpaint`: masked-region quality, temporal steadiness and speed of the inpainting schedules."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click
import numpy as np
import torch

from vidgen.metrics import psnr, ssim, warping_error
from vidgen.synth import camera_path, evaluation_photos
from vidgen_inpaint.masks import dilate


@dataclass
class Clip:
    """A benchmark clip: ground truth and corrupted frames `(T, H, W, 3)` uint8, masks `(T, H, W)` bool."""

    name: str
    truth: np.ndarray
    corrupted: np.ndarray
    masks: np.ndarray


def make_clips(frames: int, width: int, height: int, seed: int = 0) -> list[Clip]:
    """Camera-motion clips from photographs no model trained on, with a static box, a moving box and text."""
    import cv2

    photos = evaluation_photos()
    clips = []
    # static box: a logo-like opaque box that stays put while the camera moves
    truth = camera_path(photos["astronaut"], width, height, frames, seed=seed)
    masks = np.zeros((frames, height, width), bool)
    bw, bh = width // 5, height // 5
    masks[:, height // 3:height // 3 + bh, width // 2:width // 2 + bw] = True
    clips.append(("astronaut/static box", truth, masks))
    # moving box: slides across the frame
    truth = camera_path(photos["coffee"], width, height, frames, seed=seed + 1)
    masks = np.zeros((frames, height, width), bool)
    for t in range(frames):
        x = int(width * 0.15 + t * (width * 0.5) / max(frames - 1, 1))
        masks[t, height // 2 - bh // 2:height // 2 + bh // 2, x:x + bw] = True
    clips.append(("coffee/moving box", truth, masks))
    # burnt-in text: a timestamp in the lower left
    truth = camera_path(photos["chelsea"], width, height, frames, seed=seed + 2)
    text = np.zeros((height, width), np.uint8)
    cv2.putText(text, "12:34:56", (4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, height / 240, 255, max(1, height // 60))
    masks = np.repeat((text > 0)[None], frames, 0)
    clips.append(("chelsea/text overlay", truth, masks))
    out = []
    for name, truth, masks in clips:
        corrupted = truth.copy()
        corrupted[masks] = (235, 235, 235) if "text" in name else (30, 140, 220)
        out.append(Clip(name, truth, corrupted, masks))
    return out


def score(clip: Clip, result: np.ndarray, dilation: int, frames: int) -> dict[str, float]:
    """Masked PSNR / SSIM against the truth over the (dilated) masks, and warping error, on the first `frames`."""
    truth, result = clip.truth[:frames], result[:frames]
    region = np.stack([dilate(m, dilation) for m in clip.masks[:frames]])
    return {
        "psnr": psnr(result, truth, region[..., None]),
        "ssim": float(np.mean([ssim(r, t, m) for r, t, m in zip(result, truth, region)])),
        "warp": warping_error(result, truth),
    }


def first_frames(clip: Clip, frames: int) -> Clip:
    return Clip(clip.name, clip.truth[:frames], clip.corrupted[:frames], clip.masks[:frames])


def telea(clip: Clip, dilation: int) -> np.ndarray:
    """OpenCV's Telea inpainting, frame by frame, on the same dilated masks."""
    import cv2

    return np.stack([cv2.inpaint(f, dilate(m, dilation).astype(np.uint8), 3, cv2.INPAINT_TELEA)
                     for f, m in zip(clip.corrupted, clip.masks)])


def run_method(clip: Clip, options: dict, device: str) -> tuple[np.ndarray, float, dict]:
    """Inpaint `clip` with the inpaint processor and `options`: (frames, seconds, processor stats)."""
    import vidgen

    ready = vidgen.processor("inpaint", device=device, mask=clip.masks, **options)
    start = time.perf_counter()
    result = ready(clip.corrupted)
    return result, time.perf_counter() - start, vars(ready.processors[0].stats)


@click.command("inpaint")
@click.option("--frames", default=16, show_default=True, help="Frames per clip.")
@click.option("--size", default="128x96", show_default=True, help="Clip size WxH.")
@click.option("--yeh-iterations", default=1000, show_default=True,
              help="Iterations per frame of the per-frame baseline.")
@click.option("--yeh-frames", default=8, show_default=True,
              help="Frames the per-frame baseline runs on (its cost per frame does not depend on the clip length); "
                   "every method is scored on these first frames.")
@click.option("--fit", "fit_steps", default=100, show_default=True,
              help="Steps of fit= measured on the first clip (0: skip).")
@click.option("--dilate", "dilation", default=2, show_default=True)
@click.option("--weights", default=None, help="G/D weights file (default: the shipped prior).")
@click.option("--threads", default=0, show_default=True, help="CPU threads for torch (0: torch's default).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seeds", default="0", show_default=True,
              help="Comma-separated seeds of the latent search; each GAN method runs once per seed and its row "
                   "shows the mean (a single fill's masked PSNR varies by about a dB from seed to seed).")
def bench_command(frames: int, size: str, yeh_iterations: int, yeh_frames: int, fit_steps: int, dilation: int, weights: str | None,
                  threads: int, device: str, seeds: str) -> None:
    """Per-frame Yeh vs schedule=video vs full default vs OpenCV Telea, on the same clips and masks."""
    if threads > 0:
        torch.set_num_threads(threads)
    width, height = (int(v) for v in size.lower().split("x"))
    seed_list = [int(value) for value in seeds.split(",")]
    seed = seed_list[0]
    common = {"dilate": dilation, "weights": weights}
    methods = {
        f"per-frame Yeh ({yeh_iterations} it)": dict(common, schedule="per-frame", propagate=False,
                                                     iterations=yeh_iterations),
        "schedule=video, no propagation": dict(common, schedule="video", propagate=False),
        "default (propagate + video)": dict(common, schedule="video"),
    }
    scored = min(yeh_frames, frames)
    rows = []
    speeds: dict[str, list[float]] = {}
    for clip in make_clips(frames, width, height, seed):
        start = time.perf_counter()
        result = telea(clip, dilation)
        rows.append((clip.name, "OpenCV Telea", score(clip, result, dilation, scored),
                     (time.perf_counter() - start) / frames, None))
        for label, options in methods.items():
            run_on = first_frames(clip, scored) if options["schedule"] == "per-frame" else clip
            runs = []
            for run_seed in seed_list:
                result, seconds, stats = run_method(run_on, dict(options, seed=run_seed), device)
                runs.append((score(clip, result, dilation, scored), seconds / len(run_on.truth), stats))
                click.echo(f"  {clip.name}: {label}, seed {run_seed} done in {seconds:.1f} s", err=True)
            per_frame = float(np.mean([r[1] for r in runs]))
            mean_scores = {key: float(np.mean([r[0][key] for r in runs])) for key in runs[0][0]}
            mean_scores["per_seed"] = [r[0]["psnr"] for r in runs]
            steps = {"search_steps": round(float(np.mean([r[2]["search_steps"] for r in runs])))}
            rows.append((clip.name, label, mean_scores, per_frame, steps))
            speeds.setdefault(label, []).append(per_frame)
        if clip.name.startswith("astronaut"):  # what the blend and the video fine-tuning buy, on one clip
            extras = {"default, blend=none": dict(common, seed=seed, blend="none")}
            if fit_steps:
                extras[f"default + fit={fit_steps}"] = dict(common, seed=seed, fit=fit_steps)
            for label, options in extras.items():
                result, seconds, stats = run_method(clip, options, device)
                rows.append((clip.name, label, score(clip, result, dilation, scored), seconds / frames, stats))
    click.echo(f"clips: {frames} frames at {width}x{height}, camera motion (per-frame Yeh runs on the first "
               f"{scored}; all methods are scored on those); masks dilated by {dilation} px; "
               f"torch threads {torch.get_num_threads()}, device {device}; GAN rows: mean over seeds {seeds} "
               f"(the extra astronaut rows: seed {seed})")
    click.echo("")
    click.echo("| clip | method | masked PSNR (dB) | per seed | masked SSIM | warping error (x1e-3) | s/frame | search steps |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for name, label, scores, per_frame, stats in rows:
        steps = "" if stats is None else str(stats["search_steps"])
        per_seed = " / ".join(f"{value:.2f}" for value in scores.get("per_seed", []))
        click.echo(f"| {name} | {label} | {scores['psnr']:.2f} | {per_seed} | {scores['ssim']:.3f} | {scores['warp']:.2f} | "
                   f"{per_frame:.3f} | {steps} |")
    baseline = next(label for label in methods if label.startswith("per-frame"))
    video = "schedule=video, no propagation"
    ratio = np.mean(speeds[baseline]) / np.mean(speeds[video])
    click.echo("")
    click.echo(f"speed-up of schedule=video over per-frame Yeh (mean s/frame over clips): {ratio:.0f}x")
