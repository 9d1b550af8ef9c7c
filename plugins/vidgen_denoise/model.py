"""RED-Net-style denoisers: a strided-convolution encoder and transposed-convolution decoder with symmetric
skip connections, predicting the noise residual of the centre frame of K stacked neighbouring frames; one network
on explicitly aligned neighbours (`TemporalREDNet`), or two stages of it on raw neighbours (`TwoStageREDNet`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


class ResidualBlock(nn.Module):
    """`x + conv(relu(conv(x)))`. The second convolution starts at zero, so a new block is the identity and a
    trained network grown by blocks computes what it computed before (training continues from there)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = conv(channels, channels)
        self.second = conv(channels, channels)
        nn.init.zeros_(self.second.weight)
        nn.init.zeros_(self.second.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(F.relu(self.first(x), inplace=True)).add_(x)


class TemporalREDNet(nn.Module):
    """Denoise the centre of `frames` stacked RGB frames, given an optional per-pixel noise-level map.

    Input `(B, 3 * frames + 1, H, W)`: the frames in time order, then the noise level σ/255 (0 = unknown).
    Output `(B, 3, H, W)`: the restored centre frame (centre input minus the predicted residual).
    Encoder: a full-resolution convolution, then strided convolutions to 1/2 and 1/4 resolution (`width`,
    2×, 4× channels); a 1/4-resolution body (`body_layers` convolutions, then `quarter_blocks` residual
    blocks) with a residual skip; decoder: transposed convolutions back up, each adding the encoder features
    of the same resolution (RED-Net's symmetric skips), with `half_blocks` residual blocks at 1/2 resolution.
    Most of the computation of a grown network is at 1/4 and 1/2 resolution.
    The processor warps the neighbours onto the centre frame with optical flow before this network sees them.
    """

    aligned_input = True  # the processor aligns the neighbours first

    def __init__(self, frames: int = 5, width: int = 24, body_layers: int = 3, quarter_blocks: int = 0,
                 half_blocks: int = 0) -> None:
        super().__init__()
        self.frames, self.width, self.body_layers = frames, width, body_layers
        self.quarter_blocks, self.half_blocks = quarter_blocks, half_blocks
        self.head = conv(3 * frames + 1, width)
        self.down1 = conv(width, 2 * width, stride=2)
        self.enc1 = conv(2 * width, 2 * width)
        self.down2 = conv(2 * width, 4 * width, stride=2)
        self.body = nn.ModuleList(conv(4 * width, 4 * width) for _ in range(body_layers))
        self.quarter_refine = nn.Sequential(*(ResidualBlock(4 * width) for _ in range(quarter_blocks)))
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1)
        self.dec1 = conv(2 * width, 2 * width)
        self.half_refine = nn.Sequential(*(ResidualBlock(2 * width) for _ in range(half_blocks)))
        self.up1 = nn.ConvTranspose2d(2 * width, width, 4, 2, 1)
        self.tail = conv(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 4, -width % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        first = 3 * (self.frames // 2)
        centre = x[:, first:first + 3]
        full = self.head(x).relu_()  # in place on fresh convolution outputs: fewer passes over full-size maps
        half = self.enc1(self.down1(full).relu_()).relu_()
        quarter = self.down2(half).relu_()
        deep = quarter
        for layer in self.body:
            deep = layer(deep).relu_()
        deep = self.quarter_refine(deep)
        half_up = self.half_refine(self.dec1(self.up2(deep + quarter).add_(half).relu_()).relu_())
        full_up = self.up1(half_up).add_(full).relu_()
        return (centre - self.tail(full_up))[..., :height, :width]

    def config(self) -> dict[str, int]:
        return {"frames": self.frames, "width": self.width, "body_layers": self.body_layers,
                "quarter_blocks": self.quarter_blocks, "half_blocks": self.half_blocks}


class TwoStageREDNet(nn.Module):
    """FastDVDnet-style implicit alignment (Tassano et al. 2020) with RED-Net stages: no optical flow.

    Input `(B, 3 * frames + 1, H, W)`, laid out as `TemporalREDNet`'s but with raw (unaligned) neighbours.
    Stage 1 (`triplet`, a 3-frame `TemporalREDNet` shared by all windows) denoises the centre of each window
    of 3 consecutive frames: `frames - 2` windows, e.g. (t-2, t-1, t), (t-1, t, t+1), (t, t+1, t+2) for 5
    frames; stage 2 (`fusion`, a `(frames - 2)`-frame `TemporalREDNet`) restores frame t from those outputs
    (clamped to [0, 1]) and the same noise-level map. Both stages have the shape given, symmetric skips and
    residual outputs. Output `(B, 3, H, W)`. A stream can reuse each window's stage-1 output for the next
    frames (`triplet_windows`, as the processor does).
    """

    aligned_input = False  # the network aligns the neighbours itself: the processor gives them unwarped
    arch = "two-stage"

    def __init__(self, frames: int = 5, width: int = 24, body_layers: int = 3, quarter_blocks: int = 0,
                 half_blocks: int = 0) -> None:
        super().__init__()
        if frames < 3 or frames % 2 == 0:
            raise ValueError(f"a two-stage network takes an odd number of frames >= 3, got {frames}")
        self.frames = frames
        self.triplet = TemporalREDNet(3, width, body_layers, quarter_blocks, half_blocks)
        self.fusion = TemporalREDNet(frames - 2, width, body_layers, quarter_blocks, half_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = x[:, -1:]
        denoised = [self.triplet(torch.cat([x[:, 3 * start:3 * start + 9], level], 1)).clamp(0, 1)
                    for start in range(self.frames - 2)]
        return self.fusion(torch.cat([*denoised, level], 1))

    def config(self) -> dict[str, int | str]:
        return {"arch": self.arch, **self.triplet.config(), "frames": self.frames}


def triplet_windows(chosen: list[int]) -> list[tuple[int, int, int]]:
    """The stage-1 windows of a `TwoStageREDNet` input made of the frames `chosen` (indices, in input order)."""
    return [tuple(chosen[start:start + 3]) for start in range(len(chosen) - 2)]
