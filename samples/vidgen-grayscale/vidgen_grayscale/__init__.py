"""An example third-party vidgen plugin: a grayscale processor, installed with pip."""

from __future__ import annotations

from typing import Callable

import torch

import vidgen
from vidgen import FrameGroup, Option, Processor

LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)  # BT.709


class Grayscale(Processor):
    """Replace colour by BT.709 luma, blended by `strength`."""

    name = "grayscale"
    description = "Convert to grey (BT.709 luma), keeping three channels."
    options = (Option("strength", float, 1.0, "0 = unchanged, 1 = fully grey"),)

    def process(self, group: FrameGroup) -> FrameGroup:
        frames = group.core_frames  # (N, 3, H, W) in [0, 1]
        weights = torch.tensor(LUMA_WEIGHTS, device=frames.device).view(1, 3, 1, 1)
        luma = (frames * weights).sum(1, keepdim=True)
        strength = self.settings.strength
        return group.with_frames(frames * (1 - strength) + luma * strength)


@vidgen.hookimpl
def vidgen_register_processors(register: Callable[[type[Processor]], None]) -> None:
    register(Grayscale)
