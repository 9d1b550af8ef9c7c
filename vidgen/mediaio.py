"""How a run reads its input and stages its output: video files by default; image sequences
(vidgen.sequences) and windows of a video (vidgen.trim) swap parts of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vidgen.engine import temporary_output
from vidgen.video import VideoReader, VideoWriter


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


@dataclass(frozen=True)
class MediaIO:
    """`open_reader(src, strict)` gives a reader (the `VideoReader` interface); `open_writer(tmp, reader, settings,
    warn)` a writer (the `VideoWriter` interface) into `stage(dst)`, which `commit(tmp, dst)` puts in place
    on success and `discard(tmp)` removes on failure."""

    open_reader: Callable[[Path, bool], Any] = VideoReader
    open_writer: Callable[..., Any] = VideoWriter
    stage: Callable[[Path], Path] = temporary_output
    commit: Callable[[Path, Path], None] = os.replace
    discard: Callable[[Path], None] = remove_file


VIDEO_FILES = MediaIO()
