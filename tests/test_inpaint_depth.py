"""inpaint keeps the input's bit depth outside the pixels it fills (10-bit in, 10-bit out)."""

from __future__ import annotations

import numpy as np
import torch

import vidgen


def test_pixels_outside_the_fill_keep_10_bit_values() -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 1024, (6, 3, 48, 64)).float() / 1023  # a 10-bit grid, not an 8-bit one
    masks = np.zeros((6, 48, 64), bool)
    masks[:, 16:28, 20:36] = True  # static: propagation finds nothing, the GAN fills and smoothing runs
    out = vidgen.processor("inpaint", device="cpu", precision="fp32", mask=masks, dilate=0, iterations=3,
                           pool=2, group=3)(frames)
    outside = torch.from_numpy(~masks)[:, None].expand_as(frames)
    assert torch.equal(out[outside], frames[outside])
    assert not torch.equal(out[~outside], frames[~outside])  # the hole was filled
