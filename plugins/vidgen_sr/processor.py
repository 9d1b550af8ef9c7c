"""The `sr` processor: per-frame super-resolution, batched over a group, optionally in blended tiles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidgen import FrameGroup, Option, Processor, ProcessorContext, VidgenError
from vidgen.weights import load_spandrel_image_model, load_weights
from vidgen_sr.model import ARCHITECTURE, SCALES, build_generator
from vidgen_sr.steady import Steadier

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODELS = ("srresnet", "srgan", "real")
FILE_STEMS = {"srresnet": "srresnet", "srgan": "srgan", "real": "srreal"}  # model name → weights file stem
MIN_INPUT = 8  # smaller frames are mostly the padding of the 3×3 convolutions: nothing left to super-resolve
# The largest frame H.264 and H.265 allow (level 6.2: 139,264 macroblocks of 16×16, e.g. 8192×4352)
MAX_OUTPUT_PIXELS = 139_264 * 256
# (quarter turns, mirrored) of the geometric self-ensemble; the first four keep height and width
DIHEDRAL = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))
ENSEMBLE_SIZES = (1, 2, 4, 8)


@dataclass
class Upscaler:
    """A loaded network `(N, 3, h, w)` → `(N, 3, h·scale, w·scale)` and what it needs of its input."""

    network: nn.Module
    scale: int
    label: str
    multiple_of: int = 1  # input height/width must be multiples of this (padded otherwise)
    minimum: int = 0  # ... and at least this
    square: bool = False
    reduced_precision: bool = True  # runs under bf16/fp16 autocast


def shipped_weights(model: str, scale: int) -> Path:
    """Path of a weights file shipped with the plugin, e.g. `weights/srresnet_x4.safetensors`."""
    return WEIGHTS_DIR / f"{FILE_STEMS[model]}_x{scale}.safetensors"


def shipped_scales(model: str) -> list[int]:
    """The scales `model` is shipped for."""
    return [scale for scale in SCALES if shipped_weights(model, scale).is_file()]


def load_upscaler(path: str | Path, device: torch.device) -> Upscaler:
    """A vidgen SRResNet `.safetensors` file, or any super-resolution checkpoint spandrel recognises."""
    tensors, metadata = load_weights(path)
    if metadata.get("architecture") == ARCHITECTURE:
        network = build_generator(metadata)
        try:
            network.load_state_dict(tensors)
        except RuntimeError as exc:
            raise VidgenError(f"{path}: tensors do not match the recorded architecture ({exc})") from None
        label = f"{metadata.get('model', 'srresnet')} ({Path(path).name})"
        return Upscaler(network.to(device).eval(), network.scale, label)
    if metadata:  # vidgen weights of another model (other plugins' files carry a model card too)
        raise VidgenError(f"{path}: vidgen weights of another model, not an sr checkpoint ({ARCHITECTURE})")
    descriptor = load_spandrel_image_model(tensors, path, device, "not a vidgen sr checkpoint")
    if descriptor.scale < 2:
        raise VidgenError(f"{path}: {descriptor.architecture.name} is a x{descriptor.scale} model, "
                          "not super-resolution")
    half = descriptor.supports_half if device.type == "cuda" else descriptor.supports_bfloat16
    req = descriptor.size_requirements
    return Upscaler(descriptor.model.eval(), descriptor.scale, f"{descriptor.architecture.name} ({Path(path).name})",
                    req.multiple_of, req.minimum, req.square, half)


def feather(length: int, overlap_before: int, overlap_after: int) -> torch.Tensor:
    """`(length,)` blending weights of a tile sharing `overlap_*` samples with its neighbours.

    Within a shared band the outer third (next to the tile's edge, where zero padding disturbs the
    network) gets weight 0, the middle third fades linearly, the inner third gets 1; the neighbour's
    weights mirror this, so the two always sum to 1 and no seam can form.
    """
    position = torch.arange(length) + 0.5
    weight = torch.ones(length)
    for band, distance in ((overlap_before, position), (overlap_after, length - position)):
        if band:
            weight = torch.minimum(weight, ((distance - band / 3) / (band / 3)).clamp(0, 1))
    return weight


def turn(images: torch.Tensor, quarter_turns: int, mirrored: bool) -> torch.Tensor:
    """Mirror `(N, C, H, W)` left-right (if `mirrored`), then rotate it by `quarter_turns` × 90°.

    The identity returns `images` itself (`torch.rot90` by 0 would copy it and drop channels-last)."""
    images = images.flip(-1) if mirrored else images
    return torch.rot90(images, quarter_turns, (-2, -1)) if quarter_turns else images


def unturn(images: torch.Tensor, quarter_turns: int, mirrored: bool) -> torch.Tensor:
    """Undo `turn(images, quarter_turns, mirrored)`."""
    images = torch.rot90(images, -quarter_turns, (-2, -1)) if quarter_turns else images
    return images.flip(-1) if mirrored else images


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` samples covering `length`, neighbours sharing ≥ `overlap` samples."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


class SuperResolution(Processor):
    name = "sr"
    description = "Per-frame super-resolution x2/x4: compact SRResNet (PSNR) or SRGAN, or a spandrel checkpoint."
    options = (
        Option("scale", int, 0, "2 or 4; 0 = 4 for the shipped models, or the scale of sr.weights"),
        Option("model", str, "srresnet", "shipped model: srresnet (highest PSNR on clean downscales), srgan "
               "(adversarial fine-tune) or real (x4 only: for blurred, noisy, compressed video)", choices=MODELS),
        Option("weights", str, "", "checkpoint to use instead: a vidgen .safetensors or ESRGAN/Real-ESRGAN/SwinIR/... "
               "(.pth/.safetensors, needs spandrel)"),
        Option("tile", int, 0, "process in tiles of this many input pixels, feather-blended (0 = whole frame)"),
        Option("tile_overlap", int, 32, "input pixels shared by neighbouring tiles, cross-faded"),
        Option("batch", int, 4, "frames upscaled per forward pass"),
        Option("ensemble", int, 1, "average the outputs for 1, 2, 4 or 8 flips/rotations of each frame "
               "(geometric self-ensemble: slightly higher PSNR, that many times slower)", choices=ENSEMBLE_SIZES),
        Option("steady", float, 0.7, "temporal steadiness: weight of the previous output frame, moved along the "
               "input's optical flow, where the two agree (0 = each frame on its own; below 1)"),
    )

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        s = self.settings
        if s.scale not in (0, *SCALES):
            raise VidgenError(f"sr.scale must be 2 or 4 (or 0 for automatic), got {s.scale}")
        if s.tile < 0 or s.tile_overlap < 0 or (s.tile and s.tile <= 2 * s.tile_overlap):
            raise VidgenError(f"sr.tile must be 0 or larger than 2 x sr.tile_overlap ({2 * s.tile_overlap})")
        if s.batch < 1:
            raise VidgenError("sr.batch must be at least 1")
        if not 0 <= s.steady < 1:
            raise VidgenError(f"sr.steady must be in [0, 1), got {s.steady}")
        if not s.weights and s.scale and s.scale not in shipped_scales(s.model):
            available = ", ".join(f"sr.scale={scale}" for scale in shipped_scales(s.model))
            raise VidgenError(f"sr.model={s.model} has no x{s.scale} model (shipped: {available})")
        self.group_size = s.batch
        self.context = (0, 0)
        self.upscaler: Upscaler | None = None
        self.steadier: Steadier | None = None

    @property
    def scale(self) -> int:
        """The upscaling factor (known once set up; before that, the requested one)."""
        return self.upscaler.scale if self.upscaler else (self.settings.scale or 4)

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        s = self.settings
        path = Path(s.weights) if s.weights else shipped_weights(s.model, s.scale or 4)
        self.upscaler = load_upscaler(path, context.device)
        if s.scale and s.scale != self.upscaler.scale:
            raise VidgenError(f"sr.scale={s.scale} but {path.name} is a x{self.upscaler.scale} model")
        width, height = context.video.width, context.video.height
        if min(width, height) < MIN_INPUT:
            raise VidgenError(f"sr: {width}x{height} frames are too small to upscale (the model needs at least "
                              f"{MIN_INPUT}x{MIN_INPUT})")
        out_width, out_height = self.output_size(width, height)
        if out_width * out_height > MAX_OUTPUT_PIXELS:
            raise VidgenError(f"sr: x{self.scale} of {width}x{height} is {out_width}x{out_height}, larger than "
                              f"H.264/H.265 frames can be ({MAX_OUTPUT_PIXELS:,} pixels, e.g. 8192x4352); "
                              "downscale the input first or use a smaller sr.scale")
        self.upscaler.network.to(memory_format=torch.channels_last).requires_grad_(False)
        precision = context.dtype if self.upscaler.reduced_precision else torch.float32
        self.steadier = Steadier(s.steady, self.upscaler.scale) if s.steady else None
        tiling = f"{s.tile}px tiles" if s.tile else "whole frames"
        context.log(f"sr: {self.upscaler.label} x{self.upscaler.scale}, {precision}, {tiling}")

    def reset(self) -> None:
        """Keep the loaded model; forget the previous frame of `steady`."""
        if self.steadier:
            self.steadier.reset()

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return width * self.scale, height * self.scale

    def process(self, group: FrameGroup) -> FrameGroup:
        return group.with_frames(self.upscale_stream(group.core_frames))

    def upscale_stream(self, frames: torch.Tensor) -> torch.Tensor:
        """The next `(N, 3, H, W)` frames of a stream, in order → `(N, 3, H·s, W·s)`: upscaled, then steadied
        against the frames before them when `sr.steady` is set."""
        upscaled = self.upscale(frames)
        return self.steadier(frames, upscaled).clamp_(0, 1) if self.steadier else upscaled

    def upscale(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, 3, H, W)` in [0, 1] → `(N, 3, H·s, W·s)` in [0, 1], tiled when `sr.tile` is set."""
        tile, overlap = self.settings.tile, self.settings.tile_overlap
        height, width = frames.shape[-2:]
        if not tile or (height <= tile and width <= tile):
            return self._forward(frames).clamp_(0, 1)
        s = self.scale
        out = torch.zeros(frames.shape[0], 3, height * s, width * s, device=frames.device)
        total = torch.zeros(1, 1, height * s, width * s, device=frames.device)
        for y in tile_starts(height, tile, overlap):
            for x in tile_starts(width, tile, overlap):
                th, tw = min(tile, height), min(tile, width)
                result = self._forward(frames[..., y:y + th, x:x + tw])
                band = overlap * s
                weight_y = feather(th * s, band if y > 0 else 0, band if y + th < height else 0)
                weight_x = feather(tw * s, band if x > 0 else 0, band if x + tw < width else 0)
                weight = (weight_y[:, None] * weight_x[None, :]).to(frames.device)
                out[..., y * s:(y + th) * s, x * s:(x + tw) * s] += result * weight
                total[..., y * s:(y + th) * s, x * s:(x + tw) * s] += weight
        return out.div_(total).clamp_(0, 1)

    def _forward(self, lr: torch.Tensor) -> torch.Tensor:
        """Run the network on `(N, 3, h, w)`, padding to its size requirements; float32 `(N, 3, h·s, w·s)`."""
        up = self.upscaler
        height, width = lr.shape[-2:]
        target_h = max(-(-height // up.multiple_of) * up.multiple_of, up.minimum)
        target_w = max(-(-width // up.multiple_of) * up.multiple_of, up.minimum)
        if up.square:
            target_h = target_w = max(target_h, target_w)
        if (target_h, target_w) != (height, width):
            mode = "reflect" if target_h - height < height and target_w - width < width else "replicate"
            lr = F.pad(lr, (0, target_w - width, 0, target_h - height), mode=mode)

        def upscale_turned(transform: tuple[int, bool]) -> torch.Tensor:
            turned = turn(lr, *transform).contiguous(memory_format=torch.channels_last)
            return unturn(up.network(turned).float(), *transform)

        first, *others = DIHEDRAL[: self.settings.ensemble]
        with torch.autocast(self.device.type, dtype=self.ctx.dtype,
                            enabled=up.reduced_precision and self.ctx.dtype != torch.float32):
            result = upscale_turned(first)
            for transform in others:
                result += upscale_turned(transform)
        if others:
            result /= 1 + len(others)
        return result[..., : height * up.scale, : width * up.scale]
