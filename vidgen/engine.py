"""The streaming engine: decode → processor chain → encode, in three threads with bounded queues."""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from vidgen.errors import VidgenError
from vidgen.processor import Processor, ProcessorContext, VideoMeta
from vidgen.video import DecodedFrame, EncodeSettings, VideoReader, VideoWriter

if TYPE_CHECKING:
    import av
    import numpy as np
    import torch

    from vidgen.mediaio import MediaIO

QUEUE_FRAMES = 16
_DONE = object()
# Set by the `vidgen` command's Ctrl-C handler. Python drops a KeyboardInterrupt raised inside a callback
# (a weak-reference callback of the import machinery, say), so `run` also checks this between frames and
# before it commits the output: a swallowed Ctrl-C still stops the run and leaves nothing behind.
INTERRUPT_REQUESTED = threading.Event()


def _raise_if_interrupted() -> None:
    if INTERRUPT_REQUESTED.is_set():
        raise KeyboardInterrupt


@dataclass
class RunResult:
    """Summary of one `run`."""

    frames: int
    seconds: float
    output: Path


class _Worker(threading.Thread):
    """A thread whose exception is kept in `error`, for the thread on the other side of a queue."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def _raise_if_gone(peer: threading.Thread) -> None:
    """Raise `peer`'s error when it has ended with one; a one-line error when it ended without a word."""
    if peer.is_alive():
        return
    error = getattr(peer, "error", None)
    if error is not None:
        raise error
    raise VidgenError(f"internal error: thread {peer.name} ended without finishing its work")


def _put(q: queue.Queue, item: Any, stop: threading.Event, consumer: threading.Thread) -> bool:
    """Put `item` on `q`, waiting while it is full; False when `stop` is set, and the consumer's error
    when the thread that empties `q` has ended (so a full queue can never block for ever)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            _raise_if_gone(consumer)
    return False


def _get(q: queue.Queue, stop: threading.Event, producer: threading.Thread) -> Any:
    """The next item of `q`; `_DONE` when `stop` is set, and the producer's error when the thread that
    fills `q` has ended without sending `_DONE` (so an empty queue can never block for ever)."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not producer.is_alive():
                try:
                    return q.get_nowait()  # it may have put its last item just before ending
                except queue.Empty:
                    _raise_if_gone(producer)
    return _DONE


def check_output_path(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse to write over the input, over an existing file without `overwrite`, or into a bad folder."""
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise VidgenError(f"{dst}: output is the input file; choose another output path")
    if dst.is_dir():
        raise VidgenError(f"{dst}: is a directory; give an output file name")
    if dst.exists() and not overwrite:
        raise VidgenError(f"{dst}: already exists (use --overwrite to replace it)")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise VidgenError(f"{parent}: output folder does not exist")
    if not os.access(parent, os.W_OK):
        raise VidgenError(f"{parent}: output folder is not writable")


def temporary_output(dst: Path) -> Path:
    """An empty hidden file beside `dst` (same suffix, so the muxer picks the same format) to write into
    and rename over `dst` only on success."""
    fd, name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix or ".mp4", dir=dst.parent or ".")
    os.close(fd)
    give_default_permissions(name)  # mkstemp makes it private
    return Path(name)


def give_default_permissions(path: str | os.PathLike) -> None:
    """Set a new file's mode to what `open()` would have given it (0666 less the umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def setup_processors(
    processors: list[Processor], reader: VideoReader, device: torch.device, dtype: torch.dtype,
    log: Callable[[str], None],
) -> None:
    """Call `setup` on each processor in chain order, telling each the frame size it will receive."""
    width, height = reader.width, reader.height
    for processor in processors:
        meta = VideoMeta(width, height, float(reader.rate), reader.estimated_frames, reader.path)
        processor.setup(ProcessorContext(device, dtype, meta, log))
        width, height = processor.output_size(width, height)


