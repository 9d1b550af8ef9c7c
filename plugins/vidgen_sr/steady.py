"""Temporal steadiness for per-frame super-resolution: each upscaled frame is pulled towards the previous output
frame, moved onto it along the optical flow of the low-resolution input, wherever the two agree."""

from __future__ import annotations

import numpy as np
import torch

from vidgen.metrics import flow_round_trip, pixel_coordinates

MIN_FLOW_SIZE = 16  # smaller inputs are not steadied (DIS optical flow needs at least 12 pixels)
AGREEMENT = 0.3  # luma difference (0-1 scale) beyond which the moved previous frame is not used at all
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601 weights


def luma(frame: torch.Tensor) -> np.ndarray:
    """`(3, h, w)` float in [0, 1] → `(h, w)` uint8 luma for OpenCV's optical flow."""
    rgb = frame.detach().float().permute(1, 2, 0).cpu().numpy()
    return np.clip(np.rint(rgb @ LUMA * 255), 0, 255).astype(np.uint8)


def consistent_flow(current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS flow `(h, w, 2)` from `current` to `previous` (uint8 luma) and a `(h, w)` bool mask of the pixels
    that pass the forward–backward check (|b + f(x + b)|² ≤ 0.01 (|b|² + |f|²) + 0.5, Lai et al.) and whose
    source lies inside the frame."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    backward = dis.calc(current, previous, None)
    forward = dis.calc(previous, current, None)
    _, inside, consistent = flow_round_trip(backward, forward)
    return backward, consistent & inside


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
        self.previous_output: np.ndarray | None = None

    def __call__(self, inputs: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
        """`inputs` `(N, 3, h, w)` and their per-frame upscales `(N, 3, h·s, w·s)`, in stream order, float in
        [0, 1] → the steadied upscales, same shape and device. Computed on the CPU with OpenCV (flow at the
        input's size, one bilinear remap at the output's)."""
        import cv2

        if min(inputs.shape[-2:]) < MIN_FLOW_SIZE:
            return upscaled
        height, width = upscaled.shape[-2:]
        grid = pixel_coordinates(height, width)  # cached per frame size
        results = upscaled.detach().float().permute(0, 2, 3, 1).cpu().numpy().copy()  # (N, H, W, 3), written in place
        for frame, output in zip(inputs, results):
            current = luma(frame)
            if self.previous_output is not None and self.previous_output.shape == output.shape:
                flow, valid = consistent_flow(current, self.previous_luma)
                source = grid + cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * self.scale
                difference = cv2.remap(self.previous_output, source[..., 0], source[..., 1], cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REPLICATE)
                difference -= output
                agreement = np.clip(1 - np.abs(cv2.cvtColor(difference, cv2.COLOR_RGB2GRAY)) / AGREEMENT, 0, 1)
                agreement *= self.weight * cv2.resize(valid.astype(np.float32), (width, height),
                                                      interpolation=cv2.INTER_NEAREST)
                difference *= agreement[..., None]
                output += difference
            self.previous_luma, self.previous_output = current, output.copy()  # the caller may change the result
        return torch.from_numpy(results).permute(0, 3, 1, 2).to(upscaled.device)
