"""`vidgen bench seg2vid`: the CamVid model on CamVid val (never trained on), against the real photos.

(1) Label fidelity: a segmentation network trained on CamVid train (the judge, `vidgen train
seg2vid-judge`) segments each generated frame; pixel accuracy and mean IoU against the input labels, next to
the judge's own scores on the real photos. (2) Per class and photo, the mean colour of the output against
the real photo's (Pearson correlation over all classes, photos and channels), and texture: the within-class
standard deviation of the output over the photo's. (3) Warping error (Lai et al., flow from the real frames,
×1000) on clips made by moving a val label map and its photo along the same pan/zoom path, full model vs
per-frame generation. (4) Speed at 480×360 at `--precision`. Baseline: each class painted with its mean
colour over CamVid train.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

import vidgen
from vidgen import VidgenError
from vidgen.bench import SPEED_HEADER, BenchOptions, FrameSize, bench_options, contact_sheet, count_flops, print_table, timed
from vidgen.metrics import warping_error
from vidgen.processor import ProcessorContext, VideoMeta
from vidgen.synth import camera_path
from vidgen_seg2vid.judge import SHIPPED_JUDGE, Judge, accuracy_and_iou
from vidgen_seg2vid.labels import CAMVID_CLASSES, colourise, label_path
from vidgen_seg2vid.processor import Seg2Vid
from vidgen_seg2vid.train import pairs_from_folder

VOID = CAMVID_CLASSES.index("void")
MIN_CLASS_PIXELS = 400


def class_means(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Mean colour `(K, 3)` float of every CamVid class over all pixels of `pairs` (photo, labels)."""
    sums, counts = np.zeros((len(CAMVID_CLASSES), 3)), np.zeros(len(CAMVID_CLASSES))
    for photo, labels in pairs:
        flat = labels.ravel()
        counts += np.bincount(flat, minlength=len(counts))
        for channel in range(3):
            sums[:, channel] += np.bincount(flat, photo[..., channel].ravel(), minlength=len(counts))
    return sums / np.maximum(counts, 1)[:, None]


def colour_statistics(output: np.ndarray, photo: np.ndarray, labels: np.ndarray) -> tuple[list, list, list, list]:
    """Per class with enough pixels (void excluded): mean RGB of output and photo, and their mean
    within-class standard deviation."""
    means_out, means_photo, std_out, std_photo = [], [], [], []
    for k in np.unique(labels):
        inside = labels == k
        if k == VOID or inside.sum() < MIN_CLASS_PIXELS:
            continue
        means_out.append(output[inside].mean(0))
        means_photo.append(photo[inside].mean(0))
        std_out.append(output[inside].std(0).mean())
        std_photo.append(photo[inside].std(0).mean())
    return means_out, means_photo, std_out, std_photo


class StillScores:
    """Accumulates judge confusion and colour statistics of one method over the val photos."""

    def __init__(self, judge: Judge) -> None:
        self.judge, self.confusion, self.stats = judge, 0, ([], [], [], [])

    def add(self, output: np.ndarray, photo: np.ndarray, labels: np.ndarray) -> None:
        self.confusion = self.confusion + self.judge.confusion(output[None], labels[None])
        for collected, new in zip(self.stats, colour_statistics(output, photo, labels)):
            collected.extend(new)

    def cells(self) -> list[str]:
        accuracy, iou = accuracy_and_iou(self.confusion)
        means_out, means_photo, std_out, std_photo = (np.asarray(s, np.float64) for s in self.stats)
        correlation = np.corrcoef(means_out.ravel(), means_photo.ravel())[0, 1]
        return [f"{accuracy:.1%}", f"{iou:.1%}", f"{correlation:.3f}", f"{std_out.sum() / std_photo.sum():.2f}"]


def render(processor: Seg2Vid, labels: np.ndarray) -> np.ndarray:
    """One still `(H, W)` class map → `(H, W, 3)` uint8 through a set-up processor, without history."""
    processor.previous = None
    with torch.no_grad():
        frame = processor.generate(torch.from_numpy(labels.astype(np.int64))[None].to(processor.device))[0]
    return frame.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


@click.command("seg2vid")
@click.option("--camvid", type=click.Path(file_okay=False, exists=True), required=True,
              help="CamVid folder with train/ and val/ (images/, labels/), e.g. ../shared/data/segmentation/CamVid.")
