"""Image sequences as input and output: `frames/%05d.png` (printf pattern) or a folder of frames.

`SequenceReader` reads frames the way `VideoReader` reads a video (same attributes, `frames()`, `seek`);
`SequenceWriter` writes them the way `VideoWriter` does (`write`, `close`, `abort`), into a hidden folder
that `SequenceOutput` moves into place only when the run succeeded.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import av
import numpy as np

from vidgen.errors import VidgenError
from vidgen.mediaio import MediaIO
from vidgen.video import Colour, DecodedFrame, EncodeSettings, VideoWriter

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
DEEP_SUFFIXES = {".png", ".tif", ".tiff"}  # formats that keep 16-bit samples
PATTERN = re.compile(r"%0?(\d*)d")


def is_pattern(spec: str | os.PathLike) -> bool:
    """True for a printf file pattern such as `frames/%05d.png`."""
    return PATTERN.search(Path(spec).name) is not None


def is_frame_folder(path: Path) -> bool:
    """True for a folder that holds images (and no videos are implied: callers check videos first)."""
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def sequence_files(spec: str | os.PathLike) -> list[Path]:
    """The frames of a pattern (numbered files, in number order) or of a folder (images, in name order)."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        match = PATTERN.search(path.name)
        if match is None:
            raise VidgenError(f"{path}: not an image-sequence pattern (like frames/%05d.png) or folder")
        before, after = path.name[: match.start()], path.name[match.end():]
        numbered = re.compile(re.escape(before) + r"(\d+)" + re.escape(after) + "$")
        folder = path.parent if str(path.parent) else Path(".")
        found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := numbered.match(p.name))] if folder.is_dir() else []
        files = [p for _, p in sorted(found)]
    if not files:
        raise VidgenError(f"{path}: no image files match")
    return files


