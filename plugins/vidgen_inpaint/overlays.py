"""Static overlays (logos, score panels, tickers, timestamps, watermarks) found whole in a moving scene.

Two kinds of evidence that something is painted on top of the picture rather than part of it:

- **static edges**: the mean of the image gradient over the frames. A moving scene's gradients point every
  which way and cancel; an overlay's add up, even when the overlay is semi-transparent (its gradient is
  the overlay's own, scaled by its opacity, plus the scene's). Glyphs that change (the digits of a clock)
  are covered by closing the gaps to the glyphs that stay.
- **steady areas**: pixels that keep one value in most frames (an opaque panel, a ticker's bar while text
  scrolls through it). Flat parts of the scene (sky, walls) do too, so a steady area counts only when its
  outline is mostly a static edge or the frame border: the panel's edge is painted, the sky's is not.

The evidence is closed (gaps between glyphs), split into regions, and each region is marked by its box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidgen.errors import VidgenError

MIN_FRAMES = 12  # with fewer, scene gradients do not cancel out reliably
MIN_SCENE_MOTION = 1.0  # mean absolute change (grey levels) between sampled frames below which nothing can be told apart


@dataclass(frozen=True)
class Overlay:
    """One region found: its box `(x, y, w, h)` and the share of sampled frames it was present in."""

    box: tuple[int, int, int, int]
    presence: float


@dataclass(frozen=True)
class OverlaySettings:
    """Thresholds of `find_overlays` (grey levels on 0..255; gradients per pixel)."""

    coherence: float = 0.6  # |mean gradient| / mean |gradient| above which an edge counts as static
    edge: float = 6.0  # smallest static edge strength
    steady_tolerance: float = 4.0  # a steady pixel is within this of its median ...
    steady_share: float = 0.7  # ... in at least this share of frames
    outline_share: float = 0.5  # share of a steady area's outline that must be static edge or frame border
    gap: float = 0.02  # vertical gaps between glyphs closed up to this share of the frame's short side (twice across)
    min_area: float = 0.0004  # regions smaller than this share of the frame (and than 64 px) are dropped ...
    min_presence: float = 0.7  # ... and so are those present in fewer sampled frames than this share
    max_static: float = 0.25  # more of the picture than this staying put: a fixed camera, nothing to tell apart


def _gray(frames: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)


def scene_motion(frames: np.ndarray) -> float:
    """Mean absolute grey-level change between consecutive `(T, H, W, 3)` uint8 frames."""
    gray = _gray(frames)
    return float(np.abs(np.diff(gray, axis=0)).mean())


def static_edges(gray: np.ndarray, settings: OverlaySettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static edges of `(T, H, W)` grey frames: `(H, W)` bool, and the per-frame gradients `(T, H, W)` x and y.

    An edge is static where the mean gradient is strong and long compared with the mean gradient length
    (a moving scene's gradients point every which way and cancel; an overlay's add up).
    """
    import cv2

    gx = np.stack([cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) for g in gray]) / 8
    gy = np.stack([cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) for g in gray]) / 8
    strength = np.hypot(gx.mean(0), gy.mean(0))
    coherent = strength > settings.coherence * np.hypot(gx, gy).mean(0)
    return (strength > settings.edge) & coherent, gx, gy


def steady_outlined_areas(gray: np.ndarray, edges: np.ndarray, settings: OverlaySettings) -> np.ndarray:
    """`(H, W)` bool: steady areas of `(T, H, W)` grey frames whose outline is mostly static edge or frame border."""
    import cv2

    height, width = edges.shape
    median = np.median(gray, 0)
    steady = (np.abs(gray - median) <= settings.steady_tolerance).mean(0) >= settings.steady_share
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(steady.astype(np.uint8), connectivity=4)
    min_pixels = settings.min_area * height * width
    touching = set(np.unique(labels[near_edge & steady]).tolist()) - {0}
    accepted = np.zeros((height, width), bool)
    for label in touching:
        x, y, w, h, area = stats[label]
        if area < min_pixels:
            continue
        x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + w + 1, width), min(y + h + 1, height)
        area_mask = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
        ring = (cv2.dilate(area_mask, np.ones((3, 3), np.uint8)) > 0) & (area_mask == 0)
        on_border = np.zeros_like(ring)
        on_border[:, 0] |= x0 == 0
        on_border[:, -1] |= x1 == width
        on_border[0, :] |= y0 == 0
        on_border[-1, :] |= y1 == height
        touches_border = area_mask.astype(bool) & on_border
        outline = ring.sum() + touches_border.sum()
        painted = (ring & near_edge[y0:y1, x0:x1]).sum() + touches_border.sum()
        if outline and painted / outline >= settings.outline_share:
            accepted[y0:y1, x0:x1] |= area_mask.astype(bool)
    return accepted


