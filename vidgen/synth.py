"""Synthetic test clips: camera motion over still photographs, and a PyAV writer with optional audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from vidgen.errors import VidgenError


def camera_path(photo: np.ndarray, width: int, height: int, frames: int, pan: float = 0.12,
                zoom: float = 0.15, seed: int | None = None, nearest: bool = False) -> np.ndarray:
    """`(frames, height, width[, 3])` views of `photo` `(H, W[, 3])` along a smooth pan and zoom.

    With `seed`, the pan direction is drawn at random (for varied clips). `nearest=True` resamples
    nearest-neighbour (for class-index label maps: no mixed classes); bicubic otherwise.
    """
    import cv2

    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi) if seed is not None else 0.0
    ph, pw = photo.shape[:2]
    out = np.empty((frames, height, width) + photo.shape[2:], photo.dtype)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        scale = max(width / pw, height / ph) * 1.25 * (1.0 + zoom * s)
        cx = pw / 2 + (s - 0.5) * pan * pw * np.cos(angle)
        cy = ph / 2 + (s - 0.5) * pan * ph * np.sin(angle) + np.sin(s * np.pi) * 0.04 * ph
        matrix = np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
        out[t] = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def evaluation_photos() -> dict[str, np.ndarray]:
    """Colour photographs shipped with scikit-image, none of them in the training folders."""
    try:
        from skimage import data
    except ImportError:
        raise VidgenError("these photographs come with scikit-image: pip install 'vidgen[bench]'") from None

    names = ("astronaut", "coffee", "chelsea", "rocket")
    return {name: getattr(data, name)() for name in names}


def synthetic_photo(height: int = 480, width: int = 720, seed: int = 0) -> np.ndarray:
    """A photo-like `(height, width, 3)` uint8 image made here, without external data: colour noise at
    several scales (smooth areas and fine texture) under hard-edged discs and boxes."""
    import cv2

    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((96, 1.0), (24, 0.5), (6, 0.25), (1, 0.12)):
        coarse = rng.random((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        image += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image = (image - image.min()) / (image.max() - image.min()) * 255
    for _ in range(12):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(width)), int(rng.integers(height))
        size = int(rng.integers(8, max(9, min(width, height) // 6)))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), size, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x, y), (x + 2 * size, y + size), colour, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_clip(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int = 25,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    colour: tuple[int, int, int, int] | None = None,
) -> Path:
    """Encode `(H, W, 3)` uint8 frames (uint16 for >8-bit) into `path`, returning it.

    `audio` adds a 440 Hz AAC mono tone as long as the video; `rotation` a display-matrix tag; `pts` and
    `time_base` explicit (e.g. variable-rate) timestamps; `colour` (primaries, transfer, matrix, range) tags.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.options = options or {}
        sound = None
        samples = 0
        for index, rgb in enumerate(frames):
            if index == 0:
                video.width, video.height, video.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
                if time_base is not None:
                    video.codec_context.time_base = video.time_base = time_base
                if colour is not None:
                    ctx = video.codec_context
                    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = colour
                if rotation:
                    video.set_display_rotation(rotation)
                if audio:
                    sound = container.add_stream("aac", rate=48000)
                    sound.layout = "mono"
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
            if colour is not None:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=colour[2], dst_color_range=colour[3])
            else:
                frame = frame.reformat(format=pix_fmt)
            frame.pts = pts[index] if pts is not None else index
            if time_base is not None:
                frame.time_base = time_base
            container.mux(video.encode(frame))
            while sound is not None and samples < (index + 1) * 48000 // fps:
                t = (samples + np.arange(1024)) / 48000
                chunk = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32),
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, samples, Fraction(1, 48000)
                container.mux(sound.encode(chunk))
                samples += 1024
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path
