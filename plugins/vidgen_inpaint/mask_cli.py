"""`vidgen mask`: make the masks the inpaint processor reads, from detected overlays or a tracked box."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import click
import numpy as np

from vidgen.errors import VidgenError
from vidgen.sequences import IMAGE_SUFFIXES
from vidgen_inpaint.masks import VIDEO_SUFFIXES, dilate, parse_boxes, sample_video_frames
from vidgen_inpaint.tracking import TRACKERS, Box, TrackStep, box_from_point, check_box, track

SHEET_FRAMES = 6
THUMB_WIDTH = 320


def draw_mask(frame: np.ndarray, mask: np.ndarray, label: str) -> np.ndarray:
    """`frame` `(H, W, 3)` RGB with `mask` `(H, W)` bool tinted red and outlined, scaled to THUMB_WIDTH, labelled."""
    import cv2

    out = frame.copy()
    out[mask] = (0.5 * out[mask] + (127, 0, 0)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 40, 40), max(1, frame.shape[1] // 320))
    height = round(frame.shape[0] * THUMB_WIDTH / frame.shape[1])
    out = cv2.resize(out, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    cv2.putText(out, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(thumbs: list[np.ndarray], columns: int = 3) -> np.ndarray:
    """Thumbnails `(h, w, 3)` of one size in a grid with 4 px gaps, `(H, W, 3)` uint8."""
    h, w = thumbs[0].shape[:2]
    rows = -(-len(thumbs) // columns)
    sheet = np.full((rows * (h + 4) + 4, columns * (w + 4) + 4, 3), 255, np.uint8)
    for i, thumb in enumerate(thumbs):
        y, x = 4 + (i // columns) * (h + 4), 4 + (i % columns) * (w + 4)
        sheet[y:y + h, x:x + w] = thumb
    return sheet


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an RGB `(H, W, 3)` or grey `(H, W)` uint8 image to `path`."""
    import cv2

    if not cv2.imwrite(str(path), image[..., ::-1] if image.ndim == 3 else image):
        raise VidgenError(f"{path}: cannot write image")


class Publisher:
    """Outputs written under temporary names beside their targets and moved into place only when all are complete."""

    def __init__(self, targets: list[Path], overwrite: bool) -> None:
        for target in targets:
            if target.exists() and not overwrite:
                raise VidgenError(f"{target} exists (add --overwrite to replace it)")
            if not target.parent.is_dir():
                raise VidgenError(f"{target.parent}: no such folder")
        self.staged: list[tuple[Path, Path]] = []

    def stage(self, target: Path) -> Path:
        """A temporary path beside `target` to write to."""
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
        self.staged.append((temporary, target))
        return temporary

    def publish(self) -> None:
        for temporary, target in self.staged:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(temporary, target)
            temporary.parent.rmdir()
        self.staged = []

    def discard(self) -> None:
        for temporary, _ in self.staged:
            shutil.rmtree(temporary.parent, ignore_errors=True)


