"""The benchmark toolkit of `vidgen bench NAME`: options, timing, reference rates, tables, clips, sheets.

A plugin's bench is a click command decorated with `bench_options(...)`; it receives one
`options: BenchOptions` argument (device, precision, the fp32/bf16 matmul rates measured in this run,
and the `--sheet` path). Frames are `(T, H, W, 3)` uint8 arrays throughout, masks `(T, H, W)` bool.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

import click
import numpy as np

from vidgen.errors import VidgenError

if TYPE_CHECKING:  # torch is imported when a bench runs, not when the command line starts
    import torch

Result = TypeVar("Result")


class FrameSize(click.ParamType):
    """A click option type for `WIDTHxHEIGHT` (e.g. `640x360`) → `(width, height)`."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        width, x, height = str(value).lower().partition("x")
        if not (x and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
            self.fail(f"{value!r} is not a frame size: expected WIDTHxHEIGHT, e.g. 640x360", param, ctx)
        return int(width), int(height)


class NumberList(click.ParamType):
    """A click option type for comma-separated numbers (`15,25,50`) → a list of `kind`."""

    name = "LIST"

    def __init__(self, kind: type = float) -> None:
        self.kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list:
        if isinstance(value, list):
            return value
        try:
            numbers = [self.kind(item) for item in str(value).split(",")]
        except ValueError:
            self.fail(f"{value!r}: expected comma-separated {self.kind.__name__} numbers, e.g. 1,2,3", param, ctx)
        return numbers


def matmul_rate(device: torch.device, dtype: torch.dtype, size: int = 0, repeats: int = 3) -> float:
    """Best FLOP/s of a `size`² matmul in `dtype` on `device` (default size: 4096 on CUDA, 2048 on a CPU)."""
    import torch

    size = size or (4096 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats + 1):  # the first run warms up
        seconds = timed(lambda: a @ b, device)[1]
        best = max(best, 2 * size**3 / seconds)
    return best


def timed(call: Callable[[], Result], device: torch.device | str = "cpu") -> tuple[Result, float]:
    """(`call()`, its wall seconds), waiting for queued CUDA work before and after."""
    import torch

    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = call()
    if cuda:
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


class _GlobalOnly:
    """Stands in for the per-module tracker of torch's FLOP counter: everything counts as 'Global'. (The
    tracker's autograd hooks fail on code that enables gradients inside `no_grad`, like a latent search.)"""

    parents = {"Global"}

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(call: Callable[[], Any]) -> float:
    """FLOPs of the torch operations `call()` runs (torch's FLOP counter: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        call()
    return float(counter.get_total_flops())


@dataclass(frozen=True)
class ReferenceRates:
    """The dense matmul rates of this machine, measured in this run: fp32, and bf16 where it is native
    (CUDA, or a CPU with AVX-512 BF16 / AMX); None otherwise."""

    fp32: float
    bf16: float | None

    @classmethod
    def measure(cls, device: torch.device, size: int = 0) -> ReferenceRates:
        import torch

        from vidgen.compute import cpu_has_native_bf16

        native_bf16 = device.type == "cuda" or cpu_has_native_bf16()
        return cls(matmul_rate(device, torch.float32, size),
                   matmul_rate(device, torch.bfloat16, size) if native_bf16 else None)

    def describe(self) -> str:
        bf16 = f"{self.bf16 / 1e9:.0f} GFLOP/s bf16" if self.bf16 else "no native bf16"
        return f"matmul rates measured now: {self.fp32 / 1e9:.0f} GFLOP/s fp32, {bf16}"

    def shares(self, flops_per_second: float) -> tuple[str, str]:
        """`flops_per_second` as a share of the fp32 and of the bf16 rate, e.g. ('12 %', '4 %')."""
        bf16 = f"{100 * flops_per_second / self.bf16:.0f} %" if self.bf16 else "-"
        return f"{100 * flops_per_second / self.fp32:.0f} %", bf16


@dataclass(frozen=True)
class BenchOptions:
    """The options every `vidgen bench NAME` shares (see `bench_options`)."""

    device: torch.device
    precision: str
    dtype: torch.dtype
    sheet: Path | None
    rates: ReferenceRates

    def speed_cells(self, flops_per_frame: float, fps: float) -> list[str]:
        """Table cells: GFLOP/frame, achieved GFLOP/s, % of the fp32 and of the bf16 matmul rate."""
        achieved = flops_per_frame * fps
        return [f"{flops_per_frame / 1e9:.2f}", f"{achieved / 1e9:.1f}", *self.rates.shares(achieved)]


SPEED_HEADER = ["GFLOP/frame", "achieved GFLOP/s", "% of fp32 matmul", "% of bf16 matmul"]


def bench_options(default_device: str = "auto") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for a `vidgen bench NAME` click command: adds `--device --precision --threads --sheet`, measures
    the reference matmul rates, and passes them to the command as one `options: BenchOptions` argument."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(device: str, precision: str, threads: int, sheet: str | None, **kwargs: Any) -> None:
            import torch

            from vidgen.compute import compute_dtype, resolve_device

            if threads:
                torch.set_num_threads(threads)  # before the reference rates are measured
            torch_device = resolve_device(device)
            dtype = compute_dtype(torch_device, precision)
            options = BenchOptions(torch_device, precision, dtype, Path(sheet) if sheet else None,
                                   ReferenceRates.measure(torch_device))
            command(options=options, **kwargs)

        for option in reversed([
            click.option("--device", default=default_device, show_default=True,
                         type=click.Choice(["auto", "cpu", "cuda"])),
            click.option("--precision", default="auto", show_default=True,
                         type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                         help="Compute precision of the models (auto: fp16 on CUDA, bf16 on a CPU with native "
                              "bf16, else fp32)."),
            click.option("--threads", type=click.IntRange(0), default=0, show_default=True,
                         help="CPU threads for torch (0: torch's default)."),
            click.option("--sheet", type=click.Path(dir_okay=False), callback=_png_only,
                         help="Also write a contact sheet (PNG): input, each method and the truth, side by side."),
        ]):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def _png_only(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and Path(value).suffix.lower() != ".png":
        raise click.BadParameter(f"{value!r}: a contact sheet is a .png file")
    return value


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a Markdown table; floats are shown with 2 decimals, other cells as they are."""
    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    click.echo("| " + " | ".join(header) + " |")
    click.echo("|---" * len(header) + "|")
    for row in rows:
        click.echo("| " + " | ".join(cell(value) for value in row) + " |")


def read_frames(path: str | os.PathLike, limit: int = 0) -> np.ndarray:
    """Real footage as `(T, H, W, 3)` uint8: a video file, or a folder of frame images (sorted by name);
    the first `limit` frames when `limit` > 0. Deeper-than-8-bit video is reduced to 8 bits."""
    from vidgen.video import VideoReader

    path = Path(path)
    if path.is_dir():
        frames = _read_images(path, limit, colour=True)
    else:
        reader = VideoReader(path)
        try:
            frames = []
            for item in reader.frames():
                frames.append((item.rgb >> 8).astype(np.uint8) if item.rgb.dtype == np.uint16 else item.rgb)
                if len(frames) == limit:
                    break
        finally:
            reader.close()
    if len({frame.shape for frame in frames}) > 1:
        raise VidgenError(f"{path}: the frames differ in size")
    return np.stack(frames)


def read_masks(folder: str | os.PathLike, limit: int = 0) -> np.ndarray:
    """A folder of per-frame mask images (sorted by name; white = masked) as `(T, H, W)` bool."""
    masks = [image > 127 for image in _read_images(Path(folder), limit, colour=False)]
    if len({mask.shape for mask in masks}) > 1:
        raise VidgenError(f"{folder}: the masks differ in size")
    return np.stack(masks)


def _read_images(folder: Path, limit: int, colour: bool) -> list[np.ndarray]:
    import cv2

    from vidgen.sequences import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise VidgenError(f"{folder}: not a folder or video file")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit or None]
    if not paths:
        raise VidgenError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise VidgenError(f"{path}: cannot read image")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if colour else image)
    return images


