"""The seg2vid processor: colour-coded label frames → photo-like frames, one style code per video."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from vidgen.errors import VidgenError
from vidgen.processor import FrameGroup, Option, Processor, ProcessorContext
from vidgen.weights import load_weights
from vidgen_seg2vid.labels import PALETTE, class_names, decode_colours
from vidgen_seg2vid.model import Generator, style_code

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "seg2vid.safetensors"


def palette_text() -> str:
    """'0 dark grey (128,64,128), 1 ...' for the built-in classes."""
    return ", ".join(f"{k} {name} ({','.join(map(str, PALETTE[k]))})" for k, name in enumerate(class_names()))


class Seg2Vid(Processor):
    """Each frame is decoded to class indices (nearest palette colour), then generated from the one-hot
    labels, the previous output frame and the video's style code."""

    name = "seg2vid"
    description = ("Segmentation-label video (palette colours, nearest match) → photo-like video. "
                   f"Classes (RGB): {palette_text()}.")
    options = (
        Option("style", int, 0, "style number, kept for the whole video: 0 = the training photos' mean style code, N >= 1 = a code drawn with seed N from their spread"),
        Option("temporal", bool, True, "condition each frame on the previous output (false: independent frames, flickers more)"),
        Option("weights", Path, None, "generator weights (.safetensors from `vidgen train seg2vid`); default: shipped model"),
    )

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.settings.style < 0:
            raise VidgenError("seg2vid: style must be >= 0")
        self.group_size = 8
        self.context = (0, 0)
        self.warmup_frames = 8  # the previous output frame and style carry over: rebuild them before a cut

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        tensors, meta = load_weights(self.settings.weights or SHIPPED_WEIGHTS)
        try:
            self.generator = Generator(int(meta["classes"]), int(meta["style_dim"]), tuple(meta["widths"]))
            self.generator.load_state_dict(tensors)
        except (KeyError, RuntimeError) as exc:
            raise VidgenError(f"seg2vid: weights do not fit the seg2vid generator ({type(exc).__name__}: {exc})") from None
        self.generator.to(self.device).eval()
        self.classes = self.generator.classes
        dim = self.generator.style_dim
        mean = torch.tensor(meta.get("style_mean", [0.0] * dim))
        spread = torch.tensor(meta.get("style_std", [1.0] * dim))
        self.z = (mean + spread * style_code(self.settings.style, dim))[None].to(self.device)
        self.previous: torch.Tensor | None = None  # last output, padded, (1, 3, H8, W8)

    def reset(self) -> None:
        """A new stream starts without a previous frame (the model and style code stay)."""
        self.previous = None

    def generate(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices `(T, H, W)` → frames `(T, 3, H, W)` in [0, 1], continuing from `self.previous`."""
        height, width = labels.shape[-2:]
        pad_h, pad_w = -height % 8, -width % 8
        onehot = F.one_hot(labels, self.classes).permute(0, 3, 1, 2).float()
        onehot = F.pad(onehot, (0, pad_w, 0, pad_h), mode="replicate")
        frames = []
        for frame_labels in onehot:
            use_previous = self.settings.temporal and self.previous is not None
            previous = self.previous if use_previous else torch.zeros(1, 3, *onehot.shape[-2:], device=self.device)
            flag = torch.full_like(previous[:, :1], float(use_previous))
            with self.ctx.autocast():
                out = self.generator(frame_labels[None], previous, flag, self.z).float()
            self.previous = out
            frames.append(out[0, :, :height, :width])
        return torch.stack(frames)

    def process(self, group: FrameGroup) -> FrameGroup:
        labels = decode_colours(group.core_frames, self.classes)
        return group.with_frames(self.generate(labels))