@click.option("--judge", "judge_path", type=click.Path(dir_okay=False), default=None,
              help="Judge weights from `vidgen train seg2vid-judge` (default: the shipped camvid-judge.safetensors).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="seg2vid weights (default: shipped).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Use only the first N val photos.")
@click.option("--clips", type=click.IntRange(1), default=6, show_default=True, help="Moving-label clips for the warping error.")
@click.option("--size", type=FrameSize(), default="320x240", show_default=True, help="Clip size WIDTHxHEIGHT.")
@click.option("--frames", type=click.IntRange(2), default=10, show_default=True, help="Frames per clip.")
@bench_options(default_device="auto")
def bench_command(options: BenchOptions, camvid: str, judge_path: str, weights: str | None, limit: int | None,
                  clips: int, size: tuple[int, int], frames: int) -> None:
    """seg2vid on CamVid val: judge accuracy / mIoU, colour and texture vs the real photos, warping error
    (full vs per-frame), speed. The contact sheet (--sheet) shows labels, outputs and the real photo."""
    root = Path(camvid)
    if not (root / "val" / "labels").is_dir() or not (root / "train" / "labels").is_dir():
        raise VidgenError(f"{root}: no CamVid train/ and val/ folders (images/, labels/) there; pass --camvid DIR")
    judge_path = judge_path or str(SHIPPED_JUDGE)
    if not Path(judge_path).is_file():
        raise VidgenError(f"{judge_path}: no judge weights; train them with `vidgen train seg2vid-judge --pairs "
                          f"{root / 'train'} --out JUDGE.safetensors` and pass --judge JUDGE.safetensors")
    val = pairs_from_folder(str(root / "val"))[:limit]
    val_names = sorted(p.stem for p in (root / "val" / "images").glob("*"))[:limit]
    means = class_means(pairs_from_folder(str(root / "train")))
    judge = Judge.load(judge_path, options.device)
    settings = {"weights": Path(weights)} if weights else {}
    height, width = val[0][1].shape
    context = ProcessorContext(options.device, options.dtype, VideoMeta(width, height, 25.0), log=lambda _: None)
    style0 = Seg2Vid(**settings)
    style0.setup(context)

    methods = ["real photos (reference)", "class-mean colours (CamVid train)", "seg2vid (style 0)",
               "seg2vid (style_image = the real photo)"]
    scores = {name: StillScores(judge) for name in methods}
    shown = sorted({0, len(val) // 3, 2 * len(val) // 3})
    sheet: dict[str, list[np.ndarray]] = {"labels": [], **{name: [] for name in methods[1:]}, "real photo": []}
    for index, ((photo, labels), name) in enumerate(zip(val, val_names)):
        image_path = next((root / "val" / "images").glob(f"{name}.*"))
        own_style = Seg2Vid(style_image=image_path, **settings)
        own_style.setup(context)
        outputs = {methods[0]: photo, methods[1]: means[labels].round().astype(np.uint8),
                   methods[2]: render(style0, labels), methods[3]: render(own_style, labels)}
        for method, output in outputs.items():
            scores[method].add(output, photo, labels)
        if index in shown:
            sheet["labels"].append(colourise(labels))
            for method in methods[1:]:
                sheet[method].append(outputs[method])
            sheet["real photo"].append(photo)
    click.echo(f"{len(val)} val photos scored", err=True)

    width_c, height_c = size
    warping: dict[str, list[float]] = {"real photos (reference)": [], "class-mean colours (CamVid train)": [],
                                       "seg2vid per-frame (temporal=false)": [], "seg2vid (style 0)": []}
    for clip_index in range(clips):
        photo, labels = val[clip_index * len(val) // clips]
        moving = label_path(labels, width_c, height_c, frames, seed=clip_index)
        real = camera_path(photo, width_c, height_c, frames, seed=clip_index)
        label_clip = colourise(moving)
        warping["real photos (reference)"].append(warping_error(real, real))
        warping["class-mean colours (CamVid train)"].append(warping_error(means[moving].round().astype(np.uint8), real))
        for method, temporal in (("seg2vid per-frame (temporal=false)", False), ("seg2vid (style 0)", True)):
            ready = vidgen.processor("seg2vid", device=str(options.device), precision=options.precision,
                                     temporal=temporal, **settings)
            warping[method].append(warping_error(ready(label_clip), real))
    click.echo(f"{clips} moving-label clips scored", err=True)

    speed_clip = colourise(label_path(val[0][1], width, height, 8, seed=0))
    ready = vidgen.processor("seg2vid", device=str(options.device), precision=options.precision, **settings)
    ready(speed_clip[:2])  # warm-up
    _, seconds = timed(lambda: ready(speed_clip), options.device)
    fps = len(speed_clip) / seconds
    flops = count_flops(lambda: ready(speed_clip[:2])) / 2

    click.echo(f"\nseg2vid on CamVid val ({len(val)} photos, {width}x{height}; judge = segmentation net trained on "
               f"CamVid train, at half size, void ignored); warping error on {clips} moving-label clips "
               f"({width_c}x{height_c}, {frames} frames); {options.device}, {options.dtype}; "
               f"{options.rates.describe()}\n")
    real_accuracy = accuracy_and_iou(scores[methods[0]].confusion)[0]
    table = []
    for name in [*methods[:2], "seg2vid per-frame (temporal=false)", *methods[2:]]:
        still = scores[name].cells() if name in scores else ["–"] * 4
        if name in scores and name != methods[0]:
            share = f"{accuracy_and_iou(scores[name].confusion)[0] / real_accuracy:.0%}"
        else:
            share = "–"
        warp = f"{np.mean(warping[name]):.3f}" if name in warping else "–"
        speed = [f"{fps:.2f}", *options.speed_cells(flops, fps)] if name == "seg2vid (style 0)" else ["–"] * 5
        table.append([name, still[0], share, still[1], still[2], still[3], warp, *speed])
    print_table(["method", "judge pixel acc.", "of real photos' acc.", "judge mIoU", "class colour corr.",
                 "texture (std / photo's)", "warping error ×1000", f"fps {width}x{height}", *SPEED_HEADER], table)
    if options.sheet:
        contact_sheet(options.sheet, {k: np.stack(v) for k, v in sheet.items()}, list(range(len(shown))))
