"""Training samples from real video for the denoiser: noisy clips (Gaussian, Poisson-Gaussian, or noisy and then
H.264-compressed) aligned exactly as the processor aligns them (or left unaligned, for the two-stage network), cut
into crops and kept in a refreshed pool."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from vidgen import VidgenError
from vidgen.sequences import IMAGE_SUFFIXES
from vidgen_denoise.processor import aligned_stack

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts"}


def find_clips(folder: str | Path) -> list[Path]:
    """Video files and folders of frame images under `folder` (recursively; `masks` folders skipped), sorted;
    `folder` itself when it is a video file."""
    folder = Path(folder)
    if folder.is_file() and folder.suffix.lower() in VIDEO_SUFFIXES:
        return [folder]
    if not folder.is_dir():
        raise VidgenError(f"{folder}: not a video file or folder")
    found = []
    for path in sorted([folder, *folder.rglob("*")]):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            found.append(path)
        elif path.is_dir() and "mask" not in path.name and any(
                p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            found.append(path)
    if not found:
        raise VidgenError(f"{folder}: no video files or folders of frames")
    return found


def load_clip(path: Path, height: int, limit: int) -> np.ndarray:
    """The first `limit` frames of a clip as `(T, H, W, 3)` uint8, resized (area) to `height` rows (even
    width), which also softens the compression artefacts of the source."""
    import cv2

    from vidgen.bench import read_frames

    frames = read_frames(path, limit)
    source_height, source_width = frames.shape[1:3]
    height = min(height, source_height) // 2 * 2
    width = round(source_width * height / source_height) // 2 * 2
    return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames])


def through_h264(frames: np.ndarray, crf: int) -> np.ndarray:
    """`(T, H, W, 3)` uint8 (even H and W) encoded with libx264 at `crf` (yuv420p) and decoded again."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, "r", format="h264") as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack(decoded)


def noisy_frames(clean: np.ndarray, rng: np.random.Generator, max_sigma: float, poisson_share: float,
                 h264_share: float, sigma_known_share: float) -> tuple[np.ndarray, float]:
    """Fresh noise in every frame of `clean` `(T, H, W, 3)` uint8 → (noisy uint8, σ/255 given to the network).

    Gaussian σ ∈ [0, `max_sigma`] (0-255 scale) or, for `poisson_share` of the calls, signal-dependent
    Poisson-Gaussian camera noise; then, for `h264_share`, H.264 compression at crf 18-28 (the noise a
    real noisy video file carries). The level is 0 (blind) except for `sigma_known_share` of the plain
    Gaussian cases.
    """
    values = clean.astype(np.float32) / 255
    if rng.random() < poisson_share:
        gain, read = rng.uniform(0.002, 0.03), rng.uniform(0.0, 0.03)
        std, sigma = np.sqrt(gain * values + read ** 2), 0.0
    else:
        sigma = rng.uniform(0, max_sigma / 255)
        std = sigma
    noisy = np.clip(values + std * rng.standard_normal(values.shape, np.float32), 0, 1)
    noisy = (noisy * 255).round().astype(np.uint8)
    if rng.random() < h264_share:
        return through_h264(noisy, int(rng.integers(18, 29))), 0.0
    return noisy, (sigma if rng.random() < sigma_known_share else 0.0)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """`(T, H, W, 3)` uint8 → `(T, 3, H, W)` float in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)


def video_sample(clip: np.ndarray, rng: np.random.Generator, frames: int, reject: float, max_sigma: float = 55.0,
                 poisson_share: float = 0.2, h264_share: float = 0.3, single_share: float = 0.15,
                 sigma_known_share: float = 0.5, length: int = 9,
                 align: bool = True) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One training sample from a real clip `(T, H, W, 3)` uint8, built as the processor sees video:
    (`(frames, 3, H, W)` noisy neighbours, aligned onto the centre by the processor's own DIS flow and
    rejection when `align` (else as they are), `(3, H, W)` clean centre, σ/255 given or 0).

    A run of `length` frames (every frame, or every second one for faster motion) gets fresh noise and
    (sometimes) H.264; `single_share` of the samples repeat the centre frame in every slot (per-frame mode)
    and a tenth repeat the first or last frames as the processor does at the ends of a video.
    """
    stride = 2 if rng.random() < 0.3 and len(clip) >= 2 * length else 1
    span = min(len(clip), (length - 1) * stride + 1)
    start = int(rng.integers(len(clip) - span + 1))
    clean = clip[start:start + span:stride]
    noisy, level = noisy_frames(clean, rng, max_sigma, poisson_share, h264_share, sigma_known_share)
    noisy_t = to_tensor(noisy)
    centre, half, last = len(clean) // 2, frames // 2, len(clean) - 1
    draw = rng.random()
    if draw < single_share:
        chosen = [centre] * frames
    else:
        chosen = [min(max(centre + offset, 0), last) for offset in range(-half, half + 1)]
        if draw < single_share + 0.1:
            cut = int(rng.integers(1, half + 1))
            if rng.random() < 0.5:
                chosen = [max(index, centre - half + cut) for index in chosen]
            else:
                chosen = [min(index, centre + half - cut) for index in chosen]
    stack = aligned_stack(noisy_t, centre, chosen, reject) if align else noisy_t[chosen]
    return stack, to_tensor(clean[centre:centre + 1])[0], level


