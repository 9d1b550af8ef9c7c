"""Small synthetic clips for tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np

from vidgen.synth import write_clip

__all__ = ["audio_digest", "decode", "moving_pattern", "write_clip"]


def decode(path: Path) -> tuple[np.ndarray, list[int]]:
    """All video frames of `path` as `(T, H, W, 3)` uint8 RGB, and their pts."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [f.pts for f in frames]


def audio_digest(path: Path) -> str:
    """MD5 of the audio packets' bytes (equal digests: the audio was copied bit-exact)."""
    with av.open(str(path)) as container:
        return hashlib.md5(b"".join(bytes(p) for p in container.demux(audio=0) if p.size)).hexdigest()


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


def copy_audio_only(src: Path, dst: Path) -> Path:
    """`dst`: the audio stream of `src` alone, stream-copied."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        stream = target.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(audio=0):
            if packet.size:
                packet.stream = stream
                target.mux(packet)
    return dst
