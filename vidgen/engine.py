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
from typing import Any, Callable, Iterator

import numpy as np
import torch

from vidgen.errors import VidgenError
from vidgen.grouping import Chain, Frame
from vidgen.processor import FrameGroup, Processor, ProcessorContext, VideoMeta
from vidgen.video import DecodedFrame, EncodeSettings, VideoReader, VideoWriter

QUEUE_FRAMES = 16
_DONE = object()


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidgenError("--device cuda requested but no CUDA GPU is available (use --device auto or cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidgenError(f"unknown device {name!r} (use auto, cpu or cuda)") from None


def compute_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """'auto' → float16 on CUDA, bfloat16 on a CPU that has native bf16, else float32."""
    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        if device.type != "cuda":
            raise VidgenError("fp16 runs on CUDA only (use --precision bf16 or fp32 on the CPU)")
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX-512 BF16 or AMX (bf16 autocast is then 2-3x faster than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """`(H, W, 3)` uint8/uint16 → `(3, H, W)` float32 in [0, 1] on `device` (converted there)."""
    scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    if rgb.dtype == np.uint16:
        rgb = rgb.astype(np.int32)  # torch has no uint16 arithmetic on every device
    pixels = torch.from_numpy(rgb).to(device, non_blocking=True)
    return pixels.permute(2, 0, 1).float().div_(scale)


def to_array(pixels: torch.Tensor, deep: bool) -> np.ndarray:
    """`(3, H, W)` float in [0, 1] → contiguous `(H, W, 3)` uint8 (or uint16 when `deep`) on the CPU."""
    scale = 65535.0 if deep else 255.0
    values = pixels.detach().permute(1, 2, 0).float().mul(scale).round_().clamp_(0, scale)
    if deep:
        return np.ascontiguousarray(values.to(torch.int32).cpu().numpy().astype(np.uint16))
    return np.ascontiguousarray(values.to(torch.uint8).cpu().numpy())


@dataclass
class RunResult:
    """Summary of one `run`."""

    frames: int
    seconds: float
    output: Path


class _Worker(threading.Thread):
    """A thread whose exception is re-raised by `join_or_raise`."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event, producer: _Worker | None = None) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _DONE
            if producer is not None and not producer.is_alive():
                if producer.error is not None:
                    raise producer.error
                try:
                    return q.get_nowait()
                except queue.Empty:
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
    return Path(name)


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
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> RunResult:
    """Process video `src` through `processors` (in order) and write `dst`.

    The result is written to a temporary file beside `dst` and renamed only when everything succeeded.
    """
    src, dst = Path(src), Path(dst)
    reader = VideoReader(src)
    try:
        check_output_path(src, dst, overwrite)
        torch_device = resolve_device(device)
        dtype = compute_dtype(torch_device, precision)
        setup_processors(processors, reader, torch_device, dtype, log)
        tmp = temporary_output(dst)
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

    def decode() -> None:
        for frame in reader.frames():
            if not _put(decoded, frame, stop):
                return
        _put(decoded, _DONE, stop)

    def encode_loop() -> None:
        while True:
            item = _get(processed, stop)
            if item is _DONE:
                return
            writer.write(*item)

    try:
        writer = VideoWriter(tmp, reader, encode or EncodeSettings(), log)
        decoder = _Worker(decode, "vidgen-decode")
        encoder = _Worker(encode_loop, "vidgen-encode")
        threads = [decoder, encoder]
        decoder.start()
        encoder.start()
        chain = Chain(processors)
        bar = _progress_bar(reader.estimated_frames, progress)

        def emit(frames: Iterator[Frame]) -> None:
            nonlocal count
            for frame in frames:
                if encoder.error is not None:
                    raise encoder.error
                if not _put(processed, (to_array(frame.pixels, reader.deep), frame.pts, frame.index), stop):
                    return
                count += 1
                bar.update(1)

        with torch.no_grad():
            while True:
                item = _get(decoded, stop, decoder)
                if item is _DONE:
                    break
                assert isinstance(item, DecodedFrame)
                emit(chain.push(Frame(to_tensor(item.rgb, torch_device), item.index, item.pts)))
            if decoder.error is not None:
                raise decoder.error
            listed = reader.stream.frames
            if listed and reader.decoded_frames < listed:
                log(f"warning: {src} looks truncated: its header lists {listed} frames, "
                    f"{reader.decoded_frames} could be decoded")
            emit(chain.flush())
        _put(processed, _DONE, stop)
        encoder.join()
        if encoder.error is not None:
            raise encoder.error
        bar.close()
        writer.close()
        writer = None
        os.replace(tmp, dst)
    except BaseException:
        stop.set()
        for thread in threads:  # they may be inside PyAV: closing the files under them can crash
            thread.join()
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        stop.set()
        reader.close()
    return RunResult(count, time.perf_counter() - start, dst)


def _progress_bar(total: int | None, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=not enabled, dynamic_ncols=True, leave=False)


def iter_groups(
    src: str | os.PathLike, group_size: int = 8, context: tuple[int, int] = (0, 0), device: str = "cpu"
) -> Iterator[FrameGroup]:
    """Yield the `FrameGroup`s of video `src` as a processor would receive them (for library users)."""
    groups: list[FrameGroup] = []

    class Collect(Processor):
        name = "collect"

        def process(self, group: FrameGroup) -> FrameGroup:
            groups.append(group)
            return group.with_frames(group.core_frames)

    collector = Collect()
    collector.group_size, collector.context = group_size, context
    chain = Chain([collector])
    reader = VideoReader(src)
    torch_device = resolve_device(device)
    try:
        for item in reader.frames():
            for _ in chain.push(Frame(to_tensor(item.rgb, torch_device), item.index, item.pts)):
                pass
            yield from groups
            groups.clear()
        for _ in chain.flush():
            pass
        yield from groups
    finally:
        reader.close()
