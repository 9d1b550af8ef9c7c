"""`vidgen bench denoise`: fastNlMeans vs per-frame vs temporal RED-Net (and published peers) on camera-motion clips of
unseen photos, or on real clips (`--clips`) with Gaussian and H.264-compressed noise."""

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


def score_rows(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> list[str]:
    """Table cells: mean PSNR and SSIM over all frames, then the mean PSNR of each clip."""
    return [*score_cells(outputs, cleans), *[f"{scores([out], [clean])[0]:.2f}" for out, clean in zip(outputs, cleans)]]


def sheet_label(label: str) -> str:
    """A method's table label shortened for a contact-sheet column title."""
    for long, short in (("cv2.fastNlMeansDenoisingColored", "NLM"), ("vidgen ", ""), (" (frames=1)", ""),
                        (" (frames=5)", ""), (".safetensors", ""), ("peer: ", "")):
        label = label.replace(long, short)
    return label


def network_methods(options: BenchOptions, tile: int, weights: tuple[Path, ...], peers: tuple[Path, ...],
                    peer_precisions: dict[str, str]) -> tuple[dict[str, Callable], list[str]]:
    """(label → denoiser of `(T, H, W, 3)` uint8 clips, the labels of the temporal ones): per-frame and temporal
    vidgen for each weights file (the shipped model when none), each peer per frame at `peer_precisions`."""
    import vidgen

    ready = functools.partial(vidgen.processor, "denoise", device=str(options.device))
    methods, temporal = {}, []
    for path in weights or (None,):
        suffix = f" [{path.name}]" if len(weights) > 1 else ""
        settings = {"tile": tile, **({"weights": path} if path else {})}
        methods[f"vidgen per-frame (frames=1){suffix}"] = ready(frames=1, precision=options.precision, **settings)
        methods[f"vidgen temporal (frames=5){suffix}"] = ready(frames=5, precision=options.precision, **settings)
        temporal.append(f"vidgen temporal (frames=5){suffix}")
    for path in peers:
        for label, precision in peer_precisions.items():
            methods[f"peer: {path.name} ({label})"] = ready(frames=1, tile=tile, weights=path, precision=precision)
    return methods, temporal


def tuned_nlm(noisy: np.ndarray, clean: np.ndarray, sigma: float) -> tuple[float, Callable[[np.ndarray], np.ndarray]]:
    """fastNlMeans with the `h` (of `NLM_H_FACTORS` × σ) that scores best on `noisy` against `clean`."""
    tuning = [scores([nlm_denoiser(sigma * f)(noisy)], [clean])[0] for f in NLM_H_FACTORS]
    best_h = sigma * NLM_H_FACTORS[int(np.argmax(tuning))]
    return best_h, nlm_denoiser(best_h)


def read_bench_clips(paths: tuple[Path, ...], width: int, height: int, frames: int) -> dict[str, np.ndarray]:
    """Real clips `(T, height, ≤ width, 3)` uint8 by name: each clip (a video file or a folder of frames; a folder
    of clips gives each) resized to `height` (area) and centre-cropped to at most `width`."""
    from vidgen_denoise.data import find_clips, load_clip

    clips = {}
    for path in paths:
        for found in find_clips(path):
            clip = load_clip(found, height, frames)
            left = max(0, (clip.shape[2] - width) // 2) // 2 * 2
            clips[found.stem] = np.ascontiguousarray(clip[:, :, left:left + width])
    return clips


def real_clip_tables(options: BenchOptions, clips: dict[str, np.ndarray], sigmas: list[float], crf: int,
                     methods: dict[str, Callable], temporal: list[str], flops: dict[str, float], seed: int) -> None:
    """Print PSNR/SSIM (mean and per clip) and fps of every method on `clips` with fresh Gaussian noise at each σ and
    (crf > 0) σ = 25 then H.264 at `crf`, scored on the frames that have two neighbours each side; then the gain of
    each temporal row over its per-frame row, per clip."""
    from vidgen_denoise.data import through_h264

    cases = [(f"{sigma:g}", sigma, 0) for sigma in sigmas] + ([(f"25 + H.264 crf {crf}", 25.0, crf)] if crf else [])
    names = list(clips)
    rows, gains = [], []
    for case, sigma, case_crf in cases:
        rng = np.random.default_rng(seed + int(sigma) + case_crf)
        noisy = [add_gaussian_noise(clip, sigma, rng) for clip in clips.values()]
        if case_crf:
            noisy = [through_h264(clip, case_crf) if clip.shape[1] % 2 == clip.shape[2] % 2 == 0 else clip
                     for clip in noisy]
        scored = [slice(2, len(clip) - 2) if len(clip) > 4 else slice(None) for clip in noisy]
        cleans = [clip[part] for clip, part in zip(clips.values(), scored)]
        rows.append([case, "noisy input", *score_rows([n[part] for n, part in zip(noisy, scored)], cleans), "",
                     *[""] * len(SPEED_HEADER)])
        best_h, nlm = tuned_nlm(noisy[0][scored[0]][:2], cleans[0][:2], sigma)
        results = {}
        sheet = {"noisy": noisy[0][scored[0]]}
        for label, method in {f"cv2.fastNlMeansDenoisingColored h={best_h:g}": nlm, **methods}.items():
            if label in temporal:
                outputs, seconds = timed(lambda: [method(clip) for clip in noisy], options.device)
                outputs = [out[part] for out, part in zip(outputs, scored)]
                count = sum(len(clip) for clip in noisy)
            else:
                outputs, seconds = timed(lambda: [method(clip[part]) for clip, part in zip(noisy, scored)],
                                         options.device)
                count = sum(len(out) for out in outputs)
            fps = count / seconds
            speed = options.speed_cells(flops[label], fps) if label in flops else ["-"] * len(SPEED_HEADER)
            rows.append([case, label, *score_rows(outputs, cleans), f"{fps:.2f}", *speed])
            results[label] = [scores([out], [clean])[0] for out, clean in zip(outputs, cleans)]
            sheet[label] = outputs[0]
        for label in temporal:
            single = label.replace("temporal (frames=5)", "per-frame (frames=1)")
            gain = np.array(results[label]) - np.array(results[single])
            gains.append([case, label.replace("vidgen temporal (frames=5)", "temporal − per-frame"),
                          f"{gain.mean():+.2f}", f"{gain.min():+.2f}", *[f"{g:+.2f}" for g in gain]])
        if options.sheet and (case == "25" or (case == cases[0][0] and "25" not in [c[0] for c in cases])):
            height, width = cleans[0].shape[1:3]
            crop = (slice(None), slice(height // 4, height // 4 + height // 2), slice(width // 4, width // 4 + width // 2))
            contact_sheet(options.sheet, {sheet_label(name): clip[crop] for name, clip in {**sheet, "clean": cleans[0]}.items()},
                          sheet_frames(len(cleans[0])))
    print_table(["σ", "method", "PSNR (dB)", "SSIM", *[f"{name} (dB)" for name in names], "fps", *SPEED_HEADER], rows)
    click.echo("")
    print_table(["σ", "gain (dB)", "mean", "worst clip", *names], gains)


@click.command("denoise")
@click.option("--size", type=FrameSize(), default="640x360", show_default=True,
              help="Clip frame size WIDTHxHEIGHT (--clips: resized to the height, centre-cropped to the width).")
@click.option("--frames", type=click.IntRange(1), default=8, show_default=True, help="Frames per clip (one clip per photo).")
@click.option("--sigmas", type=NumberList(float), default="15,25,50", show_default=True,
              help="Gaussian noise levels (0-255 scale).")
@click.option("--clips", "clip_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Bench on real clips instead of photos: a video file, a folder of frames, or a folder of such "
                   "clips; repeatable. Scored on the frames with two neighbours each side; peers at --precision only.")
@click.option("--clip-frames", type=click.IntRange(1), default=9, show_default=True, help="Frames read from each clip.")
@click.option("--h264-crf", type=click.IntRange(0, 51), default=23, show_default=True,
              help="--clips: also σ=25 noise H.264-compressed at this CRF and decoded (0 = skip).")
@click.option("--tile", type=int, default=1024, show_default=True, help="denoise.tile for the network runs.")
@click.option("--compare-tile", type=int, default=320, show_default=True,
              help="Also time temporal mode with this tile size on the last σ's clips (0 = skip; photos only).")
@click.option("--weights", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Weights to benchmark (default: the shipped model); repeatable, for old vs new side by side.")
@click.option("--peer", "peers", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A published checkpoint (any spandrel denoiser, e.g. DnCNN) benched per frame alongside, on the "
                   "same clips in the same run, at --precision and at fp32; repeatable.")
@click.option("--seed", type=int, default=0, show_default=True)
@bench_options(default_device="cpu")
def bench_command(options: BenchOptions, size: tuple[int, int], frames: int, sigmas: list[float],
                  clip_paths: tuple[Path, ...], clip_frames: int, h264_crf: int, tile: int, compare_tile: int,
                  weights: tuple[Path, ...], peers: tuple[Path, ...], seed: int) -> None:
    """PSNR/SSIM/fps of fastNlMeans (h tuned per σ), per-frame and temporal denoise (and --peer models).

    Photos (default): scikit-image's astronaut, coffee, chelsea and rocket seen by a panning, zooming camera,
    with fresh Gaussian noise in every frame; h is tuned on the first 3 frames of the first clip; the contact
    sheet (--sheet) shows the first clip at the first σ. Real clips (--clips): fresh Gaussian noise per frame
    at each σ and σ=25 + H.264; h tuned on 2 scored frames of the first clip; PSNR per clip and the gain of
    temporal over per-frame mode per clip; the sheet shows the centre of the first clip at σ=25.
    """
    import torch

    from vidgen.synth import camera_path, evaluation_photos

    width, height = size
    precisions = {str(options.dtype).replace("torch.", ""): options.precision}
    if not clip_paths:
        precisions["float32"] = "fp32"
    methods, temporal = network_methods(options, tile, weights, peers, precisions)
    if clip_paths:
        clips = read_bench_clips(clip_paths, width, height, clip_frames)
        sample = next(iter(clips.values()))
    else:
        photos = evaluation_photos()
        clips = {name: camera_path(photo, width, height, frames, seed=i) for i, (name, photo) in enumerate(photos.items())}
        sample = clips["astronaut"]
    counted = sample[:3]
    for method in methods.values():
        method(sample)  # warm-up on a whole clip: kernel selection, and the heap grown to what a clip needs
    flops = {label: count_flops(lambda: method(counted)) / len(counted) for label, method in methods.items()}
    click.echo(f"clips: {', '.join(clips)}; {len(sample)} frames of {sample.shape[2]}x{sample.shape[1]} (first clip); "
               f"device {options.device}, {options.dtype}; torch threads {torch.get_num_threads()}; "
               f"{options.rates.describe()}\n")
    if clip_paths:
        real_clip_tables(options, clips, sigmas, h264_crf, methods, temporal, flops, seed)
        return
    cleans = list(clips.values())
    rows = []
    for sigma in sigmas:
        rng = np.random.default_rng(seed + int(sigma))
        noisy = [add_gaussian_noise(clip, sigma, rng) for clip in cleans]
        rows.append([f"{sigma:g}", "noisy input", *score_cells(noisy, cleans), "", *[""] * len(SPEED_HEADER)])
        best_h, nlm = tuned_nlm(noisy[0][:3], cleans[0][:3], sigma)
        sheet = {"noisy": noisy[0]}
        for label, method in {f"cv2.fastNlMeansDenoisingColored h={best_h:g}": nlm, **methods}.items():
            outputs, seconds = timed(lambda: [method(clip) for clip in noisy], options.device)
            fps = frames * len(noisy) / seconds
            speed = options.speed_cells(flops[label], fps) if label in flops else ["-"] * len(SPEED_HEADER)
            rows.append([f"{sigma:g}", label, *score_cells(outputs, cleans), f"{fps:.1f}", *speed])
            sheet[label] = outputs[0]
        if options.sheet and sigma == sigmas[0]:
            contact_sheet(options.sheet, {sheet_label(name): clip for name, clip in {**sheet, "clean": cleans[0]}.items()},
                          sheet_frames(frames))
    print_table(["σ", "method", "PSNR (dB)", "SSIM", "fps", *SPEED_HEADER], rows)
    if compare_tile:
        import vidgen

        settings = {"tile": compare_tile, **({"weights": weights[-1]} if weights else {})}
        tiled = vidgen.processor("denoise", device=str(options.device), precision=options.precision, **settings)
        tiled(cleans[0][:3])
        tiled_fps = frames * len(noisy) / timed(lambda: [tiled(clip) for clip in noisy], options.device)[1]
        whole = methods[temporal[-1]]
        whole_fps = frames * len(noisy) / timed(lambda: [whole(clip) for clip in noisy], options.device)[1]
        click.echo(f"\ntemporal mode speed at σ={sigma:g}: tile={tile} {whole_fps:.1f} fps, "
                   f"tile={compare_tile} {tiled_fps:.1f} fps")
