"""The `denoise` processor: each frame is restored from itself and its neighbours by the temporal RED-Net (on
neighbours aligned with optical flow) or by the two-stage RED-Net (on raw neighbours)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vidgen import FrameGroup, Option, Processor, ProcessorContext, VidgenError
from vidgen.metrics import warp
from vidgen.weights import load_spandrel_image_model, load_weights
from vidgen_denoise.model import TemporalREDNet, TwoStageREDNet, triplet_windows

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "denoise_rednet_k5.safetensors"
TILE_MARGIN = 32  # pixels of context around each tile, beyond the network's receptive field radius
MIN_FLOW_SIZE = 16  # smaller frames are not aligned (DIS optical flow needs at least 12 pixels)
ALIGN = 4  # the network works at 1/2 and 1/4 resolution: tiles start on multiples of 4 pixels


# a 2-frame video is denoised per frame: with one neighbour, repeated into three slots, the temporal network was
# 0.37 dB below per-frame mode (4 photos panned, σ = 25, fp32; 3 frames: +0.54 dB above it; docs/denoise.md)
MIN_TEMPORAL_FRAMES = 3


def load_model(path: str | Path) -> TemporalREDNet | TwoStageREDNet:
    """The denoise network of a weights file, its kind and shape (frames, width, layers, blocks) read from the
    weight tensors."""
    return rednet_from_tensors(load_weights(path)[0], path)


def is_rednet(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether `tensors` are those of a `TemporalREDNet` or a `TwoStageREDNet` (else: a spandrel model)."""
    return "head.weight" in tensors or "triplet.head.weight" in tensors


def rednet_shape(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, int]:
    """The `TemporalREDNet` arguments of the tensors whose names start with `prefix`."""
    width, in_channels = tensors[f"{prefix}head.weight"].shape[:2]

    def count(part: str) -> int:
        start = f"{prefix}{part}."
        return len({key[len(start):].split(".")[0] for key in tensors if key.startswith(start)})

    return {"frames": (in_channels - 1) // 3, "width": width, "body_layers": count("body"),
            "quarter_blocks": count("quarter_refine"), "half_blocks": count("half_refine")}


def rednet_from_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> TemporalREDNet | TwoStageREDNet:
    """The network of `tensors`: a `TwoStageREDNet` when they hold its two stages (`triplet.*`, `fusion.*`),
    else a `TemporalREDNet`."""
    try:
        if "triplet.head.weight" in tensors:
            model = TwoStageREDNet(**{**rednet_shape(tensors, "triplet."),
                                      "frames": rednet_shape(tensors, "fusion.")["frames"] + 2})
        else:
            model = TemporalREDNet(**rednet_shape(tensors, ""))
        model.load_state_dict(tensors)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise VidgenError(f"{path}: not a denoise RED-Net weights file ({type(exc).__name__})") from None
    return model


