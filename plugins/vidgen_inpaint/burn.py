"""Overlays burnt onto frames with known boxes (the ground truth of the overlay benchmark and tests), and a
textured scene panning under them.

Each function draws onto `(T, H, W, 3)` uint8 frames in place and returns the overlay's box `(x, y, w, h)`:
the bounding box of the pixels it changed in any frame.
Sizes follow the frame so that a case looks alike at 640×360 and at 96×64.
"""

from __future__ import annotations

import numpy as np


def _blend(frames: np.ndarray, x: int, y: int, layer: np.ndarray, alpha: np.ndarray) -> None:
    """Alpha-blend `layer` `(h, w, 3)` with per-pixel opacity `alpha` `(h, w)` onto every frame at (x, y)."""
    h, w = alpha.shape
    region = frames[:, y:y + h, x:x + w].astype(np.float32)
    a = alpha[None, ..., None]
    frames[:, y:y + h, x:x + w] = np.clip(region * (1 - a) + layer[None] * a, 0, 255).round().astype(np.uint8)


def panning_texture(frames: int, width: int, height: int, step: int = 3, seed: int = 0) -> np.ndarray:
    """`(frames, height, width, 3)` uint8: smoothed colour noise moving `step` px right and `step / 2` down per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height + step * frames, width + step * frames, 3), dtype=np.uint8)
    texture = cv2.normalize(cv2.GaussianBlur(noise, (5, 5), 1.5), None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([texture[t * step // 2:t * step // 2 + height, t * step:t * step + width] for t in range(frames)])


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box `(x, y, w, h)` of the pixels that differ between two `(T, H, W, 3)` clips."""
    ys, xs = np.nonzero((before != after).any(axis=(0, 3)))
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def burn_score_panel(frames: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """A translucent broadcast score panel: a title, two names, and scores that change every few frames."""
    import cv2

    before = frames.copy()
    height = frames.shape[1]
    scale = height / 360
    w, h = round(150 * scale), round(56 * scale)
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.36 * scale, 1
    rows = [("FREE SKATE  FINAL", None), ("1 KOWALSKA", 0), ("2 NAKAMURA", 1)]
    for t in range(len(frames)):
        text = np.zeros((h, w), np.uint8)
        for row, (label, player) in enumerate(rows):
            baseline = round((14 + 17 * row) * scale)
            cv2.putText(text, label, (round(4 * scale), baseline), font, size, 255, thick, cv2.LINE_AA)
            if player is not None:
                score = f"{180.5 + 3.7 * (t // 7) + 11.3 * player:.2f}"
                cv2.putText(text, score, (round(100 * scale), baseline), font, size, 255, thick, cv2.LINE_AA)
        ink = text[..., None] / 255.0
        layer = np.array((20, 30, 90), np.float32) * (1 - ink) + 255 * ink
        alpha = np.maximum(0.65, ink[..., 0])
        _blend(frames[t:t + 1], x, y, layer, alpha)
    return changed_box(before, frames)


def burn_logo(frames: np.ndarray, x: int, y: int, opacity: float = 0.4) -> tuple[int, int, int, int]:
    """A semi-transparent white watermark: a ring and two letters, `opacity` at full strength."""
    import cv2

    before = frames.copy()
    size = round(frames.shape[1] * 0.16)
    shape = np.zeros((size, size), np.uint8)
    centre = size // 2
    cv2.circle(shape, (centre, centre), round(size * 0.45), 255, max(2, size // 12), cv2.LINE_AA)
    cv2.putText(shape, "TV", (round(size * 0.2), round(size * 0.66)), cv2.FONT_HERSHEY_SIMPLEX, size / 50,
                255, max(1, size // 20), cv2.LINE_AA)
    _blend(frames, x, y, np.full((size, size, 3), 255, np.float32), opacity * shape / 255.0)
    return changed_box(before, frames)


def burn_ticker(frames: np.ndarray, speed: float = 4.0) -> tuple[int, int, int, int]:
    """A dark bar across the bottom with text scrolling right to left at `speed` px per frame."""
    import cv2

    before = frames.copy()
    height, width = frames.shape[1:3]
    h = round(height * 0.08)
    y = height - h - round(height * 0.03)
    message = "MARKETS CLOSE HIGHER  +++  WEATHER: RAIN LATER IN THE NORTH  +++  SCORES AT THE TOP OF THE HOUR  +++  "
    size = h / 36
    (text_w, _), _ = cv2.getTextSize(message, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
    strip = np.zeros((h, text_w + width), np.uint8)
    cv2.putText(strip, message, (0, round(h * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, size, 255, 1, cv2.LINE_AA)
    strip[:, text_w:] = strip[:, :width]
    for t in range(len(frames)):
        offset = round(t * speed) % text_w
        text = strip[:, offset:offset + width] / 255.0
        layer = np.full((h, width, 3), (15, 15, 40), np.float32) * (1 - text[..., None]) + 240 * text[..., None]
        _blend(frames[t:t + 1], 0, y, layer, np.full((h, width), 0.9, np.float32))
    return changed_box(before, frames)


def burn_timestamp(frames: np.ndarray, x: int, y: int, fps: float = 25.0) -> tuple[int, int, int, int]:
    """A camera-style date and running clock in white with a dark outline (no panel), seconds ticking."""
    import cv2

    before = frames.copy()
    height = frames.shape[1]
    size = height / 480
    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, h), _ = cv2.getTextSize("2026-11-30  12:34:56", font, size, 2)
    pad = max(2, round(height * 0.01))
    for t in range(len(frames)):
        seconds = 56 + int(t / fps)
        stamp = f"2026-11-30  12:{34 + seconds // 60:02d}:{seconds % 60:02d}"
        origin = (x + pad, y + pad + h)
        cv2.putText(frames[t], stamp, origin, font, size, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(frames[t], stamp, origin, font, size, (255, 255, 255), 2, cv2.LINE_AA)
    return changed_box(before, frames)

