"""Image and video quality metrics: PSNR, SSIM (Y channel or RGB), and flow-based warping error."""

from __future__ import annotations

import functools

import numpy as np


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """`(..., 3)` uint8 RGB → BT.601 luma Y in [16, 235] as float64 (the SR papers' convention)."""
    rgb = rgb.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 255.0) -> float:
    """PSNR in dB between arrays of equal shape, over `mask` (broadcastable bool) when given."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        mask = np.broadcast_to(mask, diff.shape)
        diff = diff[mask]
    mse = float(diff.mean()) if diff.size else 0.0
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 255.0) -> float:
    """Mean SSIM (Gaussian window σ=1.5) of 2-D images or `(H, W, C)` images (averaged over channels)."""
    import cv2

    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], mask, peak) for c in range(a.shape[2])]))
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index[mask].mean() if mask is not None else index.mean())


def _flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Dense DIS optical flow from `src` to `dst` (uint8 RGB), `(H, W, 2)`."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(cv2.cvtColor(src, cv2.COLOR_RGB2GRAY), cv2.cvtColor(dst, cv2.COLOR_RGB2GRAY), None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at `x + flow(x)` (backward warping), float32."""
    import cv2

    grid = pixel_coordinates(*flow.shape[:2]) + flow
    return cv2.remap(image.astype(np.float32, copy=False), grid, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=8)
def pixel_coordinates(height: int, width: int) -> np.ndarray:
    """`(height, width, 2)` float32 (x, y) of every pixel (read-only: shared between calls)."""
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32)
    grid.flags.writeable = False
    return grid


def flow_round_trip(forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where `forward` flow `(H, W, 2)` lands `(H, W, 2)`, whether that point is inside the frame `(H, W)` bool, and
    whether the round trip through `backward` returns to within 0.01 of the squared motion + 0.5 px² `(H, W)` bool
    (Sundaram et al. 2010; the occlusion check of Lai et al. 2018)."""
    height, width = forward.shape[:2]
    where = pixel_coordinates(height, width) + forward
    inside = (where[..., 0] >= 0) & (where[..., 0] <= width - 1) & (where[..., 1] >= 0) & (where[..., 1] <= height - 1)
    back = warp(backward, forward)
    round_trip = _squared_length(forward + back)
    consistent = round_trip <= 0.01 * (_squared_length(forward) + _squared_length(back)) + 0.5
    return where, inside, consistent


def _squared_length(vectors: np.ndarray) -> np.ndarray:
    """`(H, W)` squared length of `(H, W, 2)` vectors (a sum over the short last axis is slow in NumPy)."""
    return vectors[..., 0] ** 2 + vectors[..., 1] ** 2


def warping_error(outputs: np.ndarray, reference: np.ndarray) -> float:
    """Temporal warping error (Lai et al. 2018) of `(T, H, W, 3)` uint8 `outputs`.

    Flow is computed on `reference` (input or ground truth); output t is warped onto t-1 and the mean
    squared difference (in [0, 1] units, ×1000) is taken over pixels that pass the forward-backward
    occlusion check. Lower is steadier.
    """
    errors = []
    for t in range(1, len(outputs)):
        forward = _flow(reference[t - 1], reference[t])  # t-1 → t
        backward = _flow(reference[t], reference[t - 1])
        _, _, valid = flow_round_trip(forward, backward)
        warped = warp(outputs[t], forward) / 255.0
        diff = np.sum((warped - outputs[t - 1] / 255.0) ** 2, -1)
        if valid.any():
            errors.append(float(diff[valid].mean()))
    return 1000.0 * float(np.mean(errors)) if errors else 0.0
