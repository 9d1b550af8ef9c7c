"""Fit the fixed seg2vid segmentation: k-means in CIELAB over pixels of a photo folder.

`python -m vidgen_seg2vid.fit_segmentation DIR [--classes 8] [--seed 0]` rewrites `segmentation.json`
(centres sorted by lightness, an automatic colour name per class, and how they were made).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from vidgen.training import load_images
from vidgen_seg2vid.labels import BLUR_SIGMA, SEGMENTATION_FILE

LIGHTNESS_WEIGHT = 0.6
HUES = ((20, "red"), (70, "orange"), (105, "yellow"), (200, "green"), (300, "blue"), (340, "purple"), (360, "red"))


def colour_name(lab: np.ndarray) -> str:
    """A short name such as 'dark green' or 'light grey' for a Lab colour."""
    lightness, a, b = (float(v) for v in lab)
    tone = "dark " if lightness < 35 else "light " if lightness > 70 else ""
    if np.hypot(a, b) < 10:
        return tone + "grey"
    angle = np.degrees(np.arctan2(b, a)) % 360
    return tone + next(name for limit, name in HUES if angle < limit)


def fit(folder: str, classes: int, seed: int, samples_per_image: int = 4000) -> dict:
    """k-means centres `(classes, 3)` in Lab of blurred pixels sampled from every photo in `folder`."""
    import cv2

    rng = np.random.default_rng(seed)
    pixels = []
    for image in load_images(folder):
        blurred = cv2.GaussianBlur(image.astype(np.float32) / 255.0, (0, 0), BLUR_SIGMA)
        lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2Lab).reshape(-1, 3)
        pixels.append(lab[rng.choice(len(lab), samples_per_image, replace=False)])
    data = np.concatenate(pixels) * np.array([LIGHTNESS_WEIGHT, 1, 1], np.float32)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 0.01)
    _, _, centres = cv2.kmeans(data, classes, None, criteria, 5, cv2.KMEANS_PP_CENTERS)
    centres = centres / np.array([LIGHTNESS_WEIGHT, 1, 1], np.float32)
    centres = centres[np.argsort(centres[:, 0])]
    names = [colour_name(c) for c in centres]
    names = [f"{n} {names[:i].count(n) + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    return {
        "centres": [[round(float(v), 2) for v in centre] for centre in centres],
        "names": names,
        "lightness_weight": LIGHTNESS_WEIGHT,
        "fitted_on": f"{folder} ({len(pixels)} photos, {samples_per_image} pixels each), seed {seed}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = fit(args.folder, args.classes, args.seed)
    SEGMENTATION_FILE.write_text(json.dumps(model, indent=1) + "\n")
    for name, centre in zip(model["names"], model["centres"]):
        print(f"{name:>16}: Lab {centre}")


if __name__ == "__main__":
    main()
