"""Temporal steadiness for per-frame super-resolution: each upscaled frame is pulled towards the previous output
frame, moved onto it along the optical flow of the low-resolution input, wherever the two agree."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MIN_FLOW_SIZE = 16  # smaller inputs are not steadied (DIS optical flow needs at least 12 pixels)
AGREEMENT = 0.3  # luma difference (0-1 scale) beyond which the moved previous frame is not used at all


def luma(frame: torch.Tensor) -> np.ndarray:
    """`(3, h, w)` float in [0, 1] → `(h, w)` uint8 luma (BT.601 weights) for OpenCV's optical flow."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=frame.device).view(3, 1, 1)
    return (frame.float() * weights).sum(0).mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def consistent_flow(current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS flow `(h, w, 2)` from `current` to `previous` (uint8 luma) and a `(h, w)` bool mask of the pixels
    that pass the forward–backward check (|b + f(x + b)|² ≤ 0.01 (|b|² + |f|²) + 0.5, Lai et al.) and whose
    source lies inside the frame."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    backward = dis.calc(current, previous, None)
    forward = dis.calc(previous, current, None)
    height, width = current.shape
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32) + backward
    forward_at_source = cv2.remap(forward, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.sum((backward + forward_at_source) ** 2, -1)
    bound = 0.01 * (np.sum(backward**2, -1) + np.sum(forward_at_source**2, -1)) + 0.5
    inside = (grid[..., 0] >= 0) & (grid[..., 0] <= width - 1) & (grid[..., 1] >= 0) & (grid[..., 1] <= height - 1)
    return backward, (round_trip <= bound) & inside


def warp_upscaled(image: torch.Tensor, flow: np.ndarray, scale: int) -> torch.Tensor:
    """Sample `image` `(3, H, W)` (H = h·scale) at `x + flow(x)`, with the low-resolution `flow` `(h, w, 2)`
    upsampled (bilinear) and multiplied by `scale`."""
    height, width = image.shape[-2:]
    flow_hr = F.interpolate(torch.from_numpy(flow).permute(2, 0, 1)[None].to(image.device), size=(height, width),
                            mode="bilinear", align_corners=False)[0] * scale
    ys, xs = torch.meshgrid(torch.arange(height, device=image.device), torch.arange(width, device=image.device),
                            indexing="ij")
    grid = torch.stack([(xs + 0.5 + flow_hr[0]) / width, (ys + 0.5 + flow_hr[1]) / height], -1) * 2 - 1
    return F.grid_sample(image[None].float(), grid[None], mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


class Steadier:
    """Recursive temporal filter of a stream of upscaled frames: output_t = sr_t + w · (moved output_{t−1} − sr_t),
    with w = `weight` where the input's flow passes the consistency check, fading to 0 as the luma difference
    between the moved previous output and sr_t grows to `AGREEMENT` (new content, occlusions, flow errors keep
    sr_t). State: the previous input and output frame."""

    def __init__(self, weight: float, scale: int) -> None:
        self.weight, self.scale = weight, scale
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new stream starts)."""
        self.previous_luma: np.ndarray | None = None
        self.previous_output: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
        """`inputs` `(N, 3, h, w)` and their per-frame upscales `(N, 3, h·s, w·s)`, in stream order, float in
        [0, 1] → the steadied upscales, same shape."""
        if min(inputs.shape[-2:]) < MIN_FLOW_SIZE:
            return upscaled
        outputs = []
        for frame, output in zip(inputs, upscaled):
            current = luma(frame)
            if self.previous_output is not None and self.previous_luma.shape == current.shape:
                flow, valid = consistent_flow(current, self.previous_luma)
                moved = warp_upscaled(self.previous_output, flow, self.scale)
                difference = moved - output
                agreement = (1 - difference.mean(0, keepdim=True).abs() / AGREEMENT).clamp_(0, 1)
                valid_hr = F.interpolate(torch.from_numpy(valid.astype(np.float32))[None, None].to(output.device),
                                         size=output.shape[-2:], mode="nearest")[0]
                output = output + self.weight * agreement * valid_hr * difference
            outputs.append(output)
            self.previous_luma, self.previous_output = current, output
        return torch.stack(outputs)
