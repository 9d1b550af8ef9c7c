"""Deterministic test processors for the distributed tests; a module of its own so Ray workers can import it."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import torch

from vidgen import FrameGroup, Option, Processor, ProcessorContext, VidgenError


class NeighbourMean(Processor):
    """Each frame becomes the mean of itself and its neighbours: output depends on context frames."""

    name = "neighbour-mean"

    def __init__(self) -> None:
        super().__init__()
        self.group_size, self.context = 4, (2, 1)

    def process(self, group: FrameGroup) -> FrameGroup:
        frames = group.frames
        out = []
        for position in range(len(group.indices))[group.core]:
            window = frames[max(0, position - 1): position + 2]
            out.append(window.sum(0) / len(window))
        return group.with_frames(torch.stack(out))


class TrailingMax(Processor):
    """Each frame becomes the pixel-wise max of itself and the 3 frames before: state across groups."""

    name = "trailing-max"
    warmup_frames = 3

    def __init__(self) -> None:
        super().__init__()
        self.group_size = 5
        self.history: deque[torch.Tensor] = deque(maxlen=3)

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        self.history.clear()

    def process(self, group: FrameGroup) -> FrameGroup:
        out = []
        for frame in group.core_frames:
            out.append(torch.stack([*self.history, frame]).amax(0))
            self.history.append(frame)
        return group.with_frames(torch.stack(out))


class NeedsWidth64(Processor):
    """Passes frames through, but refuses videos narrower than 64 pixels (an error raised in a worker)."""

    name = "needs-width-64"

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        if context.video.width < 64:
            raise VidgenError(f"needs-width-64: video is {context.video.width} pixels wide")

    def process(self, group: FrameGroup) -> FrameGroup:
        return group.with_frames(group.core_frames)


class CrashOnce(Processor):
    """Kills its worker process the first time it sees frame 20 (when `marker` does not exist yet)."""

    name = "crash-once"
    options = (Option("marker", Path, None, "file created just before the crash"),)

    def process(self, group: FrameGroup) -> FrameGroup:
        if 20 in group.core_indices and not self.settings.marker.exists():
            self.settings.marker.write_text("crashed")
            os._exit(1)
        return group.with_frames(group.core_frames)
