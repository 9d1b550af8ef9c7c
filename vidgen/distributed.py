"""Batch runs on a Ray cluster: whole videos and keyframe-aligned segments, joined without re-encoding.

The driver plans the work (which frames each task outputs), Ray actors build the processor chain once
and process whole videos or segments, and the driver joins the segments of a video by remuxing their
packets into the final file, copying the audio and subtitle streams once from the source.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import av

from vidgen.engine import check_output_path, encodable_frames, prepare_processors, temporary_output
from vidgen.engine import run as run_pipeline
from vidgen.errors import UndecodableSegmentError, VidgenError
from vidgen.plugins import get_processor_class
from vidgen.processor import Processor
from vidgen.video import DecodedFrame, EncodeSettings, VideoReader, VideoWriter, open_video

DEFAULT_SEGMENT_FRAMES = 1500
ACTOR_MAX_RESTARTS = 2
ACTOR_MAX_TASK_RETRIES = 2

if TYPE_CHECKING:
    from vidgen.resume import WorkFolder

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class ChainSpec:
    """What a worker needs to build the processor chain itself: plugin names (or importable processor
    classes) with their options, and the group size override. Processor objects are never shipped."""

    plugins: tuple[tuple[str | type[Processor], dict[str, Any]], ...] = ()
    group_size: int | None = None

    def build(self) -> list[Processor]:
        """Instantiate the chain (models load later, in each processor's `setup`)."""
        built = []
        for plugin, options in self.plugins:
            cls = get_processor_class(plugin) if isinstance(plugin, str) else plugin
            processor = cls(**options)
            if self.group_size:
                processor.group_size = self.group_size
            built.append(processor)
        return built


@dataclass(frozen=True)
class Reach:
    """How many frames around a frame a chain reads to produce it, and the grid its groups start on.

    `before` adds each processor's context before, its group size - 1 and its `warmup_frames` (the history
    a stateful processor needs, 0 when it does not declare it); `after` adds context after and group size.
    """

    before: int
    after: int
    align: int

    @classmethod
    def of(cls, processors: list[Processor]) -> Reach:
        before = sum(p.context[0] + p.group_size - 1 + p.warmup_frames for p in processors)
        after = sum(p.context[1] + p.group_size for p in processors)
        align = math.lcm(*(p.group_size for p in processors)) if processors else 1
        return cls(before, after, align)


@dataclass(frozen=True)
class Segment:
    """Output frames `start..stop-1` (presentation order) of a video.

    The worker seeks to the keyframe at presentation index `first_index`, feeds the chain frames
    `warmup_start..decode_stop-1` and keeps only the outputs of `start..stop-1`; `pts` lists the pts of
    frames `first_index..decode_stop-1`, so every decoded frame gets its index in the whole video.
    """

    start: int
    stop: int
    first_index: int
    warmup_start: int
    decode_stop: int
    pts: tuple[int, ...]

    @property
    def frames(self) -> int:
        return self.stop - self.start


def frame_layout(src: str | os.PathLike) -> tuple[list[int], list[int]] | None:
    """The pts of every frame in presentation order and the presentation indices of the keyframes,
    read from the packets (no decoding); None when a packet has no pts or the demuxer cannot read to the
    end (the video is not split: one worker reads it as `engine.run` does, damage included)."""
    with open_video(src) as container:
        stream = container.streams.video[0]
        pts, keyframe_pts = [], []
        try:
            for packet in container.demux(stream):
                if not packet.size or packet.is_discard:  # discarded packets (edit lists) decode to no frame
                    continue
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframe_pts.append(packet.pts)
        except av.FFmpegError:
            return None
    pts.sort()
    position = {value: index for index, value in enumerate(pts)}
    if len(position) != len(pts):
        return None
    return pts, sorted(position[value] for value in keyframe_pts)


def plan_segments(pts: list[int], keyframes: list[int], segment_frames: int, reach: Reach) -> list[Segment]:
    """Cut at keyframes into segments of at least `segment_frames` frames (one segment when <= 0)."""
    total = len(pts)
    cuts = [0]
    if segment_frames > 0:
        for keyframe in keyframes:
            if keyframe - cuts[-1] >= segment_frames and keyframe < total:
                cuts.append(keyframe)
    cuts.append(total)
    segments = []
    for start, stop in zip(cuts, cuts[1:]):
        warmup_start = max(0, (start - reach.before) // reach.align * reach.align)
        first_index = max((k for k in keyframes if k <= warmup_start), default=0)
        decode_stop = min(total, stop + reach.after)
        segments.append(Segment(start, stop, first_index, warmup_start, decode_stop, tuple(pts[first_index:decode_stop])))
    return segments


class ChainWorker:
    """Builds the processor chain once, then processes whole videos or segments (a Ray actor's body)."""

    def __init__(self, spec: ChainSpec, encode: EncodeSettings, device: str, precision: str, threads: int,
                 strict: bool = False) -> None:
        import torch  # here, so `vidgen.resume` can import this module without torch for plain re-encodes

        from vidgen.allocator import keep_freed_memory

        torch.set_num_threads(max(1, threads))
        keep_freed_memory()  # a worker process is vidgen's own, like the `vidgen` command's
        self.processors = spec.build()
        self.encode = encode
        self.device = device
        self.precision = precision
        self.strict = strict

    def run_video(self, src: Path, dst: Path) -> int:
        """Process a whole video into `dst` (temporary file + rename, audio copied); the frame count."""
        result = run_pipeline(src, dst, self.processors, encode=self.encode, device=self.device,
                              precision=self.precision, overwrite=True, strict=self.strict, log=_stderr)
        return result.frames

    def run_segment(self, src: Path, segment: Segment, part: Path) -> int:
        """Write the video-only segment `part`: frames `segment.start..stop-1` with their original pts."""
        from vidgen.resume import commit_file

        reader = VideoReader(src, self.strict)
        writer: VideoWriter | None = None
        tmp = part.with_name(f".{part.name}")
        try:
            device = prepare_processors(self.processors, reader, self.device, self.precision, _stderr)
            reader.seek(segment.pts[0])
            writer = VideoWriter(tmp, reader, self.encode, _stderr, copy_streams=False)
            written = 0
            frames = segment_frames(reader, segment, rgb=bool(self.processors))
            for image, pts, index in encodable_frames(frames, self.processors, device, reader.deep):
                if segment.start <= index < segment.stop:
                    writer.write(image, pts, index)
                    written += 1
            if written != segment.frames:
                raise UndecodableSegmentError(f"{src}: segment {segment.start}-{segment.stop - 1} gave {written} "
                                              f"frames, {segment.frames} expected")
            writer.close()
            writer = None
            commit_file(tmp, part)
            return written
        except BaseException:
            if writer is not None:
                writer.abort()
            tmp.unlink(missing_ok=True)
            for processor in self.processors:
                processor.abort()
            raise
        finally:
            reader.close()


def segment_frames(reader: VideoReader, segment: Segment, rgb: bool) -> Iterator[DecodedFrame]:
    """The decoded frames a segment needs (its warm-up frames, then its own) after `reader` was sought to
    the segment's keyframe, numbered by their index in the whole video."""
    index_of = {value: segment.first_index + offset for offset, value in enumerate(segment.pts)}
    expected = segment.warmup_start
    for item in reader.frames(rgb=rgb):
        index = index_of.get(item.pts) if item.pts is not None else None
        if index is None or index < segment.warmup_start:
            continue  # before the frames this segment needs (or a leading frame of an open GOP)
        if index != expected:
            raise UndecodableSegmentError(f"{reader.path}: frame {expected} could not be decoded after seeking "
                                          f"(got {index})")
        yield replace(item, index=index)
        expected += 1
        if expected == segment.decode_stop:
            return


def join_segments(src: Path, dst: Path, parts: list[Path], counts: list[int], encode: EncodeSettings, log: Log) -> int:
    """Remux the video packets of `parts` (in order) into `dst` with the audio/subtitles of `src` copied
    once; checks each part's frame count and codec headers. Temporary file + rename, like `engine.run`."""
    reader = VideoReader(src)
    tmp = temporary_output(dst)
    writer: VideoWriter | None = None
    try:
        writer = VideoWriter(tmp, reader, encode, lambda message: log(f"warning: {message}"))
        headers: bytes | None = None
        total = 0
        for part, count in zip(parts, counts):
            with av.open(str(part)) as segment:
                stream = segment.streams.video[0]
                extradata = bytes(stream.codec_context.extradata or b"")
                if headers is None:
                    writer.copy_video(stream)
                    headers = extradata
                elif extradata != headers:
                    raise VidgenError(f"{src}: segments were encoded with different codec headers; "
                                      "use the same encoder on every worker or --segment-frames 0")
                muxed = 0
                for packet in segment.demux(stream):
                    if packet.size:
                        writer.mux_video(packet)
                        muxed += 1
            if muxed != count:
                raise VidgenError(f"{src}: segment {part.name} holds {muxed} frames, {count} expected")
            total += muxed
        writer.close()
        writer = None
        os.replace(tmp, dst)
        return total
    except BaseException:
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()


@dataclass
class FileOutcome:
    """The result of one input of a batch: frames written and seconds taken, or the error."""

    source: Path
    output: Path
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class _Job:
    outcome: FileOutcome
    segments: list[Segment]
    parts: list[Path] = field(default_factory=list)
    folder: Path | None = None
    pending: int = 0
    started: float = 0.0
    read_whole: bool = False  # a segment could not be decoded: process the video whole once its tasks are done
    work: WorkFolder | None = None  # a resumable run's folder (`vidgen.resume`)


def connect(address: str | None, log_to_driver: bool = True) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local Ray; True when this call started it."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=log_to_driver)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=log_to_driver)
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise VidgenError("--engine ray needs Ray: pip install 'vidgen[ray]'") from None
    return ray


def _actor_resources(ray: Any, device: str, workers: int | None, tasks: int) -> tuple[int, dict[str, float], int]:
    """(actor count, resources of each, torch threads of each): one actor per GPU when the cluster has
    GPUs (unless --device cpu), CPU actors otherwise (one per CPU, or `workers` sharing the CPUs)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus and device != "cpu":
        count = min(workers or gpus, gpus)
        return max(1, min(count, tasks)), {"num_gpus": 1, "num_cpus": 1}, max(1, cpus // count)
    count = max(1, min(workers or cpus, tasks))
    threads = max(1, cpus // (workers or cpus))
    return count, {"num_cpus": threads}, threads


def run_batch(
    jobs: list[tuple[Path, Path]],
    spec: ChainSpec,
    *,
    encode: EncodeSettings | None = None,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
    address: str | None = None,
    segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    workers: int | None = None,
    worker_logs: bool = True,
    strict: bool = False,
    log: Log = _stderr,
    manifests: dict[Path, dict[str, Any]] | None = None,
) -> list[FileOutcome]:
    """Process each (source, output) pair on Ray actors; one failing file does not stop the others.

    Videos longer than `segment_frames` are cut at keyframes into segments processed in parallel and
    joined without re-encoding; shorter ones are processed whole by one actor. `worker_logs` forwards
    the workers' messages to this process's stderr. `strict` makes damaged input an error (see `engine.run`).
    With `manifests` (each source's `resume.run_manifest`) segments are kept in each output's work folder
    (`vidgen run --resume`): those already there are not made again, and a failed video keeps its folder.
    """
    from vidgen.resume import WorkFolder, work_folder

    ray = _import_ray()
    encode = encode or EncodeSettings()
    reach = Reach.of(spec.build())  # also checks plugin names and options before any work
    planned: list[_Job] = []
    for src, dst in jobs:
        outcome = FileOutcome(Path(src), Path(dst))
        try:
            resumed = manifests is not None and work_folder(outcome.output).is_dir()
            check_output_path(outcome.source, outcome.output, overwrite or resumed)
            layout = frame_layout(outcome.source) if segment_frames > 0 else None
            segments = plan_segments(*layout, segment_frames, reach) if layout else []
            job = _Job(outcome, segments if len(segments) > 1 else [])
            if manifests is not None:
                job.work = WorkFolder.open(outcome.output, manifests[outcome.source], overwrite)
            planned.append(job)
        except VidgenError as exc:
            outcome.error = str(exc)
            planned.append(_Job(outcome, []))
    runnable = [job for job in planned if job.outcome.error is None]
    if not runnable:
        return [job.outcome for job in planned]
    started_ray = connect(address, log_to_driver=worker_logs)
    actors: list[Any] = []
    try:
        tasks = sum(max(1, len(job.segments)) for job in runnable)
        count, resources, threads = _actor_resources(ray, device, workers, tasks)
        remote = ray.remote(max_restarts=ACTOR_MAX_RESTARTS, max_task_retries=ACTOR_MAX_TASK_RETRIES)(ChainWorker)
        actors = [remote.options(**resources).remote(spec, encode, device, precision, threads, strict)
                  for _ in range(count)]
        _schedule(ray, runnable, actors, encode, log)
    finally:
        for actor in actors:
            ray.kill(actor)
        for job in runnable:
            if job.folder is not None and job.work is None:
                shutil.rmtree(job.folder, ignore_errors=True)
        if started_ray:
            ray.shutdown()
    return [job.outcome for job in planned]


def _schedule(ray: Any, jobs: list[_Job], actors: list[Any], encode: EncodeSettings, log: Log) -> None:
    """Hand tasks to idle actors until every job is joined or failed.

    Workers write into a hidden folder beside each output (a whole video, or its segments); the driver
    renames or joins from there, so an interrupted run leaves nothing once the folder is removed.
    """
    queue: list[tuple[_Job, Segment | None, Path]] = []
    for job in jobs:
        output = job.outcome.output
        suffix = output.suffix or ".mp4"
        if job.work is not None:
            job.folder = job.work.path
            job.parts = [job.work.segment_path(s.start, s.stop) for s in job.segments]
        else:
            job.folder = Path(tempfile.mkdtemp(prefix=f".{output.stem}.parts.", dir=output.parent))
            job.parts = [job.folder / f"part{i:05d}{suffix}" for i in range(len(job.segments))]
        if job.segments:
            remaining = [(segment, part) for segment, part in zip(job.segments, job.parts)
                         if job.work is None or not job.work.holds(segment.start, segment.stop)]
            if len(remaining) < len(job.segments):
                log(f"{output}: resuming; {len(job.segments) - len(remaining)} of {len(job.segments)} segments are done")
            job.outcome.frames = sum(s.frames for s in job.segments) - sum(s.frames for s, _ in remaining)
            queue.extend((job, segment, part) for segment, part in remaining)
            job.pending = len(remaining)
        else:
            job.parts = [job.folder / f"whole{suffix}"]
            queue.append((job, None, job.parts[0]))
            job.pending = 1
        if not job.pending:
            job.started = time.perf_counter()
            _finish(job, encode, log)
    idle = list(actors)
    running: dict[Any, tuple[Any, _Job]] = {}
    while queue or running:
        while queue and idle:
            job, segment, part = queue.pop(0)
            if job.outcome.error is not None or job.read_whole:  # an earlier segment failed: skip the rest
                if _settle(job, encode, log):
                    queue.append((job, None, job.parts[0]))
                continue
            actor = idle.pop()
            if not job.started:
                job.started = time.perf_counter()
            source = job.outcome.source
            ref = actor.run_segment.remote(source, segment, part) if segment else actor.run_video.remote(source, part)
            running[ref] = (actor, job)
        if not running:
            for job, _, _ in queue:
                job.outcome.error = job.outcome.error or "no Ray worker left to run it"
                _settle(job, encode, log)
            break
        done, _ = ray.wait(list(running), num_returns=1)
        actor, job = running.pop(done[0])
        try:
            job.outcome.frames += ray.get(done[0])
            idle.append(actor)
        except ray.exceptions.RayActorError as exc:
            job.outcome.error = job.outcome.error or f"worker lost after {ACTOR_MAX_RESTARTS} restarts: {exc}"
        except Exception as exc:  # the processor's or decoder's error, raised inside the worker
            idle.append(actor)
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, UndecodableSegmentError) and job.segments:
                job.read_whole = True
            else:
                job.outcome.error = job.outcome.error or (str(cause) if isinstance(cause, VidgenError)
                                                          else f"{type(cause).__name__}: {cause}")
        if _settle(job, encode, log):
            queue.append((job, None, job.parts[0]))


def _settle(job: _Job, encode: EncodeSettings, log: Log) -> bool:
    """Count one task of `job` as done; after its last, move or join the result into place and time it.
    True when the video must now be processed whole (a segment could not be decoded): `job` then holds
    one task, for its only part."""
    job.pending -= 1
    if job.pending:
        return False
    outcome = job.outcome
    if job.read_whole and outcome.error is None:
        job.read_whole, job.segments, job.pending, outcome.frames = False, [], 1, 0
        job.parts = [job.folder / f"whole{job.parts[0].suffix}"]
        return True
    _finish(job, encode, log)
    return False


def _finish(job: _Job, encode: EncodeSettings, log: Log) -> None:
    """Move or join `job`'s result into place (unless it failed), remove its folder and time it; a failed
    resumable job keeps its work folder."""
    from vidgen.resume import join_work

    outcome = job.outcome
    if outcome.error is None:
        try:
            if job.segments and job.work is not None:
                outcome.frames = join_work(outcome.source, outcome.output, job.work,
                                           [(s.start, s.stop) for s in job.segments], encode, log)
            elif job.segments:
                outcome.frames = join_segments(outcome.source, outcome.output, job.parts,
                                               [s.frames for s in job.segments], encode, log)
            else:
                os.replace(job.parts[0], outcome.output)
        except VidgenError as exc:
            outcome.error = str(exc)
    if job.work is not None and outcome.error is None:
        shutil.rmtree(job.work.path, ignore_errors=True)
    elif job.folder is not None and job.work is None:
        shutil.rmtree(job.folder, ignore_errors=True)
    job.folder = None
    outcome.seconds = time.perf_counter() - job.started if job.started else 0.0
