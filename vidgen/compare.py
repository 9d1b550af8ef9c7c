"""`vidgen compare`: per-frame PSNR/SSIM between two videos of the same length, and a contact sheet."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from vidgen.engine import give_default_permissions
from vidgen.errors import VidgenError
from vidgen.metrics import psnr, ssim
from vidgen.video import VideoReader

SHEET_FRAMES = 4
LABEL_HEIGHT = 14


@dataclass
class Comparison:
    """Scores of B against A (the reference), frame by frame; `None` PSNR: identical frames."""

    a: str
    b: str
    size_a: tuple[int, int]
    size_b: tuple[int, int]
    psnr: list[float | None] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float | None:
        """Mean over frames of the per-frame PSNR (identical frames count as 100 dB); None if all are."""
        if all(value is None for value in self.psnr):
            return None
        return float(np.mean([100.0 if value is None else value for value in self.psnr]))

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.ssim))

    def as_dict(self) -> dict:
        return {
            "a": self.a, "b": self.b, "size_a": list(self.size_a), "size_b": list(self.size_b),
            "scaled": self.size_a != self.size_b, "frame_count": len(self.ssim),
            "mean": {"psnr": self.mean_psnr, "ssim": self.mean_ssim},
            "frames": [{"index": i, "psnr": p, "ssim": s} for i, (p, s) in enumerate(zip(self.psnr, self.ssim))],
        }


def _frames(reader: VideoReader) -> Iterator[np.ndarray]:
    """The frames of `reader` as `(H, W, 3)` float32 on the 0-255 scale (10-bit and deeper kept exact)."""
    for frame in reader.frames():
        yield frame.rgb.astype(np.float32) / (257.0 if frame.rgb.dtype == np.uint16 else 1.0)


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = frame.shape[1] > width
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def compare(a: str | os.PathLike, b: str | os.PathLike, sheet_frames: set[int] = frozenset(),
            log: Callable[[str], None] = lambda message: None) -> tuple[Comparison, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Score every frame of `b` against `a` (B scaled to A's size if they differ, said through `log`);
    also return the frames `sheet_frames` of both, `(H, W, 3)` float32 on the 0-255 scale."""
    reader_a, reader_b = VideoReader(a), VideoReader(b)
    try:
        size_a, size_b = (reader_a.width, reader_a.height), (reader_b.width, reader_b.height)
        result = Comparison(str(a), str(b), size_a, size_b)
        if size_a != size_b:
            log(f"note: sizes differ ({a}: {size_a[0]}x{size_a[1]}, {b}: {size_b[0]}x{size_b[1]}); "
                f"{b} is scaled to {size_a[0]}x{size_a[1]} for the scores")
        kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        frames_a, frames_b = _frames(reader_a), _frames(reader_b)
        for index, frame_a in enumerate(frames_a):
            frame_b = next(frames_b, None)
            if frame_b is None:
                raise VidgenError(f"{b} has {index} frames, {a} at least {index + 1}; "
                                  "compare needs videos of the same length")
            if size_a != size_b:
                frame_b = _fit(frame_b, *size_a)
            value = psnr(frame_a, frame_b)
            result.psnr.append(None if math.isinf(value) else value)
            result.ssim.append(ssim(frame_a, frame_b))
            if index in sheet_frames:
                kept[index] = (frame_a, frame_b)
        count = len(result.ssim)
        extra = sum(1 for _ in frames_b)
        if extra:
            raise VidgenError(f"{a} has {count} frames, {b} {count + extra}; compare needs videos of the same length")
        missing = sorted(set(sheet_frames) - set(kept))
        if missing:
            raise VidgenError(f"--frames {missing[0]}: the videos have frames 0 to {count - 1}")
        return result, kept
    finally:
        reader_a.close()
        reader_b.close()


def sheet_indices(count: int, chosen: str | None) -> list[int]:
    """Frames for the contact sheet: `chosen` ('0,50,99') or SHEET_FRAMES spread evenly over `count`."""
    if chosen:
        try:
            return sorted({int(part) for part in chosen.split(",") if part.strip()})
        except ValueError:
            raise VidgenError(f"--frames {chosen!r}: expected frame numbers like 0,50,99") from None
    return sorted({round(i * (count - 1) / max(SHEET_FRAMES - 1, 1)) for i in range(SHEET_FRAMES)})


def contact_sheet(kept: dict[int, tuple[np.ndarray, np.ndarray]], result: Comparison) -> np.ndarray:
    """One row per kept frame, A left and B right, under a strip naming the frame and its scores;
    `(H, W, 3)` uint8."""
    import cv2

    rows = []
    for index, (frame_a, frame_b) in sorted(kept.items()):
        pair = np.clip(np.round(np.concatenate((frame_a, frame_b), axis=1)), 0, 255).astype(np.uint8)
        score = result.psnr[index]
        label = f"#{index}  {'identical' if score is None else f'{score:.2f} dB'}  SSIM {result.ssim[index]:.3f}"
        strip = np.zeros((LABEL_HEIGHT, pair.shape[1], 3), np.uint8)
        cv2.putText(strip, label, (2, LABEL_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.concatenate((strip, pair), axis=0))
    return np.concatenate(rows, axis=0)


def write_png(path: Path, image: np.ndarray, overwrite: bool) -> None:
    """Write RGB `image` `(H, W, 3)` uint8 to `path` as PNG through a temporary file beside it."""
    import cv2

    if path.exists() and not overwrite:
        raise VidgenError(f"{path}: already exists (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VidgenError(f"{parent}: output folder does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=parent)
    os.close(fd)
    give_default_permissions(name)
    try:
        if not cv2.imwrite(name, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise VidgenError(f"{path}: could not write the PNG")
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
