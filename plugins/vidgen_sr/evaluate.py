"""Quality measures of the SR papers: Y-channel PSNR/SSIM with a border of `scale` pixels cropped."""

from __future__ import annotations

import numpy as np
import torch

from vidgen.metrics import psnr, rgb_to_y, ssim


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """`(3, H, W)` float in [0, 1] → `(H, W, 3)` uint8 (rounded, as a video encoder would receive it)."""
    return image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def y_psnr_ssim(output: np.ndarray, reference: np.ndarray, scale: int) -> tuple[float, float]:
    """Y-PSNR (dB) and Y-SSIM of `(H, W, 3)` uint8 images, ignoring `scale` pixels at each border."""
    crop = (slice(scale, -scale), slice(scale, -scale))
    y_out, y_ref = rgb_to_y(output)[crop], rgb_to_y(reference)[crop]
    return psnr(y_out, y_ref), ssim(y_out, y_ref)


def crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop `(H, W, 3)` so that H and W are multiples of `multiple` (bottom/right rows dropped)."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]
