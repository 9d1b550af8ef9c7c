"""Where and how processors compute: device, precision, frame conversions and the chain over a stream.

This is the only core module of the frame path that imports torch, so a run without processors
(a plain re-encode, `vidgen info`) does not pay torch's start-up.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from vidgen.errors import VidgenError
from vidgen.grouping import Chain, Frame
from vidgen.processor import FrameGroup, Processor
from vidgen.video import DecodedFrame, VideoReader

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_MIN_SPEEDUP = 1.3  # 'auto' picks bf16 on a CPU only where it measures at least this much faster than fp32


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
    """'auto' → float16 on CUDA, bfloat16 on a CPU where it measures faster than float32, else float32."""
    if precision not in PRECISIONS:
        raise VidgenError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
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
    return torch.bfloat16 if cpu_bf16_is_faster() else torch.float32


@functools.cache
def cpu_bf16_is_faster() -> bool:
    """True when the CPU has native bf16 and a convolution under bf16 autocast runs at least
    `BF16_MIN_SPEEDUP` times as fast as in fp32 here (measured once per process, about 0.15 s).

    The flag alone is not enough: some CPUs that report AVX-512 BF16 run bf16 convolutions at half
    the fp32 rate."""
    return cpu_has_native_bf16() and bf16_conv_speedup() >= BF16_MIN_SPEEDUP


def bf16_conv_speedup(rounds: int = 7) -> float:
    """fp32 time / bf16-autocast time of a 64-channel 3×3 convolution on a 128×128 channels-last image
    (the shape of the shipped networks' layers): the best of `rounds` interleaved timings of each, after
    one untimed call of each that lets oneDNN choose its kernels. The image is large enough (about 6 ms
    per fp32 call on 2 cores) that waking sleeping OpenMP threads (`OMP_WAIT_POLICY=PASSIVE`, which the
    `vidgen` command sets) does not hide the speed-up: on a 64×64 image it read 1.29–1.50 where the
    networks run 1.6–2× faster in bf16, straddling `BF16_MIN_SPEEDUP`."""
    layer = torch.nn.Conv2d(64, 64, 3, padding=1)
    image = torch.rand(1, 64, 128, 128).contiguous(memory_format=torch.channels_last)

    def seconds(dtype: torch.dtype) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            start = time.perf_counter()
            layer(image)
            return time.perf_counter() - start

    with torch.no_grad():
        seconds(torch.float32), seconds(torch.bfloat16)
        timings = [(seconds(torch.float32), seconds(torch.bfloat16)) for _ in range(rounds)]
    return min(fp32 for fp32, _ in timings) / min(bf16 for _, bf16 in timings)


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX-512 BF16 or AMX (bf16 autocast is then 2-3x faster than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """`(T, 3, H, W)` float in [0, 1] on any device → `(T, H, W, 3)` uint8 array (clamped, rounded)."""
    return frames.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def uint8_to_frames(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """`(T, H, W, 3)` uint8 array → `(T, 3, H, W)` float32 in [0, 1] on `device` (converted there)."""
    return torch.from_numpy(array).to(device).permute(0, 3, 1, 2).float() / 255


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


def process_stream(
    frames: Iterable[DecodedFrame], processors: list[Processor], device: torch.device, deep: bool
) -> Iterator[tuple[np.ndarray, int | None, int]]:
    """Push decoded RGB frames through the chain of set-up `processors`, in order; yield each output
    frame as `(rgb (H, W, 3) uint8/uint16 when deep, pts, index)`, ready for `VideoWriter.write`."""
    chain = Chain(processors)
    with torch.no_grad():
        for item in frames:
            for frame in chain.push(Frame(to_tensor(item.rgb, device), item.index, item.pts)):
                yield to_array(frame.pixels, deep), frame.pts, frame.index
        for frame in chain.flush():
            yield to_array(frame.pixels, deep), frame.pts, frame.index


def iter_groups(
    src: str | Path, group_size: int = 8, context: tuple[int, int] = (0, 0), device: str = "cpu"
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
