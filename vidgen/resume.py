"""Runs that survive interruption (`vidgen run --resume`).

The run keeps its finished work in a folder beside the target (`out.mp4.vidgen-work/`): a manifest that
names the input, the chain and every option, and the output encoded in segments (`seg-START-STOP.mp4`,
frames START..STOP-1, video only, original pts). Segments and the manifest are written to a hidden
temporary file, flushed to disk and renamed, so a kill at any instant leaves a complete segment or none.
A later run with the same manifest continues after the last complete segment (stateful processors get
their `warmup_frames` first, as on Ray); at the end the segments are joined without re-encoding, the
audio and subtitles copied once from the source, and the folder is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import av

from vidgen.distributed import Reach, Segment, frame_layout, join_segments, segment_frames
from vidgen.engine import RunResult, check_output_path
from vidgen.engine import run as run_pipeline
from vidgen.errors import UndecodableSegmentError, VidgenError
from vidgen.mediaio import MediaIO
from vidgen.processor import Processor
from vidgen.sequences import SequenceOutput, SequenceWriter
from vidgen.video import DecodedFrame, EncodeSettings, VideoReader, VideoWriter

WORK_SUFFIX = ".vidgen-work"
MANIFEST = "manifest.json"
SEGMENT_SECONDS = 60.0  # a local run closes a segment after this much work (unless segment_frames is set)
HASHED_BYTES = 1 << 20  # the input's first and last MiB are hashed to recognise it
_SEGMENT_NAME = re.compile(r"seg-(\d{8})-(\d{8})\.\w+")


def work_folder(dst: Path) -> Path:
    """The folder beside `dst` that keeps a resumable run's finished work."""
    return dst.with_name(dst.name + WORK_SUFFIX)


