"""RED-Net-style denoiser: a strided-convolution encoder and transposed-convolution decoder with symmetric
skip connections, predicting the noise residual of the centre frame of K stacked neighbouring frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


class TemporalREDNet(nn.Module):
    """Denoise the centre of `frames` stacked RGB frames, given an optional per-pixel noise-level map.

    Input `(B, 3 * frames + 1, H, W)`: the frames in time order, then the noise level σ/255 (0 = unknown).
    Output `(B, 3, H, W)`: the restored centre frame (centre input minus the predicted residual).
    The input is folded 2×2 into channels (as in FFDNet), so every convolution runs at 1/2 or 1/4
    resolution: encoder convolutions (one strided), a 1/4-resolution body with a residual skip, and a
    transposed-convolution decoder that adds the encoder features of the same resolution (RED-Net's
    symmetric skips); the residual is unfolded back to full resolution.
    """

    def __init__(self, frames: int = 5, width: int = 48, body_layers: int = 4) -> None:
        super().__init__()
        self.frames, self.width, self.body_layers = frames, width, body_layers
        self.head = conv(4 * (3 * frames + 1), width)
        self.enc = conv(width, width)
        self.down = conv(width, 2 * width, stride=2)
        self.body = nn.ModuleList(conv(2 * width, 2 * width) for _ in range(body_layers))
        self.up = nn.ConvTranspose2d(2 * width, width, 4, 2, 1)
        self.dec = conv(width, width)
        self.tail = conv(width, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 4, -width % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        first = 3 * (self.frames // 2)
        centre = x[:, first:first + 3]
        half = F.relu(self.head(F.pixel_unshuffle(x, 2)))
        skip = F.relu(self.enc(half))
        quarter = F.relu(self.down(skip))
        deep = quarter
        for layer in self.body:
            deep = F.relu(layer(deep))
        up = F.relu(self.up(deep + quarter) + skip)
        residual = F.pixel_shuffle(self.tail(F.relu(self.dec(up)) + half), 2)
        return (centre - residual)[..., :height, :width]

    def config(self) -> dict[str, int]:
        return {"frames": self.frames, "width": self.width, "body_layers": self.body_layers}
