"""Follow an object's box through a clip: the object's pixels carried by optical flow, or OpenCV's MIL tracker.

Boxes are `(x, y, w, h)` in pixels; frames `(H, W, 3)` uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from vidgen.errors import VidgenError

Box = tuple[int, int, int, int]


class BoxTracker(Protocol):
    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        """The object's box in the next frame, and whether the tracker still holds it."""


def largest_parts(mask: np.ndarray) -> np.ndarray:
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
    (colour models of the box and its surroundings); the whole box if GrabCut keeps too little of it.
    Seeds OpenCV's random numbers, so that the cut does not depend on what ran before."""
    import cv2

    height, width = frame.shape[:2]
    x, y, w, h = box
    whole = np.zeros((height, width), bool)
    whole[y:y + h, x:x + w] = True
    labels = np.where(whole, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # GrabCut starts its colour models from random k-means centres: the same cut every run
    try:
        cv2.grabCut(np.ascontiguousarray(frame[..., ::-1]), labels, None, background, foreground, 4,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # one colour everywhere: nothing to model
        return whole
    found = largest_parts((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return found if found.sum() >= 0.1 * w * h else whole


COLOUR_BINS = 16  # levels per RGB channel in the colour histograms


def colour_index(frame: np.ndarray) -> np.ndarray:
    """`(H, W)` int: each pixel's bin in a COLOUR_BINS³ RGB histogram, for `frame` `(H, W, 3)` uint8."""
    levels = (frame // (256 // COLOUR_BINS)).astype(np.int32)
    return (levels[..., 0] * COLOUR_BINS + levels[..., 1]) * COLOUR_BINS + levels[..., 2]


def colour_histogram(index: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Normalised histogram `(COLOUR_BINS³,)` of the colour bins `index` `(H, W)` where `where` is True."""
    counts = np.bincount(index[where], minlength=COLOUR_BINS ** 3).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def box_region(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """`(H, W)` bool: the box `(x, y, w, h)` (float allowed), clipped to the frame."""
    x, y, w, h = box
    region = np.zeros((height, width), bool)
    region[max(0, int(y)):max(0, int(y + h)), max(0, int(x)):max(0, int(x + w))] = True
    return region


def grown(box: Box, share: float) -> tuple[float, float, float, float]:
    """`box` grown by `share` of its width and height on every side."""
    x, y, w, h = box
    return x - share * w, y - share * h, w * (1 + 2 * share), h * (1 + 2 * share)


class FlowBoxTracker:
    """The object's pixels carried along dense optical flow (DIS), kept to the object's colours and motion;
    the box is their bounding box.

    The first frame's object is split from its box by GrabCut; that mask gives a colour histogram of the
    object, a ring around the box one of its surroundings. Each new frame:

    1. the previous mask is carried along the flow;
    2. where the object moves against the camera (a homography fitted, RANSAC, to the flow away from the
       object), it is re-cut by motion: near the carried mask, the pixels that do not move like the camera;
    3. `colour`: pixels whose colour is likelier background than object are dropped, and `refit`: regions
       of clearly object-coloured pixels that touch the mask, within a quarter of its box around it, are
       added back (what the flow left behind on a fast or turning object);
    4. `clamp`: each side of the box may move at most that share of the box's size beyond where the
       object's median flow takes it, so a leak onto the scene cannot run away in one frame.

    The histograms follow the scene (background: 30 % per frame) and, slowly, the object (5 %). Frames are
    tracked at most `work_side` pixels on the short side. The object counts as lost while its mask is under
    a tenth of the first one or less than 30 % of it has the object's colours (the box follows what is left),
    or when the mask has vanished (the box stays where it was).
    """

    def __init__(self, frame: np.ndarray, box: Box, colour: bool = True, refit: bool = True,
                 clamp: float | None = 0.1, own_motion: float = 1.5, work_side: int = 240) -> None:
        import cv2

        self.full_size = frame.shape[1], frame.shape[0]
        self.scale = min(1.0, work_side / min(frame.shape[:2]))
        frame = self.resized(frame)
        self.gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        height, width = self.gray.shape
        self.mask = object_in_box(frame, check_box(tuple(round(v * self.scale) for v in box), width, height))
        self.box = mask_box(self.mask)
        self.first_area = int(self.mask.sum())
        self.colour, self.refit, self.clamp, self.own_motion = colour, refit, clamp, own_motion
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32)
        index = colour_index(frame)
        self.object_colours = colour_histogram(index, self.mask)
        self.scene_colours = self.ring_colours(index)
        self.full_box = box
        self.object_coloured = 1.0  # share of the carried mask in the object's colours

    def resized(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        if self.scale == 1.0:
            return frame
        size = round(frame.shape[1] * self.scale), round(frame.shape[0] * self.scale)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def ring_colours(self, index: np.ndarray) -> np.ndarray:
        """Colour histogram of the ring around the box, half the box's size wide."""
        height, width = index.shape
        ring = box_region(grown(self.box, 0.5), width, height) & ~box_region(self.box, width, height)
        return colour_histogram(index, ring)

    def camera_residual(self, source: np.ndarray, away: np.ndarray) -> np.ndarray | None:
        """`(H, W)` px: how far each pixel's flow is from the camera motion fitted to the pixels `away`."""
        import cv2

        ys, xs = np.nonzero(away[::4, ::4])
        if len(xs) <= 50:
            return None
        points = np.stack([xs * 4, ys * 4], 1).astype(np.float32)
        camera, _ = cv2.findHomography(points, source[ys * 4, xs * 4], cv2.RANSAC, 1.0)
        if camera is None:
            return None
        predicted = cv2.perspectiveTransform(self.grid.reshape(-1, 1, 2), camera).reshape(source.shape)
        return np.linalg.norm(source - predicted, axis=-1)

    def update(self, frame: np.ndarray) -> tuple[Box, bool]:
        import cv2

        frame = self.resized(frame)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        backward = self.flow.calc(gray, self.gray, None)  # from each pixel to where it was in the previous frame
        source = self.grid + backward
        self.gray = gray
        mask = cv2.remap(self.mask.astype(np.float32), source[..., 0], source[..., 1], cv2.INTER_LINEAR) > 0.5
        if mask.sum() < 20:
            return self.full_box, False
        shift = -np.median(backward[mask], axis=0)  # the object's motion, (dx, dy) px
        reach = max(5, int(0.15 * np.sqrt(mask.sum())))
        near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        residual = self.camera_residual(source, ~near)
        if residual is not None:
            motion = float(np.median(residual[mask]))
            if motion > self.own_motion:
                moving = near & (residual > 0.5 * motion)
                moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
                if 0.5 * mask.sum() < moving.sum() < 2 * mask.sum():
                    mask = moving
        index = colour_index(frame)
        if self.colour:
            mask = self.by_colour(mask, index)
        if self.clamp is not None:
            x, y, w, h = self.box[0] + shift[0], self.box[1] + shift[1], self.box[2], self.box[3]
            reach_x, reach_y = self.clamp * w + 2, self.clamp * h + 2
            allowed = box_region((x - reach_x, y - reach_y, w + 2 * reach_x, h + 2 * reach_y),
                                 width, height)
            if (mask & allowed).sum() >= 20:
                mask &= allowed
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
        if mask.sum() < 20:
            return self.full_box, False
        self.mask = largest_parts(mask)
        self.box = mask_box(self.mask)
        if self.colour:
            self.scene_colours = 0.7 * self.scene_colours + 0.3 * self.ring_colours(index)
            self.object_colours = 0.95 * self.object_colours + 0.05 * colour_histogram(index, self.mask)
        x, y, w, h = (v / self.scale for v in self.box)
        self.full_box = check_box((round(x), round(y), round(w), round(h)), *self.full_size)
        return self.full_box, bool(self.mask.sum() >= 0.1 * self.first_area and self.object_coloured > 0.3)

    def by_colour(self, mask: np.ndarray, index: np.ndarray) -> np.ndarray:
        """`mask` without the pixels whose colour is likelier the scene's than the object's, and (`refit`) with
        the clearly object-coloured regions touching it."""
        import cv2

        height, width = mask.shape
        ours, theirs = self.object_colours[index] + 1e-5, self.scene_colours[index] + 1e-5
        share = cv2.blur((ours / (ours + theirs)).astype(np.float32), (5, 5))  # (H, W) in [0, 1]
        kept = mask & (share > 0.5)
        self.object_coloured = kept.sum() / max(mask.sum(), 1)
        if self.object_coloured > 0.3:
            mask = kept
        if self.refit:
            coloured = box_region(grown(mask_box(mask), 0.25), width, height) & (share > 0.7)
            coloured = cv2.morphologyEx(coloured.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            _, labels = cv2.connectedComponents(coloured, connectivity=8)
            touching = np.isin(labels, np.unique(labels[mask])) & (labels > 0)
            if 0.5 * mask.sum() < touching.sum() < 3 * mask.sum():
                mask = mask | touching
        return mask


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


def motion_tracker(frame: np.ndarray, box: Box) -> FlowBoxTracker:
    """The flow tracker without colours or clamp, at the clip's full size: the object is what moves."""
    return FlowBoxTracker(frame, box, colour=False, refit=False, clamp=None, work_side=100_000)


TRACKERS: dict[str, Callable[[np.ndarray, Box], BoxTracker]] = {
    "flow": FlowBoxTracker, "motion": motion_tracker, "mil": OpenCVBoxTracker}


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


def track(frames: Iterable[np.ndarray], box: Box,
          method: str | Callable[[np.ndarray, Box], BoxTracker] = "flow") -> Iterator[TrackStep]:
    """Follow `box` (in the first of `frames`) through the rest with the tracker named `method` (or made by
    it); one `TrackStep` per frame, the first included."""
    iterator = iter(frames)
    first = next(iterator)
    tracker: BoxTracker = (TRACKERS[method] if isinstance(method, str) else method)(first, box)
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
