"""Where to fill: mask images, mask videos, folders of per-frame masks, boxes, and detected static overlays.

Masks are `(H, W)` bool arrays, True where pixels must be filled (white in a mask file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from vidgen.errors import VidgenError
from vidgen.sequences import IMAGE_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"}


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """'x,y,w,h' (several separated by ';') → [(x, y, w, h), ...]."""
    boxes = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            values = tuple(int(v) for v in part.split(","))
        except ValueError:
            values = ()
        if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
            raise VidgenError(f"box {part.strip()!r}: expected x,y,w,h with positive width and height")
        boxes.append(values)  # type: ignore[arg-type]
    return boxes


def read_mask_image(path: Path) -> np.ndarray:
    """A mask image as `(H, W)` bool (pixels brighter than mid-grey are True)."""
    import cv2

    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise VidgenError(f"{path}: cannot read mask image")
    return gray > 127


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a `(H, W)` bool mask by `pixels` (elliptic structuring element)."""
    if pixels <= 0:
        return mask
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


class MaskSource:
    """Per-frame masks from one of: a mask image, a mask video, a folder of mask images, an array, boxes.

    `source` may be a path (str/Path) or, from Python, an `(H, W)` or `(T, H, W)` bool/uint8 array.
    Boxes are added to whatever `source` gives; `dilate_pixels` grows the result.
    """

    def __init__(self, source: str | Path | np.ndarray | None, boxes: list[tuple[int, int, int, int]],
                 width: int, height: int, dilate_pixels: int = 0) -> None:
        self.width, self.height, self.dilate_pixels = width, height, dilate_pixels
        self.boxes = boxes
        self._static: np.ndarray | None = None
        self._per_frame: Callable[[int], np.ndarray] | None = None
        self._video_frames: dict[int, np.ndarray] = {}
        self._video_iter = None
        if isinstance(source, np.ndarray):
            array = source.astype(bool) if source.dtype == bool else source > 127
            if array.ndim == 2:
                self._static = self._checked(array, "mask array")
            elif array.ndim == 3:
                self._per_frame = lambda i: self._checked(array[min(i, len(array) - 1)], "mask array")
            else:
                raise VidgenError(f"mask array must be (H, W) or (T, H, W), got {array.shape}")
        elif source is not None and str(source):
            path = Path(source)
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise VidgenError(f"{path}: mask folder holds no images")
                self._per_frame = lambda i: self._from_folder(files, i, path)
            elif not path.is_file():
                raise VidgenError(f"{path}: mask not found")
            elif path.suffix.lower() in VIDEO_SUFFIXES:
                self._video_path = path
                self._per_frame = self._from_video
            else:
                self._static = self._checked(read_mask_image(path), str(path))
        box_mask = np.zeros((height, width), bool)
        for x, y, w, h in boxes:
            box_mask[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
        if boxes and not box_mask.any():
            raise VidgenError(f"box {boxes[0]} lies outside the {width}x{height} frame")
        self._box_mask = box_mask
        self.given = self._static is not None or self._per_frame is not None or bool(boxes)
        self._static_final = None
        if self._per_frame is None:
            self._static_final = self._fillable(dilate(self._combine(self._static), dilate_pixels), "the mask")
        self.empty = self._static_final is not None and self.given and not self._static_final.any()

    def _fillable(self, mask: np.ndarray, what: str) -> np.ndarray:
        """`mask`, unless it leaves no pixel known to fill from."""
        if mask.all():
            raise VidgenError(f"{what} covers the whole {self.width}x{self.height} frame (after dilation): nothing "
                              "is left to fill from (white marks the pixels to fill)")
        return mask

    def _checked(self, mask: np.ndarray, what: str) -> np.ndarray:
        if mask.shape != (self.height, self.width):
            raise VidgenError(f"{what}: mask is {mask.shape[1]}x{mask.shape[0]} but the video is "
                              f"{self.width}x{self.height}")
        return mask

    def _from_folder(self, files: list[Path], index: int, folder: Path) -> np.ndarray:
        if index >= len(files):
            raise VidgenError(f"{folder}: {len(files)} mask images but the video has more frames (frame {index})")
        return self._checked(read_mask_image(files[index]), str(files[index]))

    def _from_video(self, index: int) -> np.ndarray:
        import av

        if self._video_iter is None:
            self._container = av.open(str(self._video_path))
            self._video_iter = enumerate(self._container.decode(video=0))
        while index not in self._video_frames:
            try:
                position, frame = next(self._video_iter)
            except StopIteration:
                raise VidgenError(f"{self._video_path}: mask video ends before frame {index}") from None
            gray = frame.to_ndarray(format="gray")
            self._video_frames[position] = self._checked(gray > 127, str(self._video_path))
            for old in [k for k in self._video_frames if k < position - 64]:
                del self._video_frames[old]
        return self._video_frames[index]

    def _combine(self, mask: np.ndarray | None) -> np.ndarray:
        return self._box_mask if mask is None else mask | self._box_mask

    def set_static(self, mask: np.ndarray) -> None:
        """Use a detected overlay mask `(H, W)` for every frame."""
        self._static = self._checked(mask, "detected overlay")
        self._static_final = self._fillable(dilate(self._combine(self._static), self.dilate_pixels), "the overlay")

    def __call__(self, index: int) -> np.ndarray:
        """The (dilated) mask of frame `index`, `(H, W)` bool."""
        if self._per_frame is None:
            assert self._static_final is not None
            return self._static_final
        mask = dilate(self._combine(self._per_frame(index)), self.dilate_pixels)
        return self._fillable(mask, f"the mask of frame {index}")

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None


def sample_video_frames(path: Path, count: int = 48, max_frames: int = 3000) -> np.ndarray:
    """Up to `count` frames `(T, H, W, 3)` uint8 spread over the first `max_frames` frames of a video."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames or max_frames
        step = max(1, min(total, max_frames) // count)
        frames = []
        for position, frame in enumerate(container.decode(stream)):
            if position >= max_frames or len(frames) >= count:
                break
            if position % step == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
    return np.stack(frames)


def detect_static_overlay(frames: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Static overlays in `(T, H, W, 3)` uint8 frames of a moving scene (`overlays.find_overlays`), for a run
    with no mask: the `(H, W)` bool mask of their boxes and the boxes `(x, y, w, h)`.
    Raises `VidgenError` saying why when nothing can be found.
    """
    from vidgen_inpaint.overlays import find_overlays, overlay_mask

    advice = "give a mask (--mask, -p inpaint.box=x,y,w,h, or make one with `vidgen mask`)"
    try:
        overlays = find_overlays(frames)
    except VidgenError as exc:
        raise VidgenError(f"no mask given and {exc}; {advice}") from None
    if not overlays:
        raise VidgenError(f"no mask given and no static overlay (logo, panel, ticker, text) was found; {advice}")
    height, width = frames.shape[1:3]
    return overlay_mask(overlays, width, height), [o.box for o in overlays]
