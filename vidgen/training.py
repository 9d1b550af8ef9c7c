"""Shared by the trainers of the built-in (and third-party) models: data, checkpoints, weight files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidgen.engine import give_default_permissions
from vidgen.errors import VidgenError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def load_images(folder: str | os.PathLike, min_size: int = 0) -> list[np.ndarray]:
    """All images under `folder` (recursively) as `(H, W, 3)` uint8 RGB arrays, sorted by path."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise VidgenError(f"{folder}: image folder not found")
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < min_size:
            continue
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not images:
        raise VidgenError(f"{folder}: no readable images (of at least {min_size} px)")
    return images


def split_holdout(images: list[np.ndarray], every: int = 10) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Deterministic train/validation split: every `every`-th image is held out."""
    held = [im for i, im in enumerate(images) if i % every == every - 1]
    kept = [im for i, im in enumerate(images) if i % every != every - 1]
    return kept, held


def random_crops(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator,
                 scale_range: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """`(count, 3, size, size)` float crops in [0, 1], randomly rescaled, flipped and rotated."""
    import cv2

    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        image = images[rng.integers(len(images))]
        scale = rng.uniform(*scale_range)
        if scale != 1.0:
            h, w = image.shape[:2]
            scale = max(scale, (size + 1) / min(h, w))
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
        crop = image[y:y + size, x:x + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = np.rot90(crop, rng.integers(4))
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any],
                 half: bool = True) -> None:
    """Write a safetensors file (fp16 by default, to keep shipped files small) with JSON metadata."""
    from safetensors.torch import save_file

    tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={"vidgen": json.dumps(metadata)})
    give_default_permissions(path)  # safetensors writes the file private (0600)


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file (no pickle) or a `.pt/.pth` state dict (`weights_only=True`): (tensors, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise VidgenError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                meta = json.loads((f.metadata() or {}).get("vidgen", "{}"))
                return {k: f.get_tensor(k).float() for k in f.keys()}, meta
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise VidgenError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in ("params_ema", "params", "state_dict", "model", "generator", "G"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    return {k: v.float() for k, v in state.items() if isinstance(v, torch.Tensor)}, {}


def load_spandrel_image_model(tensors: dict[str, torch.Tensor], path: str | os.PathLike, device: torch.device,
                              not_ours: str) -> Any:
    """A checkpoint of the field (ESRGAN, SwinIR, DnCNN, ...) through the optional `spandrel` library:
    its `ImageModelDescriptor` for an RGB → RGB model, on `device`. `not_ours` starts the error messages
    (e.g. "not a vidgen sr checkpoint")."""
    try:
        from spandrel import ImageModelDescriptor, ModelLoader
    except ImportError:
        raise VidgenError(f"{path}: {not_ours}; other architectures load through spandrel: "
                          "pip install 'vidgen[models]'") from None
    try:
        descriptor = ModelLoader(device).load_from_state_dict(tensors)
    except Exception as exc:
        raise VidgenError(f"{path}: {not_ours}, and spandrel cannot load it ({type(exc).__name__}: {exc})") from None
    if (not isinstance(descriptor, ImageModelDescriptor) or descriptor.input_channels != 3
            or descriptor.output_channels != 3):
        raise VidgenError(f"{path}: {descriptor.architecture.name} is not an RGB image-to-image model")
    return descriptor


def command_line() -> str:
    """The command that is running, for recording beside trained weights."""
    return " ".join(["vidgen"] + sys.argv[1:]) if Path(sys.argv[0]).name == "vidgen" else " ".join(sys.argv)


def set_seed(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
