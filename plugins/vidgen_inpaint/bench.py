"""`vidgen bench inpaint`: masked-region quality, temporal steadiness and speed of the inpainting schedules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from vidgen.bench import (SPEED_HEADER, BenchOptions, FrameSize, NumberList, bench_options, contact_sheet,
                          count_flops, masks_from_clip, print_table, read_frames, read_masks, sheet_frames, timed)
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
        "full": psnr(result, truth),
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


def footage_clip(path: str, masks_from: str, frames: int, width: int, height: int, dilation: int) -> Clip:
    """Real footage `path` (video or frame folder; first `frames`, resized to `width` × `height`) under the
    moving-object masks of another clip (`masks_from`, a folder of per-frame masks), pasted and dilated by
    `dilation` px: the masks-from-another-clip protocol, so the truth under the masks is known."""
    import cv2

    truth = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                      for frame in read_frames(path, frames)])
    masks = masks_from_clip(read_masks(masks_from), len(truth), height, width, dilation)
    corrupted = truth.copy()
    corrupted[masks] = (30, 140, 220)
    return Clip(f"{Path(path).name} / masks of {Path(masks_from).name}", truth, corrupted, masks)


def _entries(directory: str) -> list[Path]:
    """The clips of a `--clips` folder: video files and folders of frames, sorted by name."""
    from vidgen.sequences import IMAGE_SUFFIXES

    entries = [path for path in sorted(Path(directory).iterdir()) if path.is_file() or any(
        child.suffix.lower() in IMAGE_SUFFIXES for child in path.iterdir())]
    if not entries:
        raise click.UsageError(f"{directory}: no video files or folders of frames")
    return entries


def folder_clips(directory: str, frames: int, width: int, height: int, dilation: int) -> list[Clip]:
    """Every clip of `directory` (resized to `width` × `height`, first `frames`) twice: under the moving-object
    masks of the next clip that has them (a `masks/` folder of per-frame masks beside its frames; dilated by
    `dilation` px), and under a static box of a fifth of the frame's width and height (a logo)."""
    import cv2

    entries = _entries(directory)
    with_masks = [path for path in entries if (path / "masks").is_dir()]
    box = np.zeros((frames, height, width), bool)
    box[:, int(height * 0.35):int(height * 0.35) + height // 5, int(width * 0.55):int(width * 0.55) + width // 5] = True
    clips = []
    for path in entries:
        truth = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                          for frame in read_frames(path, frames)])
        others = [other for other in with_masks if other != path]
        cases = []
        if others:
            source = next((other for other in others if other > path), others[0])
            cases.append((f"{path.name} / masks of {source.name}",
                          masks_from_clip(read_masks(source / "masks"), len(truth), height, width, dilation)))
        cases.append((f"{path.name} / static box", box[:len(truth)]))
        for name, masks in cases:
            corrupted = truth.copy()
            corrupted[masks] = (30, 140, 220)
            clips.append(Clip(name, truth, corrupted, masks))
    return clips


def run_method(clip: Clip, options: dict, device: str, precision: str) -> tuple[np.ndarray, float, dict]:
    """Inpaint `clip` with the inpaint processor and `options`: (frames, seconds, processor stats)."""
    import vidgen

    ready = vidgen.processor("inpaint", device=device, precision=precision, mask=clip.masks, **options)
    result, seconds = timed(lambda: ready(clip.corrupted), device)
    return result, seconds, vars(ready.processors[0].stats)


def flops_per_frame(clip: Clip, options: dict, device: str, precision: str) -> float:
    """FLOPs per frame of inpainting `clip` with `options` (a separate, counted run)."""
    import vidgen

    ready = vidgen.processor("inpaint", device=device, precision=precision, mask=clip.masks, **options)
    return count_flops(lambda: ready(clip.corrupted)) / len(clip.truth)


METHODS = {"telea": "OpenCV Telea", "yeh": "per-frame Yeh", "video": "schedule=video, no propagation",
           "default": "default (propagate + video)"}


