"""Regenerate the shipped sample clips: `python samples/make_samples.py` (needs scikit-image).

clip.mp4  : 4 s, 25 fps, 480x270 H.264 of a real photograph (scikit-image's "coffee") under a slow
            pan and zoom, with a 440 Hz / 660 Hz AAC stereo audio track.
mask.png  : a 64x40 white box (the region to fill) for `--plugin inpaint --mask samples/mask.png`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).parent


def camera_path(photo: np.ndarray, width: int, height: int, frames: int) -> np.ndarray:
    """`(frames, height, width, 3)` uint8 views of `photo` along a smooth pan and zoom."""
    ph, pw = photo.shape[:2]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        zoom = 1.0 + 0.15 * s  # 15 % zoom-in over the clip
        scale = max(width / pw, height / ph) * 1.25 * zoom
        cx = pw / 2 + (s - 0.5) * 0.12 * pw
        cy = ph / 2 + np.sin(s * np.pi) * 0.04 * ph
        matrix = np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
        out[t] = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out


def write_clip(path: Path, frames: np.ndarray, fps: int = 25, audio: bool = True) -> None:
    """Encode RGB frames as H.264 (yuv420p, BT.709 tagged) with an optional AAC tone track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "20", "preset": "slow"}
        ctx = video.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1  # BT.709, limited
        sound = container.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        samples_done = 0
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1)
            frame.pts = index
            container.mux(video.encode(frame))
            while sound is not None and samples_done < (index + 1) * 48000 // fps:
                n = 1024
                t = (samples_done + np.arange(n)) / 48000
                pcm = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 0.2
                chunk = av.AudioFrame.from_ndarray(pcm.astype(np.float32), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, samples_done, Fraction(1, 48000)
                container.mux(sound.encode(chunk))
                samples_done += n
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))


def main() -> None:
    from skimage import data

    frames = camera_path(data.coffee(), 480, 270, 100)
    write_clip(HERE / "clip.mp4", frames)
    mask = np.zeros((270, 480), np.uint8)
    mask[150:190, 300:364] = 255
    cv2.imwrite(str(HERE / "mask.png"), mask)


if __name__ == "__main__":
    main()
