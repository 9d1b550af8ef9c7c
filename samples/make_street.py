"""Regenerate samples/street_labels.mp4: `python samples/make_street.py` (numpy and OpenCV only).

street_labels.mp4 : 3 s, 25 fps, 480x360 H.264 label video in CamVid colours for `--plugin seg2vid`: a street
                    drawn with polygons (sky, buildings on both sides, a tree, poles, a sign, road and
                    pavements in perspective), a car driving across from left to right and a pedestrian
                    walking on the pavement. No audio.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidgen.synth import write_clip
from vidgen_seg2vid.labels import CAMVID_CLASSES, colourise

HERE = Path(__file__).parent
WIDTH, HEIGHT, FRAMES = 480, 360, 75
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN = range(10)


def polygon(labels: np.ndarray, points: list[tuple[float, float]], label: int) -> None:
    cv2.fillPoly(labels, [np.round(np.array(points)).astype(np.int32)], label)


def street(frame: int) -> np.ndarray:
    """Class map `(HEIGHT, WIDTH)` uint8 (CamVid indices) of frame `frame` of the clip."""
    labels = np.full((HEIGHT, WIDTH), SKY, np.uint8)
    horizon = 165
    polygon(labels, [(0, 20), (150, 60), (150, horizon + 10), (0, 260)], BUILDING)  # left facade
    polygon(labels, [(330, 80), (480, 40), (480, 265), (330, horizon + 10)], BUILDING)  # right facade
    polygon(labels, [(150, 110), (205, 120), (205, horizon + 5), (150, horizon + 10)], BUILDING)  # far left
    polygon(labels, [(285, 125), (330, 112), (330, horizon + 10), (285, horizon + 5)], BUILDING)  # far right
    polygon(labels, [(0, 260), (150, horizon + 10), (205, horizon + 5), (230, horizon + 5), (0, 320)], PAVEMENT)
    polygon(labels, [(480, 265), (330, horizon + 10), (285, horizon + 5), (255, horizon + 5), (480, 330)], PAVEMENT)
    polygon(labels, [(0, 320), (230, horizon + 5), (255, horizon + 5), (480, 330), (480, 360), (0, 360)], ROAD)
    cv2.ellipse(labels, (400, 120), (50, 45), 0, 0, 360, TREE, -1)
    polygon(labels, [(396, 150), (404, 150), (404, 290), (396, 290)], TREE)  # trunk
    polygon(labels, [(60, 120), (66, 120), (66, 300), (60, 300)], POLE)
    polygon(labels, [(300, 135), (303, 135), (303, 215), (300, 215)], POLE)
    polygon(labels, [(290, 120), (313, 120), (313, 138), (290, 138)], SIGN)
    polygon(labels, [(205, 175), (230, 172), (230, 185), (205, 190)], FENCE)
    x = -170 + frame * 8.0  # the car drives across, 8 px a frame
    polygon(labels, [(x, 300), (x, 258), (x + 40, 252), (x + 70, 222), (x + 140, 222), (x + 170, 252),
                     (x + 195, 258), (x + 195, 300)], CAR)
    walk = 420 - frame * 1.2  # the pedestrian walks left on the right pavement
    cv2.ellipse(labels, (round(walk), 226), (6, 7), 0, 0, 360, PEDESTRIAN, -1)
    polygon(labels, [(walk - 8, 233), (walk + 8, 233), (walk + 9, 268), (walk - 9, 268)], PEDESTRIAN)
    step = 5 * np.sin(frame * 0.5)
    polygon(labels, [(walk - 7, 266), (walk - 2, 266), (walk - 3 + step, 290), (walk - 8 + step, 290)], PEDESTRIAN)
    polygon(labels, [(walk + 2, 266), (walk + 7, 266), (walk + 8 - step, 290), (walk + 3 - step, 290)], PEDESTRIAN)
    return labels


def main() -> None:
    assert CAMVID_CLASSES[CAR] == "car" and CAMVID_CLASSES[PEDESTRIAN] == "pedestrian"
    frames = colourise(np.stack([street(frame) for frame in range(FRAMES)]))
    write_clip(HERE / "street_labels.mp4", frames, fps=25, audio=False, options={"crf": "18"})


if __name__ == "__main__":
    main()
