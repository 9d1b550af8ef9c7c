"""Runs on part of a video (`vidgen run --start T --duration T` or `--frames N`): a reader that yields
only the frames of a time window, re-timed to start at 0, and a writer that copies only the audio and
subtitle packets of that window, shifted the same way."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator

import av

from vidgen.errors import VidgenError
from vidgen.mediaio import MediaIO
from vidgen.video import DecodedFrame, VideoReader, VideoWriter


def parse_time(text: str) -> float:
    """'90', '90.5', '1:30' or '0:01:30.5' → seconds."""
    if not re.fullmatch(r"\d+(\.\d*)?|(\d+:){1,2}\d+(\.\d*)?", text.strip()):
        raise VidgenError(f"time {text!r}: expected seconds (90.5) or [H:]M:S (1:30.5)")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


@dataclass(frozen=True)
class Trim:
    """A window of a video: from `start` seconds, for `duration` seconds and/or at most `frames` frames."""

    start: float = 0.0
    duration: float | None = None
    frames: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.duration is not None and self.duration <= 0) or (self.frames is not None and self.frames < 1):
            raise VidgenError("--start must be >= 0, --duration > 0 and --frames >= 1")

    def apply(self, io: MediaIO) -> MediaIO:
        """`io` reading only this window; video files' audio and subtitles are cut to match."""
        writer = functools.partial(TrimmedWriter, trim=self) if io.open_writer is VideoWriter else io.open_writer
        return dataclasses.replace(io, open_reader=lambda src, strict: TrimmedReader(io.open_reader(src, strict), self),
                                   open_writer=writer)


class TrimmedReader:
    """The frames of `reader` inside `trim`'s window, numbered from 0, with pts shifted so the window starts
    at 0; every other attribute is `reader`'s."""

    def __init__(self, reader: VideoReader, trim: Trim) -> None:
        self.reader = reader
        self.trim = trim
        self.first_pts = (reader.stream.start_time or 0) + round(trim.start / reader.time_base)
        frames = trim.frames or reader.estimated_frames
        if trim.duration is not None:
            frames = min(frames or math.inf, math.ceil(trim.duration * reader.rate))
        self.estimated_frames = frames

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def frames(self, rgb: bool = True) -> Iterator[DecodedFrame]:
        """The window's frames, as `VideoReader.frames` yields them, re-indexed and re-timed."""
        self.reader.seek(self.first_pts)
        end = self.first_pts + self.trim.duration / self.reader.time_base if self.trim.duration else math.inf
        index = 0
        for frame in self.reader.frames(rgb):
            pts = frame.pts if frame.pts is not None else self.first_pts  # no timestamps: count frames only
            if pts < self.first_pts:
                continue
            if pts >= end or index == self.trim.frames:
                return
            yield dataclasses.replace(frame, index=index, pts=None if frame.pts is None else pts - self.first_pts)
            index += 1
        if index == 0:
            raise VidgenError(f"{self.reader.path}: no frame at or after --start {self.trim.start:g} s")


class TrimmedWriter(VideoWriter):
    """A `VideoWriter` that copies only the audio/subtitle packets of `trim`'s window, shifted to start at 0."""

    def __init__(self, *args: Any, trim: Trim, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trim = trim
        self.video_end = Fraction(0)  # seconds: end of the last frame written

    def _open_copies(self) -> None:
        super()._open_copies()
        if self.copy_packets is None:
            return
        origin = Fraction(self.copy_source.start_time or 0, av.time_base) + Fraction(self.trim.start)
        if self.trim.start:
            self.copy_source.seek(int(origin * av.time_base), backward=True)
        self.copy_packets = self._window(self.copy_packets, origin)

    def _window(self, packets: Iterator[av.Packet], origin: Fraction) -> Iterator[av.Packet]:
        """The packets from `origin` (seconds) on, shifted back by `origin`."""
        for packet in packets:
            if packet.pts is None or not packet.size or packet.pts * packet.time_base < origin:
                continue
            shift = round(origin / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            yield packet

    def _mux_copies_until(self, seconds: Fraction | None) -> None:
        """As `VideoWriter`'s, but at the end (None) only up to the end of the last video frame."""
        if seconds is None:
            seconds = self.video_end
        else:
            self.video_end = seconds + 1 / self.source.rate
        super()._mux_copies_until(seconds)
