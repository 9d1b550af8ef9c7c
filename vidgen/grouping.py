"""Turn a stream of frames into the overlapping groups each processor asks for, and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from vidgen.errors import VidgenError
from vidgen.processor import FrameGroup, Processor


@dataclass
class Frame:
    """One frame in flight: `(3, H, W)` float in [0, 1] on the compute device."""

    pixels: torch.Tensor
    index: int
    pts: int | None


class Stage:
    """Feeds one processor: buffers frames into groups of `group_size` core frames with context.

    Every input frame is the core of exactly one group; context frames are the neighbours that exist
    (fewer at the start and end of the stream). Output frames must come back once each, in order.
    """

    def __init__(self, processor: Processor) -> None:
        if processor.group_size < 1 or min(processor.context) < 0:
            raise VidgenError(f"{processor.name}: group_size must be >= 1 and context >= 0")
        self.processor = processor
        self.size = processor.group_size
        self.before, self.after = processor.context
        self.buffer: list[Frame] = []
        self.next_core = 0  # position in buffer of the first frame not yet sent as core
        self.expected: list[int] = []  # indices sent as core and not yet returned

    def push(self, frame: Frame) -> Iterator[Frame]:
        """Add a frame; yield processed frames that became ready."""
        self.buffer.append(frame)
        while len(self.buffer) - self.next_core >= self.size + self.after:
            yield from self._emit(self.size, is_last=False)

    def flush(self) -> Iterator[Frame]:
        """End of stream: process what is left and let the processor flush its own buffers."""
        while self.next_core < len(self.buffer):
            count = min(self.size, len(self.buffer) - self.next_core)
            yield from self._emit(count, is_last=self.next_core + count == len(self.buffer))
        yield from self._accept(self._call(self.processor.finish))
        if self.expected:
            raise VidgenError(f"{self.processor.name}: {len(self.expected)} frame(s) were never returned")

    def _emit(self, count: int, is_last: bool) -> Iterator[Frame]:
        start = max(0, self.next_core - self.before)
        stop = min(len(self.buffer), self.next_core + count + self.after)
        chosen = self.buffer[start:stop]
        core = slice(self.next_core - start, self.next_core - start + count)
        group = FrameGroup(
            torch.stack([f.pixels for f in chosen]),
            [f.index for f in chosen],
            [f.pts for f in chosen],
            core,
            is_last,
        )
        self.expected.extend(group.core_indices)
        self.next_core += count
        drop = max(0, self.next_core - self.before)
        del self.buffer[:drop]
        self.next_core -= drop
        yield from self._accept(self._call(self.processor.process, group))

    def _call(self, method: Callable[..., FrameGroup | None], *args: FrameGroup) -> FrameGroup | None:
        """Run a processor method; its unexpected exceptions become one-line errors naming it."""
        try:
            return method(*args)
        except VidgenError:
            raise
        except Exception as exc:
            where = f"frames {args[0].core_indices[0]}-{args[0].core_indices[-1]}" if args else "finish"
            raise VidgenError(f"{self.processor.name} failed on {where}: {type(exc).__name__}: {exc}") from exc

    def _accept(self, result: FrameGroup | None) -> Iterator[Frame]:
        if result is None:
            return
        if not isinstance(result, FrameGroup):
            raise VidgenError(f"{self.processor.name}: process() must return a FrameGroup or None")
        count = len(result.indices)
        if result.indices != self.expected[:count]:
            raise VidgenError(
                f"{self.processor.name}: returned frames {result.indices[:3]}... but frames "
                f"{self.expected[:3]}... were due (frames must come back once each, in order)"
            )
        del self.expected[:count]
        for pixels, index, pts in zip(result.frames, result.indices, result.pts):
            yield Frame(pixels, index, pts)


class Chain:
    """Processors applied in order, each with its own grouping."""

    def __init__(self, processors: Iterable[Processor]) -> None:
        self.stages = [Stage(p) for p in processors]

    def push(self, frame: Frame) -> Iterator[Frame]:
        yield from self._through(0, [frame])

    def flush(self) -> Iterator[Frame]:
        for position, stage in enumerate(self.stages):
            yield from self._through(position + 1, stage.flush())

    def _through(self, position: int, frames: Iterable[Frame]) -> Iterator[Frame]:
        if position == len(self.stages):
            yield from frames
            return
        stage = self.stages[position]
        for frame in frames:
            yield from self._through(position + 1, stage.push(frame))