@click.command("inpaint")
@click.option("--frames", type=click.IntRange(1), default=16, show_default=True, help="Frames per clip.")
@click.option("--size", type=FrameSize(), default="128x96", show_default=True, help="Clip size WIDTHxHEIGHT.")
@click.option("--clip", "footage", type=click.Path(exists=True),
              help="Real footage (a video file or a folder of frames) to bench on instead of the synthetic clips; "
                   "resized to --size. Needs --masks-from.")
@click.option("--masks-from", type=click.Path(exists=True, file_okay=False),
              help="A folder of per-frame moving-object masks of another clip, pasted onto --clip (the protocol of "
                   "video-inpainting papers: the truth under the masks is known).")
@click.option("--clips", "clips_folder", type=click.Path(exists=True, file_okay=False),
              help="A folder of real clips (video files or folders of frames, each optionally with a masks/ "
                   "folder): each is benched under the moving-object masks of the next clip that has masks and "
                   "under a static box; resized to --size.")
@click.option("--methods", type=click.Choice(list(METHODS)), multiple=True,
              help="Methods to run (repeatable; default: all).")
@click.option("--flops/--no-flops", "count", default=True, show_default=True,
              help="Count GFLOP/frame in a separate run of each method on the first clip.")
@click.option("--extras/--no-extras", default=True, show_default=True,
              help="Also run blend=none and fit= on the first clip.")
@click.option("--mask-dilation", type=click.IntRange(0), default=4, show_default=True,
              help="Pixels the pasted --masks-from masks are dilated by.")
@click.option("--yeh-iterations", type=click.IntRange(1), default=1000, show_default=True,
              help="Iterations per frame of the per-frame baseline.")
@click.option("--yeh-frames", type=click.IntRange(1), default=8, show_default=True,
              help="Frames the per-frame baseline runs on (its cost per frame does not depend on the clip length); "
                   "every method is scored on these first frames.")
@click.option("--fit", "fit_steps", type=click.IntRange(0), default=100, show_default=True,
              help="Steps of fit= measured on the first clip (0: skip).")
@click.option("--dilate", "dilation", type=click.IntRange(0), default=2, show_default=True)
@click.option("--weights", default=None, help="G/D weights file (default: the shipped prior).")
@click.option("--seeds", type=NumberList(int), default="0", show_default=True,
              help="Comma-separated seeds of the latent search; each GAN method runs once per seed and its row "
                   "shows the mean (a single fill's masked PSNR varies by about a dB from seed to seed).")
