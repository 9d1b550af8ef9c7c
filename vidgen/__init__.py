"""vidgen: stream video through a chain of pluggy-registered (generative) processors."""

import os

# Decode, compute and encode share the cores: torch's OpenMP threads must sleep, not spin, while they
# wait, or they starve the encoder's threads (measured: 2x slower no-plugin runs with spinning).
# Takes effect only when vidgen is imported before torch; set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vidgen.api import ReadyProcessor, chain, processor, run
from vidgen.engine import iter_groups
from vidgen.errors import VidgenError
from vidgen.hookspecs import hookimpl
from vidgen.processor import (FrameGroup, Option, Processor, ProcessorContext, VideoMeta, frames_to_uint8,
                              uint8_to_frames)
from vidgen.video import EncodeSettings, VideoInfo, probe

__version__ = "0.1.0"

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
