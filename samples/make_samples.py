"""Regenerate the shipped sample clip and mask: `python samples/make_samples.py` (needs scikit-image).

clip.mp4  : 4 s, 25 fps, 480x270 H.264 (BT.709) of a real photograph (scikit-image's "rocket", public domain,
            NASA) under a pan and zoom, with a burned-in overlay: a logo in the top right corner and a running
            timestamp in the bottom left, as a camcorder or a broadcast would print them; 440 Hz AAC audio.
mask.png  : white where the overlay is drawn in any frame (the logo and every digit of the timestamp), for
            `--plugin inpaint --mask samples/mask.png`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from vidgen.synth import camera_path, write_clip

HERE = Path(__file__).parent
BT709_LIMITED = (1, 1, 1, 1)  # primaries, transfer, matrix, range
WIDTH, HEIGHT, FRAMES, FPS = 480, 270, 100, 25


def draw_logo(canvas: np.ndarray, colour: int | tuple[int, int, int], thickness: int) -> None:
    """A station logo: a ring with the letters VG, top right."""
    cv2.circle(canvas, (430, 36), 20, colour, thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, "VG", (414, 44), cv2.FONT_HERSHEY_DUPLEX, 0.7, colour, thickness, cv2.LINE_AA)


def draw_timestamp(canvas: np.ndarray, frame: int, colour: int | tuple[int, int, int], thickness: int) -> None:
    """A running camcorder timestamp (date, time to the frame), bottom left."""
    seconds = 14 * 3600 + 7 * 60 + 31 + frame / FPS
    clock = f"{int(seconds // 3600):02d}:{int(seconds // 60 % 60):02d}:{int(seconds % 60):02d}.{frame % FPS:02d}"
    cv2.putText(canvas, f"2026-12-01 {clock}", (12, HEIGHT - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, thickness,
                cv2.LINE_AA)


def overlay(frame: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """`frame` `(H, W, 3)` uint8 with the logo and the timestamp burned in (white with a 2 px dark outline), and
    the pixels they touch `(H, W)` bool."""
    glyphs = np.zeros((HEIGHT, WIDTH), np.uint8)
    draw_logo(glyphs, 255, 2)
    draw_timestamp(glyphs, index, 255, 1)
    touched = cv2.dilate(glyphs, np.ones((5, 5), np.uint8)) > 0
    alpha = glyphs[..., None].astype(np.float32) / 255
    out = frame.copy()
    out[touched] = (20, 20, 20)
    out = np.round(alpha * 255 + (1 - alpha) * out).astype(np.uint8)
    return out, touched


def main() -> None:
    scene = camera_path(data.rocket(), WIDTH, HEIGHT, FRAMES, pan=0.35, zoom=0.1)
    burned, touched = zip(*(overlay(frame, index) for index, frame in enumerate(scene)))
    write_clip(HERE / "clip.mp4", burned, fps=FPS, audio=True, colour=BT709_LIMITED,
               options={"crf": "22", "preset": "slow"})
    cv2.imwrite(str(HERE / "mask.png"), np.any(touched, 0).astype(np.uint8) * 255)


if __name__ == "__main__":
    main()
