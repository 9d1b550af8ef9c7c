"""Follow an object's box through a clip: flow-based box propagation, or OpenCV's MIL tracker.

Boxes are `(x, y, w, h)` in pixels; frames `(H, W, 3)` uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from vidgen.errors import VidgenError

Box = tuple[int, int, int, int]


class BoxTracker(Protocol):
    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        """The object's box in the next frame, and whether the tracker still holds it."""


class FlowBoxTracker:
    """Box propagation by sparse optical flow (pyramidal Lucas-Kanade), checked forward and backward.

    Corners inside the box are tracked to the next frame and back; points that do not come back to where
    they started (the occluded, the ambiguous) are dropped. The box moves by the median motion of the rest
    and scales by the median change of their pairwise distances. With fewer than `min_points` reliable
    points the object counts as lost and the box stays where it was.
    """

    def __init__(self, frame: np.ndarray, box: Box, min_points: int = 6, max_error: float = 2.0) -> None:
        import cv2

        self.gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        self.box = np.array(box, np.float64)
        self.min_points, self.max_error = min_points, max_error

    def _points(self) -> np.ndarray:
        """`(N, 1, 2)` float32 points to track: corners inside the box, or a grid where it has none."""
        import cv2

        x, y, w, h = self.box
        height, width = self.gray.shape
        x0, y0 = int(max(x, 0)), int(max(y, 0))
        x1, y1 = int(min(x + w, width)), int(min(y + h, height))
        region = np.zeros_like(self.gray)
        region[y0:y1, x0:x1] = 255
        corners = cv2.goodFeaturesToTrack(self.gray, 150, 0.01, max(2.0, min(w, h) / 20), mask=region)
        if corners is not None and len(corners) >= 2 * self.min_points:
            return corners.astype(np.float32)
        gx, gy = np.meshgrid(np.linspace(x0, x1 - 1, 10), np.linspace(y0, y1 - 1, 10))
        return np.stack([gx.ravel(), gy.ravel()], 1)[:, None].astype(np.float32)

    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        start = self._points()
        params = dict(winSize=(15, 15), maxLevel=3,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        moved, ok_forward, _ = cv2.calcOpticalFlowPyrLK(self.gray, gray, start, None, **params)
        back, ok_backward, _ = cv2.calcOpticalFlowPyrLK(gray, self.gray, moved, None, **params)
        self.gray = gray
        error = np.linalg.norm((back - start)[:, 0], axis=1)
        good = (ok_forward[:, 0] == 1) & (ok_backward[:, 0] == 1) & (error < self.max_error)
        if good.sum() >= self.min_points:
            good &= error <= np.median(error[good])
        if good.sum() < self.min_points:
            return self.current(), False
        p0, p1 = start[good, 0].astype(np.float64), moved[good, 0].astype(np.float64)
        shift = np.median(p1 - p0, axis=0)
        i, j = np.triu_indices(len(p0), 1)
        before = np.linalg.norm(p0[i] - p0[j], axis=1)
        after = np.linalg.norm(p1[i] - p1[j], axis=1)
        usable = before > 2
        scale = float(np.clip(np.median(after[usable] / before[usable]), 0.8, 1.25)) if usable.any() else 1.0
        x, y, w, h = self.box
        cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
        w, h = w * scale, h * scale
        self.box = np.array([cx - w / 2, cy - h / 2, w, h])
        height, width = gray.shape
        inside = cx + w / 2 > 0 and cy + h / 2 > 0 and cx - w / 2 < width and cy - h / 2 < height
        return self.current(), inside

    def current(self) -> Box:
        x, y, w, h = self.box
        return round(x), round(y), max(1, round(w)), max(1, round(h))


class OpenCVBoxTracker:
    """OpenCV's MIL tracker (the one the headless build ships without extra model files)."""

    def __init__(self, frame: np.ndarray, box: Box) -> None:
        import cv2

        self.tracker = cv2.TrackerMIL_create()
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(v) for v in box))
        self.box = box

    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        import cv2

        ok, box = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if ok:
            self.box = tuple(int(v) for v in box)  # type: ignore[assignment]
        return self.box, bool(ok)


TRACKERS = {"flow": FlowBoxTracker, "mil": OpenCVBoxTracker}


@dataclass
class TrackStep:
    """The box of one frame and whether the tracker held the object there."""

    box: Box
    held: bool


def check_box(box: Box, width: int, height: int) -> Box:
    """`box` clipped to the frame; a one-line error when it lies outside or is empty."""
    x, y, w, h = box
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if w <= 0 or h <= 0 or x1 - x0 < 2 or y1 - y0 < 2:
        raise VidgenError(f"box {x},{y},{w},{h} lies outside the {width}x{height} frame")
    return x0, y0, x1 - x0, y1 - y0


def track(frames: Iterable[np.ndarray], box: Box, method: str = "flow") -> Iterator[TrackStep]:
    """Follow `box` (in the first of `frames`) through the rest; one `TrackStep` per frame, the first included."""
    iterator = iter(frames)
    first = next(iterator)
    tracker: BoxTracker = TRACKERS[method](first, box)
    yield TrackStep(box, True)
    for frame in iterator:
        found, held = tracker.update(frame)
        yield TrackStep(found, held)


def box_from_point(frame: np.ndarray, x: int, y: int) -> Box:
    """A box around the object under pixel (x, y) of `frame` `(H, W, 3)`: the extent of the similarly
    coloured area connected to it (flood fill on a smoothed copy), kept between 1/16 and 1/2 of the
    frame's short side."""
    import cv2

    height, width = frame.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise VidgenError(f"point {x},{y} lies outside the {width}x{height} frame")
    smooth = cv2.bilateralFilter(frame, 9, 40, 9)
    fill = np.zeros((height + 2, width + 2), np.uint8)
    cv2.floodFill(smooth, fill, (x, y), (0, 0, 0), (18, 18, 18), (18, 18, 18),
                  4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
    ys, xs = np.nonzero(fill[1:-1, 1:-1])
    short = min(width, height)
    low, high = max(4, short // 16), short // 2
    w = int(np.clip(xs.max() - xs.min() + 1, low, high))
    h = int(np.clip(ys.max() - ys.min() + 1, low, high))
    cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2
    cx, cy = (cx, cy) if abs(cx - x) < w / 2 and abs(cy - y) < h / 2 else (x, y)
    return check_box((round(cx - w / 2), round(cy - h / 2), w, h), width, height)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0