class MaskVideoWriter:
    """A lossless H.264 mask video (white = fill), one `(H, W)` bool mask per frame."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av
        from fractions import Fraction

        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"qp": "0"}

    def write(self, mask: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, 2), format="rgb24")
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()


def decode(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, `(H, W, 3)` uint8 RGB frame) for each frame of `path`."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VidgenError(f"{path}: cannot open video ({exc})") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


def box_mask(box: Box, width: int, height: int, pixels: int) -> np.ndarray:
    """`(H, W)` bool: the box, clipped to the frame, grown by `pixels`."""
    x, y, w, h = box
    mask = np.zeros((height, width), bool)
    mask[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    return dilate(mask, pixels)


def lost_ranges(held: list[bool]) -> list[tuple[int, int]]:
    """(first, last) frame of each run where the tracker did not hold the object."""
    ranges, start = [], None
    for index, ok in enumerate(held + [True]):
        if not ok and start is None:
            start = index
        elif ok and start is not None:
            ranges.append((start, index - 1))
            start = None
    return ranges


def overlay_masks(source: Path, output: Path, preview: Path | None, samples: int, pixels: int,
                  publisher: Publisher) -> None:
    from vidgen_inpaint.overlays import describe, find_overlays, overlay_mask

    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise VidgenError(f"{output}: overlays are static, so the mask is one image; name it .png")
    frames = sample_video_frames(source, count=samples)
    overlays = find_overlays(frames)
    if not overlays:
        raise VidgenError(f"{source}: no static overlay found in {len(frames)} sampled frames (nothing stays put "
                          "while the scene moves); nothing written")
    height, width = frames.shape[1:3]
    mask = dilate(overlay_mask(overlays, width, height), pixels)
    write_image(publisher.stage(output), mask.astype(np.uint8) * 255)
    if preview is not None:
        chosen = np.linspace(0, len(frames) - 1, min(SHEET_FRAMES, len(frames))).round().astype(int)
        thumbs = [draw_mask(frames[i], mask, f"sample {i + 1}/{len(frames)}") for i in chosen]
        write_image(publisher.stage(preview), contact_sheet(thumbs))
    publisher.publish()
    click.echo(f"{output}: {len(overlays)} static overlay region(s) in {len(frames)} sampled frames: "
               f"{describe(overlays)}" + (f"; grown by {pixels} px" if pixels else ""))


def tracked_masks(source: Path, output: Path, preview: Path | None, start_box: str | None, point: str | None,
                  at: float, method: str, pixels: int, publisher: Publisher) -> None:
    from vidgen.video import probe

    info = probe(source)
    width, height, total = info.width, info.height, info.frame_count
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    if output.suffix and not as_video:
        raise VidgenError(f"{output}: per-frame masks go to a folder (no suffix) or a mask video (.mp4, .mkv)")
    frames = decode(source)
    before: list[np.ndarray] = []
    for seconds, frame in frames:
        if seconds + 0.5 / max(info.fps, 1.0) >= at:
            first = frame
            break
        before.append(frame)
    else:
        raise VidgenError(f"{source}: --at {at} is past the end of the video")
    start = len(before)
    if point is not None:
        try:
            px, py = (int(v) for v in point.split(","))
        except ValueError:
            raise VidgenError(f"--point {point!r}: expected x,y") from None
        box = box_from_point(first, px, py)
    else:
        boxes = parse_boxes(start_box or "")
        if len(boxes) != 1:
            raise VidgenError("--track follows one box: give --box x,y,w,h")
        box = check_box(boxes[0], width, height)
    backward = list(track([first] + before[::-1], box, method))[1:][::-1] if before else []
    chosen = set(np.linspace(0, max(total - 1, 0), min(SHEET_FRAMES, max(total, 1))).round().astype(int).tolist())
    thumbs: list[np.ndarray] = []
    held: list[bool] = []
    target = publisher.stage(output)
    writer = MaskVideoWriter(target, width, height, info.fps) if as_video else None
    if writer is None:
        target.mkdir()

    tracker = TRACKERS[method](first, box)

    def steps() -> Iterator[tuple[np.ndarray, TrackStep]]:
        yield from zip(before, backward)
        yield first, TrackStep(box, True)
        for _, frame in frames:
            found, ok = tracker.update(frame)
            yield frame, TrackStep(found, ok)

    try:
        for index, (frame, step) in enumerate(steps()):
            mask = box_mask(step.box, width, height, pixels)
            if writer is not None:
                writer.write(mask)
            else:
                write_image(target / f"{index:06d}.png", mask.astype(np.uint8) * 255)
            held.append(step.held)
            if preview is not None and index in chosen:
                label = f"frame {index}" + ("" if step.held else " (lost)")
                thumbs.append(draw_mask(frame, mask, label))
    finally:
        if writer is not None:
            writer.close()
    if preview is not None:
        write_image(publisher.stage(preview), contact_sheet(thumbs))
    publisher.publish()
    fps = max(info.fps, 1e-6)
    kind = "mask video" if as_video else "folder of per-frame masks"
    click.echo(f"{output}: {kind}, {len(held)} frames; {method} tracker from box {box} at frame {start}"
               + (f"; grown by {pixels} px" if pixels else ""))
    ranges = lost_ranges(held)
    for first_lost, last_lost in ranges[:5]:
        click.echo(f"  lost the object at frame {first_lost} ({first_lost / fps:.2f} s) until frame {last_lost}; "
                   "the boxes there are guesses (check them)", err=True)
    if len(ranges) > 5:
        click.echo(f"  ... and {len(ranges) - 5} more losses ({held.count(False)} frames in all)", err=True)


@click.command("mask")
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", required=True,
              help="Mask image (.png) for static masks; folder (no suffix) or mask video (.mp4) for tracked ones.")
@click.option("--overlays", is_flag=True, help="Find static overlays (logos, score panels, tickers, timestamps, watermarks).")
@click.option("--box", "start_box", metavar="X,Y,W,H", help="The object's box (in the first frame, or at --at).")
@click.option("--point", metavar="X,Y", help="A pixel on the object: its box is the similarly coloured area around it.")
@click.option("--track", is_flag=True, help="Follow --box / --point through the clip and write per-frame masks.")
@click.option("--tracker", default="flow", show_default=True, type=click.Choice(sorted(TRACKERS)),
              help="flow: the object's pixels carried by optical flow, kept to its colours; motion: the same by "
                   "motion alone, at full size (slower); mil: OpenCV's MIL tracker.")
@click.option("--at", type=click.FloatRange(0), default=0.0, show_default=True, help="Time (s) the box or point refers to.")
@click.option("--dilate", "pixels", type=click.IntRange(0), default=0, show_default=True, help="Grow the mask by N pixels.")
@click.option("--samples", type=click.IntRange(12), default=48, show_default=True, help="Frames sampled for --overlays.")
@click.option("--preview", type=click.Path(dir_okay=False), help="Contact sheet (.png) of chosen frames with the mask drawn.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def mask_command(input_path: str, output: str, overlays: bool, start_box: str | None, point: str | None, track: bool,
                 tracker: str, at: float, pixels: int, samples: int, preview: str | None, overwrite: bool) -> None:
    """Write masks for `vidgen run INPUT --plugin inpaint --mask OUT`: found overlays, a box, or a tracked object."""
    source = Path(input_path)
    if not source.is_file():
        raise VidgenError(f"{source}: no such file")
    if track and start_box is None and point is None:
        raise VidgenError("--track needs the object: --box x,y,w,h or --point x,y")
    if point is not None and not track:
        raise VidgenError("--point marks an object to follow: add --track")
    if overlays and (start_box or point):
        raise VidgenError("--overlays finds regions itself: drop --box / --point (or run twice)")
    if not overlays and start_box is None and point is None:
        raise VidgenError("say what to mask: --overlays, --box x,y,w,h [--track] or --point x,y --track")
    if preview is not None and Path(preview).suffix.lower() not in IMAGE_SUFFIXES:
        raise VidgenError(f"--preview {preview}: name the contact sheet .png")
    target = Path(output)
    publisher = Publisher([target] + ([Path(preview)] if preview else []), overwrite)
    try:
        if overlays:
            overlay_masks(source, target, Path(preview) if preview else None, samples, pixels, publisher)
        elif track:
            tracked_masks(source, target, Path(preview) if preview else None, start_box, point, at, tracker,
                          pixels, publisher)
        else:
            static_box(source, target, Path(preview) if preview else None, start_box or "", pixels, publisher)
    finally:
        publisher.discard()


def static_box(source: Path, output: Path, preview: Path | None, start_box: str, pixels: int,
               publisher: Publisher) -> None:
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise VidgenError(f"{output}: a box without --track is one mask image; name it .png")
    frames = sample_video_frames(source, count=SHEET_FRAMES)
    height, width = frames.shape[1:3]
    mask = np.zeros((height, width), bool)
    for box in parse_boxes(start_box):
        x, y, w, h = check_box(box, width, height)
        mask[y:y + h, x:x + w] = True
    mask = dilate(mask, pixels)
    write_image(publisher.stage(output), mask.astype(np.uint8) * 255)
    if preview is not None:
        write_image(publisher.stage(preview),
                    contact_sheet([draw_mask(f, mask, f"sample {i + 1}") for i, f in enumerate(frames)]))
    publisher.publish()
    click.echo(f"{output}: static mask of {mask.sum()} pixels")
