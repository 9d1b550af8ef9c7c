"""The processor contract: options, frame groups and the `Processor` base class."""

from __future__ import annotations

import abc
import dataclasses
import logging
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from vidgen.errors import VidgenError

if TYPE_CHECKING:
    import torch


def parse_bool(text: str) -> bool:
    """Parse 'true/false/1/0/yes/no/on/off' (case-insensitive)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_int_tuple(text: str) -> tuple[int, ...]:
    """Parse '10,20,30,40' into (10, 20, 30, 40)."""
    return tuple(int(part) for part in text.split(",") if part.strip())


LOGGER = logging.getLogger("vidgen")


def log_message(message: str) -> None:
    """The library's log: messages starting with 'warning' at WARNING level, the rest at INFO, on the
    `vidgen` logger (so a library user sees warnings only, unless they configure logging)."""
    LOGGER.log(logging.WARNING if message.startswith("warning") else logging.INFO, message)


PARSERS: dict[type, Callable[[str], Any]] = {bool: parse_bool, int: int, float: float, str: str, Path: Path}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def convert_python_value(kind: type, value: Any) -> Any:
    """A Python (non-string) `value` for an option of type `kind` (bool, int, float, str or Path)."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if kind is Path and isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise TypeError(f"expected {kind.__name__}, got {_describe(value)}")


@dataclass(frozen=True)
class Option:
    """One typed, documented option of a processor (`-p NAME.KEY=VALUE` on the command line).

    `type` is bool, int, float, str or Path, or a function that takes a command-line string or a Python
    value and returns the option's value (raising ValueError or TypeError with a short reason).
    """

    name: str
    type: type | Callable[[Any], Any]
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def convert(self, value: Any) -> Any:
        """Convert a command-line string or a Python value into this option's type; VidgenError if it
        does not fit."""
        if value is None:
            return None
        try:
            if isinstance(value, str):
                value = PARSERS.get(self.type, self.type)(value)  # type: ignore[arg-type]
            elif self.type in PARSERS:
                value = convert_python_value(self.type, value)  # type: ignore[arg-type]
            else:
                value = self.type(value)
        except (ValueError, TypeError) as exc:
            raise VidgenError(f"option {self.name}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            raise VidgenError(f"option {self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        return value

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))


@dataclass
class VideoMeta:
    """What a processor may want to know about the stream it receives."""

    width: int
    height: int
    fps: float
    frame_count: int | None = None
    path: Path | None = None


@dataclass
class ProcessorContext:
    """Passed to `Processor.setup`: where and how to compute, and what comes in."""

    device: torch.device
    dtype: torch.dtype  # compute dtype for autocast: float32, bfloat16 (CPU) or float16 (CUDA)
    video: VideoMeta
    log: Callable[[str], None] = log_message

    def autocast(self) -> torch.autocast:
        """An autocast context for this device and dtype (a no-op for float32)."""
        import torch

        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)


@dataclass
class FrameGroup:
    """A run of consecutive frames handed to a processor.

    `frames` is `(T, 3, H, W)` float in [0, 1], RGB, on the processor's device. The frames that must be
    returned are `frames[core]`; the others are context (neighbours before/after) a processor asked for.
    `indices` and `pts` describe all T frames.
    """

    frames: torch.Tensor
    indices: list[int]
    pts: list[int | None]
    core: slice = field(default_factory=lambda: slice(None))
    is_last: bool = False

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[1] != 3:
            raise ValueError(f"frames must be (T, 3, H, W), got {tuple(self.frames.shape)}")
        if not (len(self.indices) == len(self.pts) == self.frames.shape[0]):
            raise ValueError("frames, indices and pts must have the same length")

    @property
    def core_frames(self) -> torch.Tensor:
        """The frames to be returned, `(N, 3, H, W)`."""
        return self.frames[self.core]

    @property
    def core_indices(self) -> list[int]:
        return self.indices[self.core]

    @property
    def context_before(self) -> int:
        return range(len(self.indices))[self.core].start

    def with_frames(self, frames: torch.Tensor) -> FrameGroup:
        """A group holding only the core frames, replaced by `frames` `(N, 3, H', W')`."""
        return FrameGroup(frames, self.indices[self.core], self.pts[self.core], slice(None), self.is_last)


class Processor(abc.ABC):
    """Base class of every vidgen processor.

    Subclasses set `name`, `description`, `options`; may set `group_size` and `context` (frames needed
    before/after each group) in `__init__` from their options; implement `process`. A processor whose
    state carries across groups sets `warmup_frames`: a distributed run starting mid-video processes that
    many earlier frames first (discarding their output) so the state is rebuilt.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()

    group_size: int = 8
    context: tuple[int, int] = (0, 0)
    warmup_frames: int = 0  # frames of history a stateful processor needs to rebuild its state mid-video

    def __init__(self, **options: Any) -> None:
        known = {option.name: option for option in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise VidgenError(f"{self.name}: unknown option {unknown[0]!r} (valid: {valid})")
        values = {name: option.default for name, option in known.items()}
        try:
            values.update({name: known[name].convert(value) for name, value in options.items()})
        except VidgenError as exc:
            raise VidgenError(f"{self.name}: {exc}") from None
        self.settings = dataclasses.make_dataclass(f"{self.name}_settings", list(values))(**values)

    def setup(self, context: ProcessorContext) -> None:
        """Prepare for a stream: load models onto `context.device`, read `context.video`."""
        self.device = context.device
        self.ctx = context

    @abc.abstractmethod
    def process(self, group: FrameGroup) -> FrameGroup:
        """Return the processed core frames of `group`, e.g. `group.with_frames(out)`."""

    def reset(self) -> None:
        """Forget the previous stream before another of the same frame size (the library calls this
        instead of `setup` again). The default calls `setup` again; processors whose `setup` loads
        weights override it to clear only their per-stream state."""
        self.setup(self.ctx)

    def abort(self) -> None:
        """Called when a run fails or is interrupted after `setup`: release what `setup` took (files,
        temporary folders, worker processes). No frames are expected back. The default does nothing."""

    def finish(self) -> FrameGroup | None:
        """Called after the last group: return frames still buffered, if any."""
        return None

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Frame size this processor produces for an input of `width` × `height`."""
        return width, height
