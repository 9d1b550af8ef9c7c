"""Small synthetic clips for tests."""

from __future__ import annotations

import numpy as np

from vidgen.synth import write_clip

__all__ = ["moving_pattern", "write_clip"]


def moving_pattern(frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """`(frames, height, width, 3)` uint8: a smooth colour pattern drifting one pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        for c in range(3):
            out[t, ..., c] = 127 + 100 * np.sin((xx + t) / (7 + 3 * c) + phase[c]) * np.cos(yy / (9 + c))
    return out
