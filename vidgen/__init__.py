"""vidgen: stream video through a chain of pluggy-registered (generative) processors."""

from vidgen.api import ReadyProcessor, chain, processor, run
from vidgen.engine import iter_groups
from vidgen.errors import VidgenError
from vidgen.hookspecs import hookimpl
from vidgen.processor import FrameGroup, Option, Processor, ProcessorContext, VideoMeta
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
    "hookimpl",
    "iter_groups",
    "probe",
    "processor",
    "run",
]