@bench_options(default_device="cpu")
def bench_command(options: BenchOptions, frames: int, size: tuple[int, int], footage: str | None,
                  masks_from: str | None, clips_folder: str | None, methods: tuple[str, ...], count: bool, extras: bool,
                  mask_dilation: int, yeh_iterations: int, yeh_frames: int, fit_steps: int,
                  dilation: int, weights: str | None, seeds: list[int]) -> None:
    """Per-frame Yeh vs schedule=video vs full default vs OpenCV Telea, on the same clips and masks.

    GFLOP/frame (and the shares of the matmul rates) come from a separate counted run of each method on the
    first clip. The contact sheet (--sheet) shows the first clip: masked input, each method, truth."""
    if (footage is None) != (masks_from is None):
        raise click.UsageError("--clip and --masks-from go together")
    width, height = size
    device, precision = str(options.device), options.precision
    seed = seeds[0]
    if footage and clips_folder:
        raise click.UsageError("--clip and --clips exclude each other")
    chosen = set(methods or METHODS)
    common = {"dilate": dilation, "weights": weights}
    all_methods = {
        "yeh": (f"per-frame Yeh ({yeh_iterations} it)", dict(common, schedule="per-frame", propagate=False,
                                                            iterations=yeh_iterations)),
        "video": (METHODS["video"], dict(common, schedule="video", propagate=False)),
        "default": (METHODS["default"], dict(common, schedule="video")),
    }
    methods = dict(value for key, value in all_methods.items() if key in chosen)
    scored = min(yeh_frames, frames) if "yeh" in chosen else frames
    if footage:
        clips = [footage_clip(footage, masks_from, frames, width, height, mask_dilation)]
    elif clips_folder:
        clips = folder_clips(clips_folder, frames, width, height, mask_dilation)
    else:
        clips = make_clips(frames, width, height, seed)
    rows = []
    speeds: dict[str, list[float]] = {}
    flops: dict[tuple[str, str], float] = {}  # (clip, method): counted on the first clip only
    for number, clip in enumerate(clips):
        sheet = {"input": clip.corrupted[:scored]}
        if "telea" in chosen:
            result, seconds = timed(lambda: telea(clip, dilation))
            rows.append((clip.name, METHODS["telea"], score(clip, result, dilation, scored), seconds / len(clip.truth),
                         None))
            sheet[METHODS["telea"]] = result[:scored]
        for label, settings in methods.items():
            run_on = first_frames(clip, scored) if settings["schedule"] == "per-frame" else clip
            runs = []
            for run_seed in seeds:
                result, seconds, stats = run_method(run_on, dict(settings, seed=run_seed), device, precision)
                runs.append((score(clip, result, dilation, scored), seconds / len(run_on.truth), stats))
                click.echo(f"  {clip.name}: {label}, seed {run_seed} done in {seconds:.1f} s", err=True)
                if run_seed == seed:
                    sheet[label] = result[:scored]
            if number == 0 and count:
                flops[(clip.name, label)] = flops_per_frame(run_on, dict(settings, seed=seed), device, precision)
            per_frame = float(np.mean([r[1] for r in runs]))
            mean_scores = {key: float(np.mean([r[0][key] for r in runs])) for key in runs[0][0]}
            mean_scores["per_seed"] = [r[0]["psnr"] for r in runs]
            steps = {"search_steps": round(float(np.mean([r[2]["search_steps"] for r in runs])))}
            rows.append((clip.name, label, mean_scores, per_frame, steps))
            speeds.setdefault(label, []).append(per_frame)
        if number == 0 and extras:  # what the blend and the video fine-tuning buy, on one clip
            extra_rows = {"default, blend=none": dict(common, seed=seed, blend="none")}
            if fit_steps:
                extra_rows[f"default + fit={fit_steps}"] = dict(common, seed=seed, fit=fit_steps)
            for label, settings in extra_rows.items():
                result, seconds, stats = run_method(clip, settings, device, precision)
                rows.append((clip.name, label, score(clip, result, dilation, scored), seconds / frames, stats))
        if number == 0 and options.sheet:
            contact_sheet(options.sheet, {**sheet, "truth": clip.truth[:scored]}, sheet_frames(scored))
    click.echo(f"clips: {frames} frames at {width}x{height} (per-frame Yeh runs on the first {scored}; all methods "
               f"are scored on those); inpainting masks dilated by {dilation} px; torch threads "
               f"{torch.get_num_threads()}, device {device}, {options.dtype}; GAN rows: mean over seeds "
               f"{','.join(map(str, seeds))} (the extra rows of the first clip: seed {seed}); "
               f"{options.rates.describe()}\n")
    table = []
    for name, label, scores, per_frame, stats in rows:
        counted = flops.get((name, label))
        speed = options.speed_cells(counted, 1 / per_frame) if counted else ["-"] * len(SPEED_HEADER)
        table.append([name, label, f"{scores['psnr']:.2f}", f"{scores['full']:.2f}",
                      " / ".join(f"{value:.2f}" for value in scores.get("per_seed", [])), f"{scores['ssim']:.3f}",
                      f"{scores['warp']:.2f}", f"{per_frame:.3f}", "" if stats is None else str(stats["search_steps"]),
                      *speed])
    print_table(["clip", "method", "masked PSNR (dB)", "full-frame PSNR (dB)", "per seed", "masked SSIM", "warping error (x1e-3)", "s/frame",
                 "search steps", *SPEED_HEADER], table)
    if "yeh" not in chosen or "video" not in chosen:
        return
    baseline = next(label for label in methods if label.startswith("per-frame"))
    ratio = np.mean(speeds[baseline]) / np.mean(speeds["schedule=video, no propagation"])
    click.echo(f"\nspeed-up of schedule=video over per-frame Yeh (mean s/frame over clips): {ratio:.0f}x")