def run(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    processors: list[Processor],
    *,
    encode: EncodeSettings | None = None,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    strict: bool = False,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    io: MediaIO | None = None,
) -> RunResult:
    """Process video `src` through `processors` (in order) and write `dst`.

    The result is written to a temporary file beside `dst` and renamed only when everything succeeded.
    With no processors, frames go from decoder to encoder as decoded (no RGB round trip). Damaged input
    is decoded as far as it can be and summed up in one warning at the end; `strict` makes any damage
    an error instead. `io` sets how the input is read and the output staged (`vidgen.mediaio`: image
    sequences, a window of a video).
    """
    src, dst = Path(src), Path(dst)
    from vidgen.mediaio import VIDEO_FILES

    io = io or VIDEO_FILES
    reader = io.open_reader(src, strict)
    try:
        check_output_path(src, dst, overwrite)
        compute_device = prepare_processors(processors, reader, device, precision, log)
        tmp = io.stage(dst)
    except BaseException:
        reader.close()
        raise
    writer: VideoWriter | None = None
    threads: list[_Worker] = []
    start = time.perf_counter()
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    processed: queue.Queue = queue.Queue(QUEUE_FRAMES)
    count = 0

    caller = threading.current_thread()  # the compute side of both queues

    def decode() -> None:
        for frame in reader.frames(rgb=bool(processors)):
            if not _put(decoded, frame, stop, caller):
                return
        _put(decoded, _DONE, stop, caller)

    def encode_loop() -> None:
        while True:
            item = _get(processed, stop, caller)
            if item is _DONE:
                return
            writer.write(*item)

    def decoded_frames() -> Iterator[DecodedFrame]:
        while True:
            item = _get(decoded, stop, decoder)
            if item is _DONE:
                break
            yield item

    try:
        writer = io.open_writer(tmp, reader, encode or EncodeSettings(), lambda message: log(f"warning: {message}"))
        decoder = _Worker(decode, "vidgen-decode")
        encoder = _Worker(encode_loop, "vidgen-encode")
        threads = [decoder, encoder]
        decoder.start()
        encoder.start()
        bar = _progress_bar(reader.estimated_frames, progress)
        for item in encodable_frames(decoded_frames(), processors, compute_device, reader.deep):
            _raise_if_interrupted()
            _put(processed, item, stop, encoder)
            count += 1
            bar.update(1)
        _put(processed, _DONE, stop, encoder)
        encoder.join()
        if encoder.error is not None:
            raise encoder.error
        bar.close()
        writer.close()
        writer = None
        _raise_if_interrupted()
        io.commit(tmp, dst)
        for warning in reader.warnings():
            log(f"warning: {warning}")
    except BaseException:
        stop.set()
        for thread in threads:  # they may be inside PyAV: closing the files under them can crash
            if thread.ident is not None:  # started (an interrupt can come between creating and starting them)
                thread.join()
        for processor in processors:
            processor.abort()
        if writer is not None:
            writer.abort()
        io.discard(tmp)
        raise
    finally:
        stop.set()
        reader.close()
    return RunResult(count, time.perf_counter() - start, dst)


def prepare_processors(
    processors: list[Processor], reader: VideoReader, device: str, precision: str, log: Callable[[str], None]
) -> torch.device | None:
    """Resolve `device` and `precision` and set up `processors` for `reader`'s stream; the device (None,
    and torch is not even imported, when there are no processors)."""
    if not processors:
        return None
    from vidgen.compute import compute_dtype, resolve_device

    compute_device = resolve_device(device)
    setup_processors(processors, reader, compute_device, compute_dtype(compute_device, precision), log)
    return compute_device


def encodable_frames(
    frames: Iterable[DecodedFrame], processors: list[Processor], device: torch.device | None, deep: bool
) -> Iterator[tuple[np.ndarray | av.VideoFrame, int | None, int]]:
    """`(image, pts, index)` for `VideoWriter.write`, in order: the processed RGB frames, or with no
    processors the decoded frames themselves (decoded with `rgb=False`), untouched."""
    if not processors:
        return ((frame.picture, frame.pts, frame.index) for frame in frames)
    from vidgen.compute import process_stream

    return process_stream(frames, processors, device, deep)


def _progress_bar(total: int | None, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=not enabled, dynamic_ncols=True, leave=False)