def read_image(path: Path) -> np.ndarray:
    """`(H, W, 3)` RGB, uint8, or uint16 for 16-bit files (grey and alpha images too)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VidgenError(f"{path}: not a readable image")
    if image.dtype not in (np.uint8, np.uint16):
        raise VidgenError(f"{path}: {image.dtype} samples; vidgen reads 8- and 16-bit images")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


@dataclass
class SequenceStream:
    """The stream attributes the engine and trimming read from a reader (a video's av stream has them)."""

    frames: int
    start_time: int = 0
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    disposition: int = 0


class SequenceReader:
    """Reads an image sequence like `VideoReader` reads a video: frame `i` has pts `i` in a time base of
    1/fps; 8-bit images give uint8 RGB, 16-bit images uint16 (kept deep through processors and encoder)."""

    def __init__(self, spec: str | os.PathLike, fps: float) -> None:
        if fps <= 0:
            raise VidgenError("--fps must be positive")
        self.path = Path(spec)
        self.files = sequence_files(spec)
        first = read_image(self.files[0])
        self.height, self.width = first.shape[:2]
        self.deep = first.dtype == np.uint16
        self.pix_fmt = "rgb48le" if self.deep else "rgb24"
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.stream = SequenceStream(len(self.files))
        self.estimated_frames = len(self.files)
        self.rotation = 0
        self.colour = Colour()
        self.decoded_frames = 0
        self.next_index = 0
        self.sample_aspect_ratio = None
        self.field_order = 0
        self.hdr_side_data: dict[str, bytes] = {}

    def frames(self, rgb: bool = True) -> Iterator[DecodedFrame]:
        """Every image from the current position: RGB arrays, or (`rgb=False`) `av.VideoFrame`s."""
        for index in range(self.next_index, len(self.files)):
            image = read_image(self.files[index])
            if image.shape[:2] != (self.height, self.width) or (image.dtype == np.uint16) != self.deep:
                raise VidgenError(f"{self.files[index]}: {image.shape[1]}x{image.shape[0]} {image.dtype}, but the "
                                  f"sequence started {self.width}x{self.height} {'uint16' if self.deep else 'uint8'}")
            self.decoded_frames += 1
            if rgb:
                yield DecodedFrame(image, index, index)
            else:
                yield DecodedFrame(None, index, index, picture=av.VideoFrame.from_ndarray(image, format=self.pix_fmt))

    def seek(self, pts: int) -> None:
        """Make `frames()` start at frame `pts`."""
        self.next_index = max(0, min(int(pts), len(self.files)))

    def warnings(self) -> list[str]:
        """An unreadable image is an error, never a warning: nothing to report."""
        return []

    def close(self) -> None:
        """Nothing stays open between frames."""


class SequenceWriter:
    """Writes frames as images named by `pattern` (frame index from 0) into the folder `path`."""

    def __init__(self, path: Path, source: Any, settings: EncodeSettings, warn: Callable[[str], None],
                 pattern: str) -> None:
        self.path = Path(path)
        self.pattern = pattern
        self.warn = warn
        self.keeps_depth = Path(pattern).suffix.lower() in DEEP_SUFFIXES
        if source.deep and not self.keeps_depth:
            warn(f"{Path(pattern).suffix} images hold 8 bits: the {source.pix_fmt} input's depth is reduced")
        container = getattr(source, "container", None)  # a video's; image sequences have no other streams
        dropped = sorted({s.type for s in container.streams if s.type != "video"}) if container else []
        if dropped:
            warn(f"an image sequence holds frames only: the input's {' and '.join(dropped)} not written")

    def write(self, image: np.ndarray | av.VideoFrame, pts: int | None, index: int) -> None:
        """Save frame `index`: an `(H, W, 3)` uint8/uint16 RGB array or a decoded `av.VideoFrame`."""
        import cv2

        if isinstance(image, av.VideoFrame):
            deep = image.format.components[0].bits > 8
            image = image.to_ndarray(format="rgb48le" if deep else "rgb24", src_color_range=image.color_range)
        if image.dtype == np.uint16 and not self.keeps_depth:
            image = np.round(image / 257.0).astype(np.uint8)
        name = self.path / (self.pattern % index)
        if not cv2.imwrite(str(name), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
            raise VidgenError(f"{name}: could not write the image")

    def close(self) -> None:
        """Every image is complete once written."""

    def abort(self) -> None:
        """The staging folder is removed by `SequenceOutput.discard`."""


@dataclass(frozen=True)
class SequenceOutput:
    """Output to `pattern` (e.g. `out/%05d.png`): frames staged in a hidden folder beside, moved into place
    on success. Refuses to mix with existing frames of the pattern unless `overwrite` (they are removed)."""

    pattern: Path
    overwrite: bool = False

    def apply(self, io: MediaIO) -> MediaIO:
        writer = functools.partial(SequenceWriter, pattern=self.pattern.name)
        return dataclasses.replace(io, open_writer=writer, stage=self.stage, commit=self.commit, discard=self.discard)

    def existing(self) -> list[Path]:
        try:
            return sequence_files(self.pattern)
        except VidgenError:
            return []

    def stage(self, dst: Path) -> Path:
        if self.pattern.suffix.lower() not in IMAGE_SUFFIXES:
            raise VidgenError(f"{self.pattern}: image sequences are written as {', '.join(sorted(IMAGE_SUFFIXES))}")
        if self.existing() and not self.overwrite:
            raise VidgenError(f"{self.pattern}: frames of this pattern already exist (use --overwrite to replace them)")
        return Path(tempfile.mkdtemp(prefix=".vidgen-frames.", dir=self.pattern.parent))

    def commit(self, tmp: Path, dst: Path) -> None:
        for old in self.existing():
            old.unlink()
        for image in sorted(tmp.iterdir()):
            os.replace(image, self.pattern.parent / image.name)
        tmp.rmdir()

    def discard(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)


def sequence_input(io: MediaIO, fps: float) -> MediaIO:
    """`io` reading image sequences at `fps` (video output: nothing to copy besides the frames)."""
    writer = functools.partial(VideoWriter, copy_streams=False) if io.open_writer is VideoWriter else io.open_writer
    return dataclasses.replace(io, open_reader=lambda src, strict: SequenceReader(src, fps), open_writer=writer)
