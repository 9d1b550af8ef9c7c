"""Synthetic test clips from still photographs: camera motion, for tests and benchmarks."""

from __future__ import annotations

import numpy as np


def camera_path(photo: np.ndarray, width: int, height: int, frames: int, pan: float = 0.12,
                zoom: float = 0.15, seed: int | None = None) -> np.ndarray:
    """`(frames, height, width, 3)` uint8 views of `photo` `(H, W, 3)` along a smooth pan and zoom.

    With `seed`, the pan direction and phase are drawn at random (for varied training/eval clips).
    """
    import cv2

    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi) if seed is not None else 0.0
    ph, pw = photo.shape[:2]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        scale = max(width / pw, height / ph) * 1.25 * (1.0 + zoom * s)
        cx = pw / 2 + (s - 0.5) * pan * pw * np.cos(angle)
        cy = ph / 2 + (s - 0.5) * pan * ph * np.sin(angle) + np.sin(s * np.pi) * 0.04 * ph
        matrix = np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
        out[t] = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def evaluation_photos() -> dict[str, np.ndarray]:
    """Colour photographs shipped with scikit-image, none of them in the training folders."""
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket")
    return {name: getattr(data, name)() for name in names}
