"""The label-fidelity judge of `vidgen bench seg2vid`: a small segmentation network trained on CamVid photos.

It scores whether generated frames show what their labels say: segment the frame, compare with the input
labels (pixel accuracy, mean IoU over classes; void pixels ignored), next to the same scores on the real
photos. It works at half size (240×180 for CamVid's 480×360). `vidgen train seg2vid-judge --pairs DIR`.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidgen import VidgenError
from vidgen.training import (TrainingRun, TrainOptions, cosine_rate, set_learning_rate, split_holdout,
                             train_options)
from vidgen.weights import load_weights
from vidgen_seg2vid.labels import CAMVID_CLASSES

VOID = CAMVID_CLASSES.index("void")
SHIPPED_JUDGE = Path(__file__).parent / "weights" / "camvid-judge.safetensors"


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())


class Segmenter(nn.Module):
    """U-Net: photo `(N, 3, H, W)` in [0, 1] (H, W multiples of 8) → class logits `(N, K, H, W)`."""

    def __init__(self, classes: int = VOID, widths: tuple[int, int, int, int] = (16, 32, 64, 96)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.classes, self.widths = classes, widths
        self.enc = nn.ModuleList([block(3, w1), block(w1, w2), block(w2, w3), block(w3, w4)])
        self.dec = nn.ModuleList([block(w4 + w3, w3), block(w3 + w2, w2), block(w2 + w1, w1)])
        self.out = nn.Conv2d(w1, classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips, x = [], 2 * image - 1
        for index, encode in enumerate(self.enc):
            x = encode(F.max_pool2d(x, 2) if index else x)
            skips.append(x)
        for decode, skip in zip(self.dec, reversed(skips[:-1])):
            x = decode(torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip], 1))
        return self.out(x)


def half_size(photo: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 → the judge's input size: halved, then cropped to multiples of 8."""
    import cv2

    small = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return small[: small.shape[0] // 8 * 8, : small.shape[1] // 8 * 8]


def half_labels(labels: np.ndarray) -> np.ndarray:
    """Class map `(H, W)` at the judge's size (nearest, as `half_size`)."""
    small = labels[::2, ::2]
    return small[: small.shape[0] // 8 * 8, : small.shape[1] // 8 * 8]


class Judge:
    """Segments full-size frames `(N, H, W, 3)` uint8 and scores them against class maps `(N, H, W)`."""

    def __init__(self, segmenter: Segmenter, device: torch.device) -> None:
        self.segmenter, self.device = segmenter.to(device).eval(), device

    @classmethod
    def load(cls, path: str, device: torch.device) -> Judge:
        tensors, meta = load_weights(path)
        try:
            segmenter = Segmenter(int(meta["classes"]), tuple(meta["widths"]))
            segmenter.load_state_dict(tensors)
        except (KeyError, RuntimeError) as exc:
            raise VidgenError(f"{path}: not a seg2vid judge ({type(exc).__name__})") from None
        return cls(segmenter, device)

    @torch.no_grad()
    def segment_half(self, photos: np.ndarray) -> np.ndarray:
        """Half-size photos `(N, h, w, 3)` uint8 (h, w multiples of 8) → class indices `(N, h, w)`."""
        batch = torch.from_numpy(np.ascontiguousarray(photos)).permute(0, 3, 1, 2).float() / 255
        return torch.cat([self.segmenter(part.to(self.device)).argmax(1).cpu() for part in batch.split(8)]).numpy()

    def confusion(self, frames: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Confusion counts `(K, K)` (truth, prediction) of full-size frames `(N, H, W, 3)` vs labels `(N, H, W)`."""
        predicted = self.segment_half(np.stack([half_size(f) for f in frames]))
        return confusion_counts(predicted, np.stack([half_labels(l) for l in labels]), self.segmenter.classes)


def confusion_counts(predicted: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """`(K, K)` counts of (truth, prediction) over pixels whose truth is a class below `classes` (not void)."""
    known = truth < classes
    pairs = truth[known].astype(np.int64) * classes + predicted[known]
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def accuracy_and_iou(confusion: np.ndarray) -> tuple[float, float]:
    """Pixel accuracy and mean IoU (over classes present in the truth) of a confusion matrix."""
    true_positive = np.diag(confusion).astype(np.float64)
    present = confusion.sum(1) > 0
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    return float(true_positive.sum() / confusion.sum()), float(np.mean(true_positive[present] / union[present]))


def judge_crops(pairs: list[tuple[np.ndarray, np.ndarray]], size: int, count: int,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random mirrored crops `(count, 3, size, size)` float and `(count, size, size)` int64 of half-size pairs."""
    photos, labels = [], []
    for _ in range(count):
        photo, label = pairs[rng.integers(len(pairs))]
        y = rng.integers(photo.shape[0] - size + 1)
        x = rng.integers(photo.shape[1] - size + 1)
        step = -1 if rng.random() < 0.5 else 1
        photos.append(photo[y:y + size, x:x + size][:, ::step])
        labels.append(label[y:y + size, x:x + size][:, ::step])
    return (torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float() / 255,
            torch.from_numpy(np.stack(labels).astype(np.int64)))


@click.command("seg2vid-judge")
@click.option("--pairs", "pairs_dir", required=True, type=click.Path(file_okay=False), help="CamVid-like pairs: DIR/images, DIR/labels (class 11 = void, ignored).")
@train_options(default_out="seg2vid-judge.safetensors", default_minutes=7.0)
@click.option("--crop", type=int, default=128, show_default=True, help="Crop size at half resolution.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
def judge_command(options: TrainOptions, pairs_dir: str, crop: int, batch: int, lr: float) -> None:
    """Train the segmentation network that `vidgen bench seg2vid` uses to judge label fidelity."""
    from vidgen_seg2vid.train import pairs_from_folder

    kept, held = split_holdout([(half_size(p), half_labels(l)) for p, l in pairs_from_folder(pairs_dir)])
    segmenter = Segmenter().to(options.device)
    optimizer = torch.optim.Adam(segmenter.parameters(), lr)
    dtype = torch.float16 if options.device.type == "cuda" else torch.float32  # bf16 measured slower on CPU here
    run = TrainingRun(options, {"segmenter": segmenter, "optimizer": optimizer}, dtype)
    for step in run.steps():
        set_learning_rate(optimizer, cosine_rate(lr, run.progress, floor=0.02))
        photos, labels = (t.to(options.device) for t in judge_crops(kept, crop, batch, run.rng))
        with run.autocast():
            loss = F.cross_entropy(segmenter(photos).float(), labels, ignore_index=VOID)
        run.optimise(loss, optimizer)
        if step % 200 == 0:
            click.echo(f"step {step} [{run.elapsed / 60:.1f} min] cross-entropy {loss.item():.3f}")
    judge = Judge(segmenter, options.device)
    confusion = sum(confusion_counts(judge.segment_half(photo[None]), label[None], segmenter.classes)
                    for photo, label in held)
    accuracy, iou = accuracy_and_iou(confusion)
    click.echo(f"done: {run.step} steps in {run.elapsed / 60:.1f} min; held-out pixel accuracy {accuracy:.1%}, "
               f"mean IoU {iou:.1%}")
    card = run.model_card([pairs_dir], {"holdout_pixel_accuracy": round(accuracy, 4), "holdout_mean_iou": round(iou, 4)},
                          crop=crop, batch=batch, lr=lr, train_pairs=len(kept), held_out_pairs=len(held))
    run.save_weights(segmenter.state_dict(), {"classes": segmenter.classes, "widths": list(segmenter.widths)}, card)
