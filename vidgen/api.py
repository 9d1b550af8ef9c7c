"""The library API for media pipelines: ready processors, whole-file runs, processor lookup."""

from __future__ import annotations

import os
from typing import Any, Sequence, Union

import numpy as np
import torch

from vidgen.compute import compute_dtype, frames_to_uint8, resolve_device, uint8_to_frames
from vidgen.engine import RunResult
from vidgen.engine import run as run_pipeline
from vidgen.grouping import Chain, Frame
from vidgen.mediaio import VIDEO_FILES
from vidgen.plugins import create_processor
from vidgen.processor import Processor, ProcessorContext, VideoMeta, log_message
from vidgen.trim import Trim
from vidgen.video import EncodeSettings

PluginSpec = Union[str, tuple[str, dict[str, Any]], Processor]


class ReadyProcessor:
    """A set-up processor (or chain) callable on whole clips.

    Call it on a `(T, H, W, 3)` uint8 array or a `(T, 3, H, W)` float tensor in [0, 1]; it returns the
    same kind. Each call is one stream: groups, context and flushing are handled as in `vidgen run`, and
    no state carries from one call to the next. Processors are set up (weights loaded) on the first call
    and again only when the frame size changes; later calls of the same size only `reset` them.
    Messages go to the `vidgen` logger (warnings show; `logging.basicConfig(level=logging.INFO)` shows all).
    """

    def __init__(self, processors: list[Processor], device: str = "auto", precision: str = "auto", fps: float = 25.0):
        self.processors = processors
        self.device = resolve_device(device)
        self.dtype = compute_dtype(self.device, precision)
        self.fps = fps
        self._size: tuple[int, int] | None = None

    def _start(self, width: int, height: int) -> None:
        """Set the processors up for frames of `width` × `height`, or reset them if they already are."""
        if self._size == (width, height):
            for processor in self.processors:
                processor.reset()
            return
        self._size = None
        size = width, height
        for processor in self.processors:
            processor.setup(ProcessorContext(self.device, self.dtype, VideoMeta(*size, self.fps), log_message))
            size = processor.output_size(*size)
        self._size = (width, height)

    def __call__(self, clip: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        as_array = isinstance(clip, np.ndarray)
        if as_array:
            if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
                raise ValueError(f"expected a (T, H, W, 3) uint8 array, got {clip.shape} {clip.dtype}")
            frames = uint8_to_frames(clip, self.device)
        else:
            if clip.ndim != 4 or clip.shape[1] != 3:
                raise ValueError(f"expected a (T, 3, H, W) float tensor, got {tuple(clip.shape)}")
            frames = clip.to(self.device, torch.float32)
        height, width = frames.shape[-2:]
        self._start(width, height)
        chain = Chain(self.processors)
        out: list[torch.Tensor] = []
        try:
            with torch.no_grad():
                for index, pixels in enumerate(frames):
                    out.extend(f.pixels for f in chain.push(Frame(pixels, index, index)))
                out.extend(f.pixels for f in chain.flush())
        except BaseException:
            for processor in self.processors:
                processor.abort()
            raise
        result = torch.stack(out).clamp(0, 1)
        if as_array:
            return frames_to_uint8(result)
        return result.to(clip.device)


def _build(spec: PluginSpec) -> Processor:
    if isinstance(spec, Processor):
        return spec
    if isinstance(spec, str):
        return create_processor(spec)
    name, options = spec
    return create_processor(name, **options)


def processor(name: str, device: str = "auto", precision: str = "auto", **options: Any) -> ReadyProcessor:
    """A ready processor `name` with `options`, e.g. `vidgen.processor("sr", scale=2)(frames)`."""
    return ReadyProcessor([create_processor(name, **options)], device, precision)


def chain(plugins: Sequence[PluginSpec], device: str = "auto", precision: str = "auto") -> ReadyProcessor:
    """Several processors applied in order, callable like `processor`."""
    return ReadyProcessor([_build(p) for p in plugins], device, precision)


def run(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    plugins: Sequence[PluginSpec] = (),
    *,
    encode: EncodeSettings | None = None,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    strict: bool = False,
    trim: Trim | None = None,
) -> RunResult:
    """Process video file `src` into `dst` through `plugins`: names, (name, options) pairs or processors.
    `trim=vidgen.trim.Trim(start=5, duration=10)` processes only that window (audio cut to match).
    Damaged input is decoded as far as it can be (`strict=True`: an error instead).
    Messages (processor set-up lines, warnings) go to the `vidgen` logger."""
    return run_pipeline(
        src, dst, [_build(p) for p in plugins], encode=encode, device=device, precision=precision,
        overwrite=overwrite, progress=progress, strict=strict, log=log_message,
        io=trim.apply(VIDEO_FILES) if trim else None,
    )