def input_identity(src: Path) -> dict[str, Any]:
    """Size, modification time and a hash of the first and last MiB of `src`."""
    stat = src.stat()
    digest = hashlib.sha256()
    with open(src, "rb") as file:
        digest.update(file.read(HASHED_BYTES))
        file.seek(max(0, stat.st_size - HASHED_BYTES))
        digest.update(file.read(HASHED_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}


def run_manifest(src: Path, chain: list[tuple[str, dict[str, Any]]], options: dict[str, Any]) -> dict[str, Any]:
    """What a run's result depends on: vidgen's version, the input, the chain and the options."""
    from vidgen import __version__

    return {"vidgen": __version__, "input": input_identity(src),
            "chain": [[name, {key: str(value) for key, value in sorted(opts.items())}] for name, opts in chain],
            "options": {key: value for key, value in sorted(options.items())}}


def manifest_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What differs between two manifests, in a few words; None when they are equal."""
    if old.get("vidgen") != new["vidgen"]:
        return f"it was made by vidgen {old.get('vidgen')}, this is {new['vidgen']}"
    if old.get("input") != new["input"]:
        changed = [key for key in new["input"] if old.get("input", {}).get(key) != new["input"][key]]
        return f"the input file changed ({', '.join(changed)} differ)"
    if old.get("chain") != new["chain"]:
        return f"the chain differs (was {_describe_chain(old.get('chain', []))}, now {_describe_chain(new['chain'])})"
    old_options = old.get("options", {})
    for key in sorted(set(old_options) | set(new["options"])):
        if old_options.get(key) != new["options"].get(key):
            return f"option {key} differs (was {old_options.get(key)!r}, now {new['options'].get(key)!r})"
    return None


def _describe_chain(chain: list) -> str:
    return " → ".join(name + "".join(f" {k}={v}" for k, v in opts.items()) for name, opts in chain) or "no plugin"


def sync_folder(folder: Path) -> None:
    """Flush `folder`'s entries (a rename inside it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp: Path, final: Path) -> None:
    """Flush `tmp` to disk and rename it to `final` (same folder), so `final` is complete or absent."""
    with open(tmp, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(tmp, final)
    sync_folder(final.parent)


@dataclass
class WorkFolder:
    """The folder of a resumable run: its manifest and its finished segments."""

    path: Path
    suffix: str  # of the segment files: the output's, so they use its container

    @classmethod
    def open(cls, dst: Path, manifest: dict[str, Any], overwrite: bool) -> WorkFolder:
        """The work folder of `dst`, created with `manifest`, or an existing one whose manifest matches
        (a one-line error saying what differs, and nothing deleted, when it does not); `overwrite` clears it."""
        folder = cls(work_folder(dst), dst.suffix or ".mp4")
        if folder.path.is_dir() and overwrite:
            shutil.rmtree(folder.path)
        if folder.path.is_dir():
            try:
                old = json.loads((folder.path / MANIFEST).read_text())
            except (OSError, ValueError):
                old = None
            difference = "its manifest is missing or unreadable" if old is None else manifest_difference(old, manifest)
            if difference:
                raise VidgenError(f"{dst}: cannot resume the work in {folder.path}: {difference}; nothing was deleted "
                                  "(remove the folder, or use --overwrite, to start over)")
            folder.remove_temporaries()
            return folder
        folder.path.mkdir()
        tmp = folder.path / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        commit_file(tmp, folder.path / MANIFEST)
        sync_folder(folder.path.parent)
        return folder

    def remove_temporaries(self) -> None:
        """Remove the hidden files a killed run left (a segment or a join it was writing)."""
        for path in self.path.iterdir():
            if path.name.startswith(".") and path.is_file():
                path.unlink()

    def segment_path(self, start: int, stop: int) -> Path:
        return self.path / f"seg-{start:08d}-{stop:08d}{self.suffix}"

    def finished(self) -> list[tuple[int, int]]:
        """The (start, stop) of the complete segments from frame 0 on, in order, up to the first gap or
        damaged segment; later segment files are removed (they are made again)."""
        spans = []
        for path in self.path.iterdir():
            match = _SEGMENT_NAME.fullmatch(path.name)
            if match:
                spans.append((int(match[1]), int(match[2])))
        kept: list[tuple[int, int]] = []
        for start, stop in sorted(spans):
            if start == (kept[-1][1] if kept else 0) and self.holds(start, stop):
                kept.append((start, stop))
            else:
                self.segment_path(start, stop).unlink()
        return kept

    def holds(self, start: int, stop: int) -> bool:
        """Whether segment `start..stop-1` is there and complete (it holds its frames' packets)."""
        try:
            with av.open(str(self.segment_path(start, stop))) as container:
                packets = sum(1 for packet in container.demux(video=0) if packet.size)
        except (OSError, av.FFmpegError, IndexError):
            return False
        return packets == stop - start

    def remove(self) -> None:
        shutil.rmtree(self.path)
        sync_folder(self.path.parent)


class ResumedReader:
    """`reader`'s frames from `segment.warmup_start` on (sought to the keyframe before it), numbered by
    their place in the whole video; every other attribute is `reader`'s."""

    def __init__(self, reader: VideoReader, segment: Segment) -> None:
        self.reader = reader
        self.segment = segment
        self.estimated_frames = segment.decode_stop - segment.warmup_start

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def frames(self, rgb: bool = True) -> Iterator[DecodedFrame]:
        if self.segment.first_index:
            self.reader.seek(self.segment.pts[0])
        return segment_frames(self.reader, self.segment, rgb)


class SegmentWriter:
    """Encodes frames from `start` on into segment files of `work` (a `VideoWriter` for each, video
    only); a segment is closed after `frames_per_segment` frames, or when unset after `SEGMENT_SECONDS`."""

    def __init__(self, work: WorkFolder, source: VideoReader, settings: EncodeSettings, warn: Callable[[str], None],
                 start: int, frames_per_segment: int | None) -> None:
        self.work, self.source, self.settings, self.warn = work, source, settings, warn
        self.next_start = start
        self.frames_per_segment = frames_per_segment
        self.writer: VideoWriter | None = None
        self.tmp = work.path / f".segment{work.suffix}"
        self.written = 0
        self.opened = 0.0

    def write(self, image: Any, pts: int | None, index: int) -> None:
        if index < self.next_start:
            return  # a warm-up frame: processed for the state it leaves, output already kept
        if self.writer is None:
            self.writer = VideoWriter(self.tmp, self.source, self.settings, self.warn, copy_streams=False)
            self.written, self.opened = 0, time.monotonic()
        self.writer.write(image, pts, index)
        self.written += 1
        if self.frames_per_segment:
            full = self.written >= self.frames_per_segment
        else:
            full = time.monotonic() - self.opened >= SEGMENT_SECONDS
        if full:
            self._finish()

    def _finish(self) -> None:
        self.writer.close()
        self.writer = None
        stop = self.next_start + self.written
        commit_file(self.tmp, self.work.segment_path(self.next_start, stop))
        self.next_start = stop

    def close(self) -> None:
        if self.writer is not None:
            self._finish()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.tmp.unlink(missing_ok=True)


def run_resumable(
    src: Path,
    dst: Path,
    processors: list[Processor],
    manifest: dict[str, Any],
    *,
    encode: EncodeSettings,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    strict: bool = False,
    segment_frames: int | None = None,
    images: SequenceOutput | None = None,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> RunResult:
    """`engine.run` that keeps its finished segments in `work_folder(dst)` and continues after them.

    `manifest` (see `run_manifest`) must match the folder's; the segments are joined into `dst` at the end.
    With `images` (an image-sequence output, `dst` its pattern) the work folder keeps the images written so
    far instead, each written atomically, and they are moved into place at the end.
    """
    src, dst = Path(src), Path(dst)
    started = time.perf_counter()
    work_exists = work_folder(dst).is_dir()
    if images is None:
        check_output_path(src, dst, overwrite or work_exists)  # a kill after the join's rename left `dst` and the folder
    elif not work_exists:
        images.discard(images.stage(dst))  # the checks an image-sequence output makes before it starts
    layout = frame_layout(src)
    if layout is None:
        raise VidgenError(f"{src}: --resume needs a video whose frames all have timestamps and that can be read "
                          "to its end; run it without --resume")
    pts, keyframes = layout
    work = WorkFolder.open(dst, manifest, overwrite)
    total = len(pts)
    if images is None:
        done = work.finished()
        start = done[-1][1] if done else 0
    else:
        start = kept_images(work, images.pattern.name, total)
    if start:
        log(f"{dst}: resuming at frame {start} of {total} (work kept in {work.path})")
    planned = segment_plan(pts, keyframes, start, Reach.of(processors))

    def open_writer(tmp: Path, reader: VideoReader, settings: EncodeSettings, warn: Callable[[str], None]) -> Any:
        if images is None:
            return SegmentWriter(work, reader, settings, warn, start, segment_frames)
        return ImageWriter(work, reader, settings, warn, images.pattern.name, start)

    frames_out = 0
    if start < total:
        io = MediaIO(open_reader=lambda path, strict_: ResumedReader(VideoReader(path, strict_), planned),
                     open_writer=open_writer, stage=lambda target: work.path, commit=lambda tmp, target: None,
                     discard=lambda tmp: None)
        try:
            result = run_pipeline(src, dst, processors, encode=encode, device=device, precision=precision,
                                  overwrite=True, progress=progress, strict=strict, log=log, io=io)
        except UndecodableSegmentError as exc:
            raise VidgenError(f"{exc}; run it without --resume") from None
        frames_out = result.frames - (start - planned.warmup_start)
    if images is not None:
        finish_images(work, images, total, src)
        return RunResult(frames_out, time.perf_counter() - started, dst)
    spans = work.finished()
    if not spans or spans[-1][1] != total:
        kept = spans[-1][1] if spans else 0
        raise VidgenError(f"{src}: only {kept} of the {total} frames its packets promise could be decoded; "
                          "run it without --resume")
    join_work(src, dst, work, spans, encode, log)
    return RunResult(frames_out, time.perf_counter() - started, dst)


def join_work(src: Path, dst: Path, work: WorkFolder, spans: list[tuple[int, int]], encode: EncodeSettings,
              log: Callable[[str], None]) -> int:
    """Join the segments `spans` of `work` into `dst` (audio and subtitles copied from `src`), then remove
    `work`; the frame count. The joined file is made inside `work` and renamed into place."""
    joined = work.path / f"joined{work.suffix}"
    frames = join_segments(src, joined, [work.segment_path(*span) for span in spans], [b - a for a, b in spans],
                           encode, log)
    commit_file(joined, dst)
    work.remove()
    return frames


class ImageWriter:
    """Writes frames from `start` on as the images of `pattern` into `work`, each to a hidden name first
    and renamed once complete (a `SequenceWriter` does the writing)."""

    def __init__(self, work: WorkFolder, source: VideoReader, settings: EncodeSettings, warn: Callable[[str], None],
                 pattern: str, start: int) -> None:
        self.work, self.pattern, self.start = work, pattern, start
        self.images = SequenceWriter(work.path, source, settings, warn, pattern="." + pattern)

    def write(self, image: Any, pts: int | None, index: int) -> None:
        if index < self.start:
            return
        self.images.write(image, pts, index)
        commit_file(self.work.path / ("." + self.pattern % index), self.work.path / (self.pattern % index))

    def close(self) -> None:
        """Every image is in place once written."""

    def abort(self) -> None:
        """A half-written image is a hidden file, removed when the work folder is next opened."""


def kept_images(work: WorkFolder, pattern: str, total: int) -> int:
    """How many images of `pattern` the work folder holds from frame 0 on, without a gap."""
    count = 0
    while count < total and (work.path / (pattern % count)).is_file():
        count += 1
    return count


def finish_images(work: WorkFolder, images: SequenceOutput, total: int, src: Path) -> None:
    """Move the `total` images of `work` into place (replacing older frames of the pattern), then remove it."""
    kept = kept_images(work, images.pattern.name, total)
    if kept != total:
        raise VidgenError(f"{src}: only {kept} of the {total} frames its packets promise could be decoded; "
                          "run it without --resume")
    for old in images.existing():
        old.unlink()
    for index in range(total):
        name = images.pattern.name % index
        os.replace(work.path / name, images.pattern.parent / name)
    sync_folder(images.pattern.parent)
    work.remove()


def segment_plan(pts: list[int], keyframes: list[int], start: int, reach: Reach) -> Segment:
    """The frames a run from output frame `start` to the end decodes: from the keyframe before its
    warm-up start (the chain's reach before `start`, rounded down to its group grid)."""
    warmup_start = max(0, (start - reach.before) // reach.align * reach.align) if start else 0
    first_index = max((k for k in keyframes if k <= warmup_start), default=0)
    return Segment(start, len(pts), first_index, warmup_start, len(pts), tuple(pts[first_index:]))
