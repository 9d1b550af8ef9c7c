"""The seg2vid processor: label frames in CamVid colours → street-scene frames, one style per video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidgen.errors import VidgenError
from vidgen.processor import FrameGroup, Option, Processor, ProcessorContext
from vidgen.weights import load_weights
from vidgen_seg2vid.labels import CAMVID_CLASSES, CAMVID_PALETTE, describe_palette, decode_colours, label_flow
from vidgen_seg2vid.model import Generator, StyleEncoder, style_code, warp

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "seg2vid.safetensors"
# The style encoder reads a style photo at this short side (training crops are 128 px).
STYLE_SHORT_SIDE = 128


def read_style_image(path: Path, width: int, height: int, log) -> torch.Tensor:
    """The photo at `path` as `(1, 3, h, w)` float in [0, 1] at the encoder's scale; a photo of another size
    than the video is first resized to the video's `width`×`height` (and `log` says so)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VidgenError(f"seg2vid: style_image {path} cannot be read as an image")
    if bgr.shape[:2] != (height, width):
        log(f"seg2vid: style_image {path.name} is {bgr.shape[1]}x{bgr.shape[0]}, resized to the video's "
            f"{width}x{height}")
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    scale = STYLE_SHORT_SIDE / min(width, height)
    small = cv2.resize(bgr, (max(8, round(width * scale)), max(8, round(height * scale))), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255


def load_seg2vid(path: Path) -> tuple[Generator, StyleEncoder, dict]:
    """Generator, style encoder and metadata of a weights file written by `vidgen train seg2vid`."""
    tensors, meta = load_weights(path)
    try:
        generator = Generator(int(meta["classes"]), int(meta["style_dim"]), tuple(meta["widths"]), int(meta["hidden"]))
        encoder = StyleEncoder(int(meta["style_dim"]))
        generator.load_state_dict({k[len("generator."):]: t for k, t in tensors.items() if k.startswith("generator.")})
        encoder.load_state_dict({k[len("encoder."):]: t for k, t in tensors.items() if k.startswith("encoder.")})
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise VidgenError(f"seg2vid: {path} does not fit the seg2vid generator ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0]})") from None
    return generator.eval(), encoder.eval(), meta


class Seg2Vid(Processor):
    """Each frame is decoded to class indices (nearest palette colour), then generated from the one-hot
    labels, the previous output warped by the motion between the label frames, and the video's style."""

    name = "seg2vid"
    description = ("Semantic label video in CamVid colours (nearest match) → street-scene video. "
                   f"Classes (RGB): {describe_palette(CAMVID_PALETTE, CAMVID_CLASSES)}.")
    options = (
        Option("style", int, 0, "style number, kept for the whole video: 0 = the training photos' mean style, N >= 1 = a style drawn with seed N from their spread"),
        Option("style_image", Path, None, "a photo whose look (light, season, camera) the video takes; overrides style"),
        Option("temporal", bool, True, "condition each frame on the previous output warped onto it (false: independent frames, flickers more)"),
        Option("weights", Path, None, "weights (.safetensors from `vidgen train seg2vid`); default: shipped CamVid model"),
    )

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.settings.style < 0:
            raise VidgenError("seg2vid: style must be >= 0")
        if self.settings.style_image is not None and not Path(self.settings.style_image).is_file():
            raise VidgenError(f"seg2vid: style_image {self.settings.style_image} does not exist")
        self.group_size = 8
        self.context = (0, 0)
        self.warmup_frames = 8  # the previous output frame carries over: rebuild it before a cut

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        generator, encoder, meta = load_seg2vid(self.settings.weights or SHIPPED_WEIGHTS)
        self.generator = generator.to(self.device)
        self.classes = generator.classes
        self.palette = tuple(tuple(c) for c in meta["palette"])
        self.palette_name = "CamVid" if meta["labels"] == "camvid" else "seg2vid colour-region"
        dim = generator.style_dim
        if self.settings.style_image is not None:
            photo = read_style_image(Path(self.settings.style_image), context.video.width, context.video.height,
                                     context.log)
            with torch.no_grad():
                self.z = encoder(photo)[0].to(self.device)
        else:
            mean, spread = torch.tensor(meta["style_mean"]), torch.tensor(meta["style_std"])
            self.z = (mean + spread * style_code(self.settings.style, dim))[None].to(self.device)
        self.previous: torch.Tensor | None = None  # last output, padded, (1, 3, H8, W8)
        self.previous_labels: np.ndarray | None = None  # its labels, padded, (H8, W8) uint8

    def reset(self) -> None:
        """A new stream starts without a previous frame (the model and style code stay)."""
        self.previous = None

    def generate(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices `(T, H, W)` → frames `(T, 3, H, W)` in [0, 1], continuing from `self.previous`."""
        height, width = labels.shape[-2:]
        padded = F.pad(labels[:, None].float(), (0, -width % 8, 0, -height % 8), mode="replicate")[:, 0].long()
        frames = []
        for frame_labels in padded:
            onehot = F.one_hot(frame_labels, self.classes).permute(2, 0, 1)[None].float()
            label_map = frame_labels.byte().cpu().numpy()
            if self.settings.temporal and self.previous is not None:
                flow = torch.from_numpy(label_flow(self.previous_labels, label_map)).to(self.device)[None]
                previous, flag = warp(self.previous, flow), torch.ones_like(onehot[:, :1])
            else:
                previous, flag = torch.zeros_like(onehot[:, :3]), torch.zeros_like(onehot[:, :1])
            with self.ctx.autocast():
                out = self.generator(onehot, previous, flag, self.z).float()
            self.previous, self.previous_labels = out, label_map
            frames.append(out[0, :, :height, :width])
        return torch.stack(frames)

    def process(self, group: FrameGroup) -> FrameGroup:
        labels = decode_colours(group.core_frames, self.palette, self.palette_name)
        return group.with_frames(self.generate(labels))
