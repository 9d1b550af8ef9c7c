"""Follow an object's box through a clip: the object's pixels carried by optical flow, or OpenCV's MIL tracker.

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


def _largest_parts(mask: np.ndarray) -> np.ndarray:
    """`mask` `(H, W)` bool without the specks: connected parts under a tenth of the largest one are dropped."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= 0.1 * stats[1:, cv2.CC_STAT_AREA].max()
    return keep[labels]


def mask_box(mask: np.ndarray) -> Box:
    """Bounding box of the True pixels of a non-empty `(H, W)` bool mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def object_in_box(frame: np.ndarray, box: Box) -> np.ndarray:
    """`(H, W)` bool: the object inside `box` of `frame` `(H, W, 3)`, split from the background by GrabCut
    (colour models of the box and its surroundings); the whole box if GrabCut keeps too little of it."""
    import cv2

    height, width = frame.shape[:2]
    x, y, w, h = box
    whole = np.zeros((height, width), bool)
    whole[y:y + h, x:x + w] = True
    labels = np.where(whole, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        cv2.grabCut(np.ascontiguousarray(frame[..., ::-1]), labels, None, background, foreground, 4,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # one colour everywhere: nothing to model
        return whole
    found = _largest_parts((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return found if found.sum() >= 0.1 * w * h else whole


class FlowBoxTracker:
    """The object's pixels carried along dense optical flow (DIS); the box is their bounding box.

    The first frame's object is split from its box by GrabCut. Each new frame takes the previous mask
    along the flow. Where the object moves differently from the camera (an affine motion fitted, RANSAC,
    to the flow away from the object), the mask is re-cut by motion: near the carried mask, pixels that do
    not move like the background. The object is lost when its mask vanishes; the box then stays.
    """

    def __init__(self, frame: np.ndarray, box: Box, own_motion: float = 1.5) -> None:
        import cv2

        self.gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        height, width = self.gray.shape
        self.mask = object_in_box(frame, box)
        self.box = mask_box(self.mask)
        self.own_motion = own_motion  # px per frame of object motion (relative to the camera) to re-cut by
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32)

    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        source = self.grid + self.flow.calc(gray, self.gray, None)  # where each pixel was in the previous frame
        self.gray = gray
        carried = cv2.remap(self.mask.astype(np.float32), source[..., 0], source[..., 1], cv2.INTER_LINEAR) > 0.5
        if carried.sum() < 20:
            return self.box, False
        reach = max(5, int(0.15 * np.sqrt(carried.sum())))
        near = cv2.dilate(carried.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        ys, xs = np.nonzero(~near[::8, ::8])
        if len(xs) > 50:
            points = np.stack([xs * 8, ys * 8], 1).astype(np.float32)
            camera, _ = cv2.estimateAffine2D(points, source[ys * 8, xs * 8], ransacReprojThreshold=1.0)
            if camera is not None:
                residual = np.linalg.norm(source - (self.grid @ camera[:, :2].T + camera[:, 2]), axis=-1)
                motion = float(np.median(residual[carried]))
                if motion > self.own_motion:
                    moving = near & (residual > 0.5 * motion)
                    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
                    if 0.5 * carried.sum() < moving.sum() < 2 * carried.sum():
                        carried = moving
        self.mask = _largest_parts(carried)
        self.box = mask_box(self.mask)
        return self.box, True


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
