"""A randomised "real video" degradation for training `model=real` (the idea of Real-ESRGAN, first order).

Each high-resolution patch is, in order: blurred with a random isotropic or anisotropic Gaussian kernel,
downscaled ×s with a random interpolation (area, bilinear or bicubic), given Gaussian or Poisson noise
(colour or grey), rounded to 8 bits, JPEG-compressed and/or H.264-compressed (libx264, yuv420p) at a
random quality. Every random choice comes from one numpy generator, so a seed fixes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

INTERPOLATIONS = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class RealDegradation:
    """Probabilities and ranges of each step (σ in HR pixels, noise on the 0-255 scale)."""

    blur: float = 0.8
    blur_sigma: tuple[float, float] = (0.2, 2.4)
    anisotropic: float = 0.5
    noise: float = 0.6
    gaussian_sigma: tuple[float, float] = (1.0, 12.0)
    poisson_scale: tuple[float, float] = (0.05, 1.5)  # × sqrt(level): σ ≈ scale·√(255·x) levels
    grey_noise: float = 0.4
    jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (35, 95)
    h264: float = 0.7
    h264_crf: tuple[int, int] = (18, 38)


def gaussian_kernel(rng: np.random.Generator, settings: RealDegradation) -> np.ndarray:
    """A `(k, k)` float32 kernel summing to 1 (k odd, covering ±3σ, at most 21): isotropic, or anisotropic with
    a random angle."""
    low, high = settings.blur_sigma
    sigma_x = rng.uniform(low, high)
    sigma_y = rng.uniform(low, high) if rng.random() < settings.anisotropic else sigma_x
    size = min(21, 2 * int(np.ceil(3 * max(sigma_x, sigma_y))) + 1)
    angle = rng.uniform(0, np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    inverse = np.linalg.inv(rotation @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rotation.T)
    grid = np.arange(size) - size // 2
    points = np.stack(np.meshgrid(grid, grid, indexing="xy"), -1).astype(np.float64)  # (size, size, 2) as (x, y)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", points, inverse, points))
    return (kernel / kernel.sum()).astype(np.float32)


def blur(image: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Convolve `(3, H, W)` with a `(k, k)` kernel per channel (OpenCV, reflected borders)."""
    import cv2

    pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    return torch.from_numpy(cv2.filter2D(pixels, -1, kernel, borderType=cv2.BORDER_REFLECT_101)).permute(2, 0, 1)


def resize_down(image: torch.Tensor, scale: int, mode: str) -> torch.Tensor:
    """`(3, H, W)` → `(3, H/s, W/s)` with `mode` (antialiased for bilinear and bicubic)."""
    size = (image.shape[-2] // scale, image.shape[-1] // scale)
    if mode == "area":
        return F.interpolate(image[None], size=size, mode="area")[0]
    return F.interpolate(image[None], size=size, mode=mode, antialias=True, align_corners=False)[0]


def add_noise(image: torch.Tensor, rng: np.random.Generator, settings: RealDegradation) -> torch.Tensor:
    """Gaussian or Poisson (signal-dependent) noise on `(3, h, w)` in [0, 1], the same in all channels if grey."""
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    grey = rng.random() < settings.grey_noise
    shape = (1, *image.shape[1:]) if grey else image.shape
    unit = torch.randn(shape, generator=generator).to(image)
    if rng.random() < 0.5:
        sigma = rng.uniform(*settings.gaussian_sigma) / 255
    else:  # shot noise: variance proportional to the level
        sigma = rng.uniform(*settings.poisson_scale) * (image.clamp(0, 1) * 255).sqrt() / 255
    return image + unit * sigma


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """`(h, w, 3)` uint8 RGB through JPEG at `quality` (OpenCV, 4:2:0) and back."""
    import cv2

    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def h264(clip: np.ndarray, crf: int, preset: str = "veryfast") -> np.ndarray:
    """`(T, h, w, 3)` uint8 RGB (h, w even) encoded with H.264 (libx264, yuv420p, `crf`, `preset`, one
    thread) and decoded again: the same shape."""
    import av

    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = clip.shape[2], clip.shape[1], "yuv420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"crf": str(crf), "preset": preset, "threads": "1"}
    packets = []
    for index, image in enumerate(clip):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets += codec.encode(frame)
    packets += codec.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    frames = [frame for packet in packets for frame in decoder.decode(packet)] + list(decoder.decode(None))
    return np.stack([frame.to_ndarray(format="rgb24") for frame in frames])


def degrade_real(hr: torch.Tensor, scale: int, rng: np.random.Generator,
                 settings: RealDegradation = RealDegradation()) -> torch.Tensor:
    """`(N, 3, H, W)` float in [0, 1] (H, W multiples of 2·scale) → `(N, 3, H/s, W/s)` float on 8-bit levels."""
    out = []
    for image in hr.float().cpu():
        if rng.random() < settings.blur:
            image = blur(image, gaussian_kernel(rng, settings))
        image = resize_down(image, scale, INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))])
        if rng.random() < settings.noise:
            image = add_noise(image, rng, settings)
        pixels = image.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        if rng.random() < settings.jpeg:
            pixels = jpeg(pixels, int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1)))
        if rng.random() < settings.h264:
            pixels = h264(pixels[None], int(rng.integers(settings.h264_crf[0], settings.h264_crf[1] + 1)))[0]
        out.append(torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div(255))
    return torch.stack(out).to(hr.device)
