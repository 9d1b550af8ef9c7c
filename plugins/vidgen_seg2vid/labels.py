"""Label maps for seg2vid: the CamVid classes and colours, colour decoding of label videos, motion between
label frames, and the fixed unsupervised segmentation of the colour-region classes (`--images` training).

The segmentation is k-means in CIELAB on a blurred photo with cluster centres fitted once
(`fit_segmentation.py`) and stored in `segmentation.json`; a mode filter smooths the result. The same
function labels the training photos and, in `vidgen bench seg2vid`, the generated frames.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidgen.errors import VidgenError
from vidgen.synth import camera_path

HERE = Path(__file__).parent
SEGMENTATION_FILE = HERE / "segmentation.json"

# The CamVid classes by index and the colours CamVid draws them with (class 11: unlabelled / void).
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign/symbol", "fence", "car",
                  "pedestrian", "bicyclist", "void")
CAMVID_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192), (0, 0, 0),
)

# Colours of the colour-region classes of the built-in segmentation (`--images` training; well apart in
# RGB, so that H.264 chroma subsampling does not push a pixel closer to another class).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (60, 60, 60), (0, 0, 142), (220, 20, 60), (107, 142, 35),
    (220, 220, 0), (70, 130, 180), (152, 251, 152), (255, 255, 255),
    (128, 64, 128), (250, 170, 30), (244, 35, 232), (0, 110, 110),
    (190, 153, 153), (119, 11, 32), (140, 140, 230), (0, 200, 0),
)

# A label-video pixel farther than this (RGB, 0-255 units) from every palette colour is "unknown".
UNKNOWN_DISTANCE = 40.0
# Fraction of unknown pixels in a frame above which it is rejected as not a label frame (H.264 edges: ~6 %).
MAX_UNKNOWN_FRACTION = 0.3
BLUR_SIGMA = 2.0
MODE_WINDOW = 7


@lru_cache(maxsize=1)
def segmentation_model() -> dict:
    """The fixed segmentation: `centres` (K, 3) Lab, `lightness_weight`, `names`, provenance."""
    return json.loads(SEGMENTATION_FILE.read_text())


def class_names() -> list[str]:
    return list(segmentation_model()["names"])


def mode_filter(labels: np.ndarray, classes: int, window: int = MODE_WINDOW) -> np.ndarray:
    """Most frequent class in a `window`² neighbourhood of each pixel of `(H, W)` `labels`."""
    import cv2

    votes = np.stack([cv2.boxFilter((labels == k).astype(np.float32), -1, (window, window))
                      for k in range(classes)])
    return votes.argmax(0).astype(np.uint8)


def segment(rgb: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 RGB photo → `(H, W)` uint8 class indices (nearest fixed Lab centre, smoothed)."""
    import cv2

    model = segmentation_model()
    centres = np.asarray(model["centres"], np.float32)
    blurred = cv2.GaussianBlur(rgb.astype(np.float32) / 255.0, (0, 0), BLUR_SIGMA)
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    weight = np.array([model["lightness_weight"], 1.0, 1.0], np.float32)
    distance = (((lab[:, None, :] - centres[None]) * weight) ** 2).sum(-1)
    labels = distance.argmin(1).reshape(rgb.shape[:2]).astype(np.uint8)
    return mode_filter(labels, len(centres))


Palette = tuple[tuple[int, int, int], ...]


def colourise(labels: np.ndarray, palette: Palette = CAMVID_PALETTE) -> np.ndarray:
    """`(..., H, W)` class indices → `(..., H, W, 3)` uint8 colours of `palette` (CamVid's by default)."""
    if labels.size and int(labels.max()) >= len(palette):
        raise VidgenError(f"class {int(labels.max())} has no palette colour (classes 0-{len(palette) - 1})")
    return np.asarray(palette, np.uint8)[labels]


def describe_palette(palette: Palette, names: list[str] | tuple[str, ...]) -> str:
    """'0 sky (128,128,128), 1 building (128,0,0), ...'"""
    return ", ".join(f"{k} {name} ({','.join(map(str, colour))})" for k, (name, colour) in enumerate(zip(names, palette)))


def decode_colours(frames: torch.Tensor, palette: Palette = CAMVID_PALETTE, palette_name: str = "CamVid") -> torch.Tensor:
    """Label frames `(T, 3, H, W)` in [0, 1] drawn in `palette` → class indices `(T, H, W)` int64.

    Each pixel takes the nearest palette colour, then a 3×3 mode filter removes the stray classes that
    compression leaves along edges. Raises `VidgenError` (one line naming the expected palette) when a
    frame has more than 30 % of pixels far from every palette colour (another palette, or not labels).
    """
    classes = len(palette)
    colours = torch.tensor(palette, dtype=torch.float32, device=frames.device) / 255.0
    distance = ((frames.float()[:, None] - colours[None, :, :, None, None]) ** 2).sum(2)  # (T, K, H, W)
    nearest, labels = distance.min(1)
    unknown = (nearest > (UNKNOWN_DISTANCE / 255.0) ** 2).float().mean((1, 2))
    if bool((unknown > MAX_UNKNOWN_FRACTION).any()):
        worst = float(unknown.max())
        raise VidgenError(
            f"seg2vid: {worst:.0%} of the pixels of a frame are not colours of the {palette_name} palette this "
            f"model expects: {', '.join('(' + ','.join(map(str, c)) + ')' for c in palette)} "
            f"(`vidgen plugins` names the classes)")
    votes = F.avg_pool2d(F.one_hot(labels, classes).permute(0, 3, 1, 2).float(), 3, 1, 1,
                         count_include_pad=False)
    return votes.argmax(1)


def label_flow(labels_from: np.ndarray, labels_to: np.ndarray) -> np.ndarray:
    """Motion `(H, W, 2)` float32 (pixels, x then y) such that pixel p of `labels_to` `(H, W)` shows what
    `labels_from` has at p + flow[p]: DIS optical flow between the label maps drawn as grey levels.

    This is how the previous output is warped onto the next frame (training and processor alike)."""
    import cv2

    levels = (np.arange(256) * 37 % 256).astype(np.uint8)  # neighbouring class indices far apart in grey
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(levels[labels_to], levels[labels_from], None)


def read_label_folder(folder: str | Path, palette: Palette = CAMVID_PALETTE) -> np.ndarray:
    """A folder of class-index PNGs (sorted by name) → `(T, H, W, 3)` uint8 frames in `palette` colours.

    The result can be passed to `vidgen.processor("seg2vid")(frames)` or written as a label video.
    """
    import cv2

    paths = sorted(Path(folder).glob("*.png"))
    if not paths:
        raise VidgenError(f"{folder}: no class-index PNGs found")
    limit = len(palette)
    frames = []
    for path in paths:
        labels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if labels is None:
            raise VidgenError(f"{path}: not a readable PNG")
        if int(labels.max()) >= limit:
            raise VidgenError(f"{path}: class {int(labels.max())} is out of range (classes 0-{limit - 1})")
        frames.append(colourise(labels, palette))
    if len({f.shape for f in frames}) != 1:
        raise VidgenError(f"{folder}: label PNGs differ in size")
    return np.stack(frames)


def label_path(labels: np.ndarray, width: int, height: int, frames: int, pan: float = 0.12, zoom: float = 0.15,
               seed: int | None = None) -> np.ndarray:
    """`(frames, height, width)` uint8 views of a class map `(H, W)` along the same pan and zoom as
    `vidgen.synth.camera_path` with the same arguments, resampled nearest-neighbour (no mixed classes)."""
    return camera_path(labels, width, height, frames, pan, zoom, seed, nearest=True)