def masks_from_clip(masks: np.ndarray, frames: int, height: int, width: int, dilation: int = 4) -> np.ndarray:
    """The masks-from-another-clip protocol of video-inpainting papers: the moving-object masks `(T', h, w)`
    bool of one clip, pasted onto a clip of `frames` × `height` × `width` (resized nearest-neighbour,
    played back and forth when shorter) and dilated by `dilation` px → `(frames, height, width)` bool."""
    import cv2

    order = np.concatenate([np.arange(len(masks)), np.arange(len(masks) - 2, 0, -1)]) if len(masks) > 1 else [0]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
    out = np.empty((frames, height, width), bool)
    for t in range(frames):
        mask = cv2.resize(masks[order[t % len(order)]].astype(np.uint8), (width, height),
                          interpolation=cv2.INTER_NEAREST)
        out[t] = (cv2.dilate(mask, kernel) if dilation > 0 else mask) > 0
    return out


def sheet_frames(length: int) -> list[int]:
    """The frames a contact sheet shows by default: first, middle and last."""
    return sorted({0, length // 2, length - 1})


def contact_sheet(path: str | os.PathLike, columns: dict[str, np.ndarray], frames: Sequence[int],
                  tile_width: int = 0) -> Path:
    """Write a PNG grid: one column per entry of `columns` (e.g. input, each method, truth), each a clip
    `(T, H, W, 3)` uint8, one row per index of `frames`, titled on top. Tiles are resized (nearest) to the
    largest clip's size, or to `tile_width` px wide; returns the path."""
    import cv2

    height = max(clip.shape[1] for clip in columns.values())
    width = max(clip.shape[2] for clip in columns.values())
    if tile_width:
        height, width = round(height * tile_width / width), tile_width
    title = 22
    sheet = np.full((title + len(frames) * (height + 2), len(columns) * (width + 2), 3), 255, np.uint8)
    for c, (name, clip) in enumerate(columns.items()):
        x = c * (width + 2)
        cv2.putText(sheet, name[: max(4, width // 8)], (x + 3, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for r, index in enumerate(frames):
            y = title + r * (height + 2)
            sheet[y:y + height, x:x + width] = cv2.resize(clip[index], (width, height), interpolation=cv2.INTER_NEAREST)
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise VidgenError(f"{path}: a contact sheet is a .png file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise VidgenError(f"{path}: cannot write the contact sheet")
    click.echo(f"wrote contact sheet {path}", err=True)
    return path
