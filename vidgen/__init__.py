"""vidgen: stream video through a chain of pluggy-registered (generative) processors."""

import importlib
from typing import TYPE_CHECKING, Any

from vidgen.errors import VidgenError
from vidgen.hookspecs import hookimpl
from vidgen.processor import FrameGroup, Option, Processor, ProcessorContext, VideoMeta
from vidgen.video import EncodeSettings, VideoInfo, probe

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vidgen.api import ReadyProcessor

# Names whose modules import torch load on first use, so `import vidgen` (and a plain re-encode or
# `vidgen info`) does not spend a second importing torch.
_LAZY = {
    "ReadyProcessor": "vidgen.api",
    "chain": "vidgen.api",
    "run": "vidgen.api",
    "iter_groups": "vidgen.compute",
    "frames_to_uint8": "vidgen.compute",
    "uint8_to_frames": "vidgen.compute",
}


def processor(name: str, device: str = "auto", precision: str = "auto", **options: Any) -> "ReadyProcessor":
    """A ready processor `name` with `options`, e.g. `vidgen.processor("sr", scale=2)(frames)`: a
    `ReadyProcessor` (defined here, not lazily, because `vidgen.processor` is also a submodule)."""
    from vidgen.api import processor as ready_processor

    return ready_processor(name, device, precision, **options)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vidgen' has no attribute {name!r}")


__all__ = [
    "EncodeSettings",
    "FrameGroup",
    "Option",
    "Processor",
    "ProcessorContext",
    "ReadyProcessor",
    "VideoInfo",
    "VideoMeta",
    "VidgenError",
    "chain",
    "frames_to_uint8",
    "hookimpl",
    "iter_groups",
    "probe",
    "processor",
    "run",
    "uint8_to_frames",
]
