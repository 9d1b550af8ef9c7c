"""Regenerate the shipped sample clip and mask: `python samples/make_samples.py` (needs scikit-image).

clip.mp4  : 4 s, 25 fps, 480x270 H.264 (BT.709) of a real photograph (scikit-image's "coffee") under a
            slow pan and zoom, with a 440 Hz AAC audio track.
mask.png  : a 64x40 white box (the region to fill) for `--plugin inpaint --mask samples/mask.png`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from vidgen.synth import camera_path, write_clip

HERE = Path(__file__).parent
BT709_LIMITED = (1, 1, 1, 1)  # primaries, transfer, matrix, range


def main() -> None:
    frames = camera_path(data.coffee(), 480, 270, 100)
    write_clip(HERE / "clip.mp4", frames, audio=True, colour=BT709_LIMITED, options={"crf": "20", "preset": "slow"})
    mask = np.zeros((270, 480), np.uint8)
    mask[150:190, 300:364] = 255
    cv2.imwrite(str(HERE / "mask.png"), mask)


if __name__ == "__main__":
    main()