class VideoCropPool:
    """A pool of `size` training crops `(frames, 3, patch, patch)` uint8 + clean centres + levels from real
    clips, filled with `video_sample`; `refresh` replaces some crops with crops of a new sample (new clip,
    new noise), so the pool keeps changing at a bounded cost per training step. `align`: as `video_sample`'s."""

    def __init__(self, clips: list[np.ndarray], size: int, patch: int, frames: int, reject: float,
                 rng: np.random.Generator, crops_per_sample: int = 8, align: bool = True, **noise: float) -> None:
        self.clips, self.size, self.patch, self.frames, self.reject = clips, size, patch, frames, reject
        self.align = align
        self.rng, self.crops_per_sample, self.noise = rng, crops_per_sample, noise
        self.inputs = torch.empty(size, frames, 3, patch, patch, dtype=torch.uint8)
        self.targets = torch.empty(size, 3, patch, patch, dtype=torch.uint8)
        self.levels = torch.zeros(size)
        for start in range(0, size, crops_per_sample):
            self._fill(np.arange(start, min(start + crops_per_sample, size)))

    def _fill(self, slots: np.ndarray) -> None:
        clip = self.clips[self.rng.integers(len(self.clips))]
        stack, clean, level = video_sample(clip, self.rng, self.frames, self.reject, align=self.align,
                                           **self.noise)
        height, width = clean.shape[-2:]
        for slot in slots:
            y, x = int(self.rng.integers(height - self.patch + 1)), int(self.rng.integers(width - self.patch + 1))
            window = (..., slice(y, y + self.patch), slice(x, x + self.patch))
            self.inputs[slot] = stack[window].mul(255).round().to(torch.uint8)
            self.targets[slot] = clean[window].mul(255).round().to(torch.uint8)
            self.levels[slot] = level

    def refresh(self) -> None:
        """Replace `crops_per_sample` random crops with crops of one new sample."""
        self._fill(self.rng.choice(self.size, self.crops_per_sample, replace=False))

    def batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`count` random crops, randomly flipped / rotated: (`(B, K, 3, P, P)` float, `(B, 3, P, P)`, `(B,)`)."""
        chosen = torch.from_numpy(self.rng.choice(self.size, count, replace=False))
        inputs, targets = self.inputs[chosen].float().div_(255), self.targets[chosen].float().div_(255)
        turns, flip = int(self.rng.integers(4)), bool(self.rng.random() < 0.5)
        if flip:
            inputs, targets = inputs.flip(-1), targets.flip(-1)
        return inputs.rot90(turns, (-2, -1)), targets.rot90(turns, (-2, -1)), self.levels[chosen]
