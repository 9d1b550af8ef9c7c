"""Small synthetic clips for tests, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


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


def write_clip(
    path: Path,
    frames: np.ndarray,
    fps: int = 25,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    subtitles: bool = False,
    colour: tuple[int, int, int, int] | None = None,
) -> Path:
    """Encode `(T, H, W, 3)` uint8 (or uint16 for 10-bit) frames; optional AAC tone, rotation, VFR pts, mov_text."""
    deep = frames.dtype == np.uint16
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = pix_fmt
        if time_base is not None:
            video.codec_context.time_base = time_base
            video.time_base = time_base
        if colour is not None:
            ctx = video.codec_context
            ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = colour
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        text = container.add_stream("mov_text") if subtitles else None
        done = 0
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if deep else "rgb24")
            if colour is not None:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=colour[2], dst_color_range=colour[3])
            else:
                frame = frame.reformat(format=pix_fmt)
            frame.pts = pts[index] if pts is not None else index
            if time_base is not None:
                frame.time_base = time_base
            container.mux(video.encode(frame))
            while sound is not None and done < (index + 1) * 48000 // fps:
                t = (done + np.arange(1024)) / 48000
                chunk = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32),
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, done, Fraction(1, 48000)
                container.mux(sound.encode(chunk))
                done += 1024
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path