def _mergeable(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap_x: int, gap_y: int) -> bool:
    """Whether boxes `(x0, y0, x1, y1)` belong to one overlay: they overlap or lie within `gap_x` / `gap_y`
    pixels of each other, or they are bands of one panel: the same columns (each overlapping 90 % of the wider)
    and no further apart than the thinner is high (a ticker's bar above and below its scrolling text, which is
    never steady and whose edges move)."""
    if a[0] - gap_x <= b[2] and b[0] - gap_x <= a[2] and a[1] - gap_y <= b[3] and b[1] - gap_y <= a[3]:
        return True
    across = min(a[2], b[2]) - max(a[0], b[0])
    apart = max(a[1], b[1]) - min(a[3], b[3])
    return across >= 0.9 * max(a[2] - a[0], b[2] - b[0]) and apart <= min(a[3] - a[1], b[3] - b[1])


def _merge_boxes(boxes: list[tuple[int, int, int, int]], gap_x: int, gap_y: int) -> list[tuple[int, int, int, int]]:
    """Union of boxes `(x0, y0, x1, y1)` that are `_mergeable`, until none are."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if _mergeable(a, b, gap_x, gap_y):
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _presence(gx: np.ndarray, gy: np.ndarray, region: np.ndarray) -> float:
    """Share of frames whose gradient inside `region` `(H, W)` bool agrees with the mean gradient there."""
    if not region.any():
        return 1.0
    fx, fy = gx[:, region], gy[:, region]  # (T, N)
    mx, my = fx.mean(0), fy.mean(0)
    dot = (fx * mx + fy * my).sum(1)
    norm = np.sqrt((fx ** 2 + fy ** 2).sum(1) * (mx ** 2 + my ** 2).sum()) + 1e-6
    return float((dot / norm > 0.5).mean())


def find_overlays(frames: np.ndarray, settings: OverlaySettings = OverlaySettings()) -> list[Overlay]:
    """Static overlays in `(T, H, W, 3)` uint8 frames sampled from a moving scene, largest first.

    Raises `VidgenError` (saying why) when there are too few frames or the scene does not move; returns
    an empty list when the scene moves but nothing stays put.
    """
    import cv2

    if len(frames) < MIN_FRAMES:
        raise VidgenError(f"overlay detection needs at least {MIN_FRAMES} frames, got {len(frames)}")
    motion = scene_motion(frames)
    if motion < MIN_SCENE_MOTION:
        raise VidgenError(f"the scene barely moves (mean change {motion:.2f} grey levels between sampled frames), "
                          "so nothing sets a static overlay apart from the picture")
    gray = _gray(frames)
    height, width = gray.shape[1:]
    edges, gx, gy = static_edges(gray, settings)
    evidence = edges | steady_outlined_areas(gray, edges, settings)
    if evidence.mean() > settings.max_static:
        raise VidgenError(f"{100 * evidence.mean():.0f} % of the picture stays put (a fixed camera?), so overlays "
                          "cannot be told apart from the scene")
    gap = max(3, round(settings.gap * min(height, width)))
    closed = cv2.morphologyEx(evidence.astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (2 * gap, gap)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    min_pixels = max(64.0, settings.min_area * height * width)
    boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:count]]
    overlays = []
    for x0, y0, x1, y1 in _merge_boxes(boxes, 2 * gap, gap):
        if (x1 - x0) * (y1 - y0) < min_pixels or evidence[y0:y1, x0:x1].sum() < min_pixels / 4:
            continue
        region = np.zeros((height, width), bool)
        region[y0:y1, x0:x1] = edges[y0:y1, x0:x1]
        presence = _presence(gx, gy, region)
        if presence >= settings.min_presence:
            overlays.append(Overlay((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), presence))
    return sorted(overlays, key=lambda o: -o.box[2] * o.box[3])


def overlay_mask(overlays: list[Overlay], width: int, height: int) -> np.ndarray:
    """`(H, W)` bool mask, True inside every overlay's box."""
    mask = np.zeros((height, width), bool)
    for overlay in overlays:
        x, y, w, h = overlay.box
        mask[y:y + h, x:x + w] = True
    return mask


def describe(overlays: list[Overlay]) -> str:
    """'WxH at (x,y), present in P % of frames; ...' for a log line."""
    return "; ".join(f"{w}x{h} at ({x},{y}), present in {100 * o.presence:.0f} % of frames"
                     for o in overlays for x, y, w, h in [o.box])