def load_spandrel_denoiser(tensors: dict[str, torch.Tensor], path: str | Path,
                           device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A single-frame RGB restoration checkpoint of the field (DnCNN, FBCNN, SCUNet, ...) via spandrel:
    a callable `(N, 3, H, W)` → `(N, 3, H, W)`."""
    descriptor = load_spandrel_image_model(tensors, path, device, "not a denoise RED-Net weights file")
    if descriptor.scale != 1:
        raise VidgenError(f"{path}: {descriptor.architecture.name} is not a same-size RGB restoration model")
    descriptor.model.eval()
    return descriptor


CHANNEL_MEAN = np.full((1, 3), 1 / 3, np.float32)  # `cv2.transform` matrix: `(H, W, 3)` → the channel mean `(H, W)`


def flow_luma(picture: np.ndarray) -> np.ndarray:
    """`(H, W)` uint8 blurred luma of a noisy `(H, W, 3)` float32 picture in [0, 1], what the flow is computed on
    (blurred so that noise does not steer it)."""
    import cv2

    return cv2.GaussianBlur(cv2.convertScaleAbs(cv2.transform(picture, 255 * CHANNEL_MEAN)), (0, 0), 1.5)


def flow_to_neighbour(centre: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """DIS optical flow `(H, W, 2)` float32 from the centre frame to a neighbour, given their `flow_luma`."""
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(centre, neighbour, None)


def reject_misaligned(centre: np.ndarray, warped: np.ndarray, threshold: float) -> np.ndarray:
    """`warped` `(H, W, 3)` float32, with the pixels where it disagrees with `centre` replaced by `centre`'s (in
    place).

    Where optical flow failed (occlusions, content entering the frame, fast zooms) the aligned neighbour
    shows other content; there the network is given the centre frame itself, as in per-frame mode.
    Disagreement: the 5×5 box-filtered luma difference (averaged over the window's pixels inside the frame)
    beyond `threshold` robust standard deviations (median absolute deviation) of that difference over the
    frame; the mask is widened by 2 pixels. With OpenCV on the CPU, like the flow.
    """
    import cv2

    difference = cv2.transform(warped - centre, CHANNEL_MEAN)
    window = np.ones((5, 5), np.uint8)
    sums = cv2.boxFilter(difference, -1, (5, 5), normalize=False, borderType=cv2.BORDER_CONSTANT)
    smooth = np.abs(sums / pixels_in_window(*difference.shape))
    middle = (smooth.size - 1) // 2  # the lower median, as torch's: a partition is 3x faster than its sort
    spread = 1.4826 * max(float(np.partition(smooth, middle, axis=None)[middle]), 1e-3)
    bad = cv2.dilate((smooth > threshold * spread).astype(np.uint8), window)
    return cv2.copyTo(centre, bad, warped)  # in place; 5x faster than NumPy's broadcast `copyto(where=)`


@functools.lru_cache(maxsize=8)
def pixels_in_window(height: int, width: int) -> np.ndarray:
    """`(H, W)` float32: how many pixels of the 5×5 window around each pixel lie inside the frame."""
    import cv2

    return cv2.boxFilter(np.ones((height, width), np.float32), -1, (5, 5), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)


def aligned_neighbours(pictures: np.ndarray, centre: int, chosen: list[int], reject: float,
                       lumas: dict[int, np.ndarray] | None = None) -> list[np.ndarray]:
    """`pictures[chosen]` (noisy `(T, H, W, 3)` float32 in [0, 1]) each warped onto `pictures[centre]` with DIS
    flow, with the pixels where the warp disagrees with the centre frame replaced by it (`reject` robust standard
    deviations; 0 = keep all): K `(H, W, 3)` float32 arrays (the centre frame itself where it is chosen). Frames
    smaller than `MIN_FLOW_SIZE` are not warped. `lumas` memoises each frame's `flow_luma` across calls on the
    same frames."""
    if min(pictures.shape[1:3]) < MIN_FLOW_SIZE:
        return [pictures[index] for index in chosen]
    lumas = {} if lumas is None else lumas

    def luma(index: int) -> np.ndarray:
        if index not in lumas:
            lumas[index] = flow_luma(pictures[index])
        return lumas[index]

    aligned = []
    for index in chosen:
        if index == centre:
            aligned.append(pictures[centre])
            continue
        warped = warp(pictures[index], flow_to_neighbour(luma(centre), luma(index)))
        aligned.append(reject_misaligned(pictures[centre], warped, reject) if reject else warped)
    return aligned


def aligned_stack(frames: torch.Tensor, centre: int, chosen: list[int], reject: float) -> torch.Tensor:
    """`(K, 3, H, W)`: `aligned_neighbours` of noisy `(T, 3, H, W)` frames. Training builds its samples with it,
    so the network learns from the processor's own alignment failures."""
    pictures = np.ascontiguousarray(frames.float().permute(0, 2, 3, 1).cpu().numpy())
    aligned = aligned_neighbours(pictures, centre, chosen, reject)
    return torch.from_numpy(np.stack(aligned)).permute(0, 3, 1, 2).to(frames.device)


def tile_spans(length: int, tile: int) -> list[tuple[int, int]]:
    """Split `length` pixels into the fewest equal spans of at most about `tile` pixels, starting on
    multiples of `ALIGN`: `[(start, stop), ...]`."""
    count = -(-length // tile)
    step = -(-length // (count * ALIGN)) * ALIGN
    return [(start, min(start + step, length)) for start in range(0, length, step)]


class Denoise(Processor):
    name = "denoise"
    description = "Remove noise with a RED-Net that restores each frame from its neighbouring frames."
    options = (
        Option("frames", int, 5, "frames the network sees: 5 = temporal (neighbours), 1 = each frame alone"),
        Option("sigma", float, 0.0, "noise standard deviation on the 0-255 scale if known; 0 = blind"),
        Option("align", bool, True, "temporal mode: warp neighbours onto each frame with optical flow first "
                                    "(two-stage networks take them unaligned and ignore this)"),
        Option("reject", float, 4.0, "temporal mode: where an aligned neighbour differs from the frame by more than this "
                                     "many robust standard deviations, use the frame itself (0 = never)"),
        Option("tile", int, 1024, "split frames larger than this many pixels into equal tiles (0 = never)"),
        Option("weights", Path, None, "weights file (default: the shipped model)"),
    )

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.settings.frames < 1 or self.settings.frames % 2 == 0:
            raise VidgenError(f"denoise: frames must be 1 or an odd number, got {self.settings.frames}")
        if not 0 <= self.settings.sigma <= 255:
            raise VidgenError(f"denoise: sigma must be in [0, 255], got {self.settings.sigma}")
        if self.settings.reject < 0:
            raise VidgenError(f"denoise: reject must be >= 0, got {self.settings.reject}")
        if self.settings.tile < 0:
            raise VidgenError(f"denoise: tile must be >= 0, got {self.settings.tile}")
        self.group_size = 8
        self.context = (self.settings.frames // 2, self.settings.frames // 2)

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        path = self.settings.weights or SHIPPED_WEIGHTS
        tensors, _ = load_weights(path)
        self.external: Callable[[torch.Tensor], torch.Tensor] | None = None
        if not is_rednet(tensors):
            self.external = load_spandrel_denoiser(tensors, path, context.device)
            context.log(f"denoise: {path} is a single-frame model: neighbouring frames and sigma are not used")
            return
        self.model = rednet_from_tensors(tensors, path).eval().to(context.device, memory_format=torch.channels_last)
        if self.settings.frames not in (1, self.model.frames):
            raise VidgenError(f"denoise: these weights take frames=1 or frames={self.model.frames}, "
                              f"not {self.settings.frames}")
        if not self.model.aligned_input and self.settings.align and self.settings.frames > 1:
            context.log(f"denoise: {path} is a two-stage network that aligns neighbours itself: they are not warped")

    def reset(self) -> None:
        """Nothing carries from one stream to the next: keep the loaded model."""

    def neighbour_indices(self, group: FrameGroup) -> list[list[int]]:
        """For each core frame, the indices in `group.frames` of the network's K input frames: its neighbours
        (the nearest available one repeated past the ends of the video), or the frame itself K times in
        per-frame mode and for videos shorter than `MIN_TEMPORAL_FRAMES`."""
        half, last = self.model.frames // 2, len(group.frames) - 1
        if self.settings.frames == 1 or len(group.frames) < MIN_TEMPORAL_FRAMES:
            return [[centre] * self.model.frames for centre in range(len(group.frames))[group.core]]
        return [[min(max(centre + offset, 0), last) for offset in range(-half, half + 1)]
                for centre in range(len(group.frames))[group.core]]

    def with_level(self, stacked: torch.Tensor) -> torch.Tensor:
        """`(N, C, H, W)` network frames → `(N, C + 1, H, W)`: the noise-level map appended."""
        return torch.cat([stacked, torch.full_like(stacked[:, :1], self.settings.sigma / 255)], 1)

    def network_inputs(self, group: FrameGroup) -> torch.Tensor:
        """`(N, 3K + 1, H, W)` channels-last: for each core frame, its K input frames (`neighbour_indices`; warped
        onto it when `align` is set and the network wants aligned input) and the noise-level map. Written in
        place into the layout the network reads (one pass over the input instead of four)."""
        align = self.settings.align and self.settings.frames > 1 and self.model.aligned_input
        chosen_frames = self.neighbour_indices(group)
        inputs = torch.empty(len(chosen_frames), 3 * self.model.frames + 1, *group.frames.shape[-2:],
                             dtype=group.frames.dtype, device=group.frames.device, memory_format=torch.channels_last)
        inputs[:, -1] = self.settings.sigma / 255
        pixels = inputs.permute(0, 2, 3, 1)  # (N, H, W, 3K + 1): the buffer's memory order
        if align:
            pictures = np.ascontiguousarray(group.frames.float().permute(0, 2, 3, 1).cpu().numpy())
            lumas: dict[int, np.ndarray] = {}
        for row, chosen in zip(pixels, chosen_frames):
            if align:
                aligned = aligned_neighbours(pictures, chosen[len(chosen) // 2], chosen, self.settings.reject, lumas)
                for slot, picture in enumerate(aligned):
                    row[..., 3 * slot:3 * slot + 3] = torch.from_numpy(picture)
            else:
                for slot, index in enumerate(chosen):
                    row[..., 3 * slot:3 * slot + 3] = group.frames[index].permute(1, 2, 0)
        return inputs

    def two_stage(self, group: FrameGroup) -> torch.Tensor:
        """`(N, 3, H, W)`: the core frames restored by a `TwoStageREDNet`, each stage-1 window of three frames
        computed once per group and shared by the frames that use it (a frame shares two of its three windows
        with each neighbour): per group of N core frames, N + 2 stage-1 runs instead of 3N. Equal to the network
        run on `network_inputs`."""
        chosen = self.neighbour_indices(group)
        windows = list(dict.fromkeys(window for indices in chosen for window in triplet_windows(indices)))
        first = self.with_level(torch.stack([group.frames[list(window)].flatten(0, 1) for window in windows]))
        denoised = torch.cat([self.denoise(chunk, self.model.triplet) for chunk in first.split(4)])
        slot = {window: index for index, window in enumerate(windows)}
        picks = [[slot[window] for window in triplet_windows(indices)] for indices in chosen]
        second = self.with_level(torch.stack([denoised[pick].flatten(0, 1) for pick in picks]))
        return torch.cat([self.denoise(chunk, self.model.fusion) for chunk in second.split(4)])

    def denoise(self, inputs: torch.Tensor, network: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`network` on `(N, C, H, W)` inputs → `(N, 3, H, W)`, tile by tile; each tile is computed with
        `TILE_MARGIN` pixels of surrounding context that are then discarded, so tiles join without seams."""
        height, width = inputs.shape[-2:]
        tile = self.settings.tile or max(height, width)
        out = torch.empty_like(inputs[:, :3])
        for y, y_end in tile_spans(height, tile):
            for x, x_end in tile_spans(width, tile):
                y0, x0 = max(y - TILE_MARGIN, 0), max(x - TILE_MARGIN, 0)
                y1, x1 = min(y_end + TILE_MARGIN, height), min(x_end + TILE_MARGIN, width)
                patch = inputs[:, :, y0:y1, x0:x1].contiguous(memory_format=torch.channels_last)
                with self.ctx.autocast():
                    restored = network(patch).float()
                out[:, :, y:y_end, x:x_end] = restored[:, :, y - y0:y_end - y0, x - x0:x_end - x0]
        return out.clamp_(0, 1)

    def process(self, group: FrameGroup) -> FrameGroup:
        if self.external is not None:
            inputs, network = group.core_frames, self.external
        elif isinstance(self.model, TwoStageREDNet):
            return group.with_frames(self.two_stage(group))
        else:
            inputs, network = self.network_inputs(group), self.model
        return group.with_frames(torch.cat([self.denoise(chunk, network) for chunk in inputs.split(4)]))
