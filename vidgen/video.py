"""Reading and writing video with PyAV: probing, decoding to RGB arrays, encoding with stream copy."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.video.frame import PictureType

from vidgen.errors import VidgenError

COPYABLE_STREAM_TYPES = ("audio", "subtitle")


def _describe_av_error(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")


def open_video(path: str | os.PathLike) -> av.container.InputContainer:
    """Open `path` for reading and check it has a video stream; one-line errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise VidgenError(f"{path}: no such file")
    if path.is_dir():
        raise VidgenError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VidgenError(f"{path}: file is empty")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VidgenError(f"{path}: not a readable video ({_describe_av_error(exc)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise VidgenError(f"{path}: has no video stream (found: {', '.join(kinds)})")
    return container


def bit_depth(pix_fmt: str | None) -> int:
    """Bits per colour component of a pixel format name (8 when unknown)."""
    if not pix_fmt:
        return 8
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


@dataclass
class Colour:
    """Colour description of a video stream, as FFmpeg names it ('unknown' when untagged)."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    @classmethod
    def of(cls, obj: av.VideoFrame | av.video.codeccontext.VideoCodecContext) -> Colour:
        return cls(int(obj.color_primaries), int(obj.color_trc), int(obj.colorspace), int(obj.color_range))

    def names(self) -> dict[str, str]:
        def name(enum: type, value: int) -> str:
            if value == 2 and enum is not av.video.reformatter.ColorRange:  # "unspecified" but for range (2: JPEG)
                return "unspecified"
            try:
                return enum(value).name.lower()
            except ValueError:
                return str(value)

        return {
            "primaries": name(av.video.reformatter.ColorPrimaries, self.primaries),
            "transfer": name(av.video.reformatter.ColorTrc, self.transfer),
            "matrix": name(av.video.reformatter.Colorspace, self.matrix),
            "range": name(av.video.reformatter.ColorRange, self.range),
        }


@dataclass
class VideoInfo:
    """What `vidgen info` reports; `frame_count` is counted from the packets, not read from the header."""

    path: str
    container: str
    duration: float | None
    width: int
    height: int
    fps: float
    frame_count: int
    codec: str
    pix_fmt: str
    bit_depth: int
    rotation: int
    colour: dict[str, str]
    streams: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the video at `path`, counting its frames by demuxing."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        streams = []
        for s in container.streams:
            entry = {"index": s.index, "type": s.type, "codec": s.codec_context.name if s.codec_context else None}
            if s.type == "audio":
                entry.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
            if s.metadata.get("language"):
                entry["language"] = s.metadata["language"]
            streams.append(entry)
        frame_count, rotation, colour = 0, 0, Colour.of(ctx)
        try:
            for packet in container.demux(stream):
                if packet.size:
                    frame_count += 1
            container.seek(0)
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                rotation, colour = int(frame.rotation or 0), Colour.of(frame)
                break
        except av.FFmpegError as exc:
            raise VidgenError(f"{path}: cannot read video packets ({_describe_av_error(exc)})") from None
        duration = float(container.duration / av.time_base) if container.duration else None
        rate = stream.average_rate or stream.guessed_rate or 0
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            duration=duration,
            width=ctx.width,
            height=ctx.height,
            fps=float(rate),
            frame_count=frame_count,
            codec=ctx.name,
            pix_fmt=ctx.format.name if ctx.format else "unknown",
            bit_depth=bit_depth(ctx.format.name if ctx.format else None),
            rotation=rotation,
            colour=colour.names(),
            streams=streams,
        )


@dataclass
class DecodedFrame:
    """One decoded frame: `rgb` is `(H, W, 3)` uint8 (8-bit input) or uint16 (deeper input); or, when
    decoded without RGB conversion, `rgb` is None and `picture` is the frame as the decoder gave it."""

    rgb: np.ndarray | None
    index: int
    pts: int | None
    picture: av.VideoFrame | None = None


class VideoReader:
    """Decodes the first video stream of a file into RGB arrays, with frame-threaded decoding."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.container = open_video(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        ctx = self.stream.codec_context
        self.width, self.height = ctx.width, ctx.height
        if self.width < 1 or self.height < 1:
            self.container.close()
            raise VidgenError(f"{self.path}: video stream has no frame size (is the file truncated?)")
        self.pix_fmt = ctx.format.name if ctx.format else "yuv420p"
        self.deep = bit_depth(self.pix_fmt) > 8
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.rate: Fraction = Fraction(rate)
        self.estimated_frames = self.stream.frames or int(
            (self.stream.duration or 0) * self.time_base * self.rate
        ) or None
        self.rotation = 0
        self.colour = Colour.of(ctx)
        self.decoded_frames = 0

    def frames(self, rgb: bool = True) -> Iterator[DecodedFrame]:
        """Yield every frame in presentation order: in RGB at the stream's bit depth, or (`rgb=False`) as
        decoded, for frames that go to the encoder untouched."""
        fmt = "rgb48le" if self.deep else "rgb24"
        index = 0
        try:
            for frame in self.container.decode(self.stream):
                if index == 0:
                    self.rotation = int(frame.rotation or 0)
                    self.colour = Colour.of(frame)
                if rgb:
                    yield DecodedFrame(frame.to_ndarray(format=fmt, src_color_range=frame.color_range), index, frame.pts)
                else:
                    yield DecodedFrame(None, index, frame.pts, picture=frame)
                index += 1
        except av.FFmpegError as exc:
            raise VidgenError(f"{self.path}: decoding failed at frame {index} ({_describe_av_error(exc)})") from None
        if index == 0:
            raise VidgenError(f"{self.path}: no video frame could be decoded")
        self.decoded_frames = index

    def seek(self, pts: int) -> None:
        """Make `frames()` start at the keyframe at or before `pts` (in the stream's time base)."""
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            raise VidgenError(f"{self.path}: cannot seek to pts {pts} ({_describe_av_error(exc)})") from None

    def close(self) -> None:
        self.container.close()


@dataclass
class EncodeSettings:
    """How `VideoWriter` encodes: codec, quality, pixel format (None: follow the input) and extra options."""

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def choose_pix_fmt(codec: str, input_pix_fmt: str, requested: str | None) -> str:
    """The requested pixel format, or the input's when the codec takes it (keeping 10-bit), else yuv420p."""
    try:
        supported = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    except (ValueError, av.FFmpegError):
        raise VidgenError(f"unknown encoder {codec!r}") from None
    if requested:
        if supported and requested not in supported:
            raise VidgenError(f"encoder {codec} does not take --pix-fmt {requested} (takes: {', '.join(supported)})")
        return requested
    for candidate in (input_pix_fmt, "yuv420p10le" if bit_depth(input_pix_fmt) > 8 else "yuv420p", "yuv420p"):
        if not supported or candidate in supported:
            return candidate
    return supported[0]


class VideoWriter:
    """Encodes RGB frames into `path`, copying the audio and subtitle streams of `source` bit-exact.

    The encoder opens on the first frame, so processors may change the frame size. Copied packets are
    interleaved by time as video frames arrive, so memory stays flat. With `copy_streams=False` only the
    video is written (segments of a distributed run); `copy_video` + `mux_video` join encoded segments.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        source: VideoReader,
        settings: EncodeSettings,
        warn: Callable[[str], None],
        copy_streams: bool = True,
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.settings = settings
        self.warn = warn
        self.container = av.open(str(self.path), "w")
        self.video: av.video.stream.VideoStream | None = None
        self.encoding = True
        self.copies: dict[int, av.stream.Stream] = {}
        self.copy_source = av.open(str(source.path), metadata_errors="ignore") if copy_streams else None
        self.copy_packets: Iterator[av.Packet] | None = None
        self.pending: av.Packet | None = None
        self.pad = (0, 0)

    def _open(self, width: int, height: int) -> None:
        settings, src = self.settings, self.source
        pix_fmt = choose_pix_fmt(settings.codec, src.pix_fmt, settings.pix_fmt)
        x_align = 2 if pix_fmt.startswith(("yuv420", "yuv422", "nv12", "nv21", "nv16", "yuvj420", "yuvj422")) else 1
        y_align = 2 if pix_fmt.startswith(("yuv420", "nv12", "nv21", "yuvj420")) else 1
        self.pad = (-width % x_align, -height % y_align)
        if any(self.pad):
            self.warn(
                f"{pix_fmt} needs even dimensions: padding {width}x{height} to "
                f"{width + self.pad[0]}x{height + self.pad[1]} by repeating the last column/row"
            )
        try:
            stream = self.container.add_stream(settings.codec, rate=src.rate)
        except (ValueError, av.FFmpegError) as exc:
            raise VidgenError(f"cannot use encoder {settings.codec!r}: {_describe_av_error(exc)}") from None
        stream.width, stream.height = width + self.pad[0], height + self.pad[1]
        stream.pix_fmt = pix_fmt
        stream.thread_type = "AUTO"  # PyAV defaults to slice threads; frame threads (as the ffmpeg CLI) encode faster
        stream.time_base = src.time_base
        stream.codec_context.time_base = src.time_base
        colour = src.colour
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc = colour.primaries, colour.transfer
        ctx.colorspace, ctx.color_range = colour.matrix, colour.range
        options = dict(settings.options)
        if settings.crf is not None and settings.codec in ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1"):
            options.setdefault("crf", str(settings.crf))
        if settings.preset and settings.codec in ("libx264", "libx265", "libsvtav1"):
            options.setdefault("preset", str(settings.preset))
        stream.options = options
        if src.rotation:
            stream.set_display_rotation(src.rotation)
        self.video = stream
        self.pix_fmt = pix_fmt
        self._open_copies()

    def _open_copies(self) -> None:
        """Add an output stream for each audio/subtitle stream of the source (none without `copy_streams`)."""
        if self.copy_source is None:
            return
        for in_stream in self.copy_source.streams:
            if in_stream.type not in COPYABLE_STREAM_TYPES:
                continue
            try:
                self.copies[in_stream.index] = self.container.add_stream_from_template(in_stream)
            except (ValueError, av.FFmpegError) as exc:
                self.warn(f"{in_stream.type} stream #{in_stream.index} ({in_stream.codec_context.name}) "
                          f"not copied: {_describe_av_error(exc)}")
        if self.copies:
            streams = [self.copy_source.streams[i] for i in self.copies]
            self.copy_packets = self.copy_source.demux(*streams)

    def write(self, image: np.ndarray | av.VideoFrame, pts: int | None, index: int) -> None:
        """Encode one frame with its original pts: an `(H, W, 3)` uint8/uint16 RGB array, or a frame as
        the decoder gave it (no processor changed it), which is encoded without an RGB round trip and
        without any conversion when it already has the output pixel format."""
        if isinstance(image, av.VideoFrame):
            if self.video is None:
                self._open(image.width, image.height)
            if not any(self.pad):
                self._encode(self._as_output_picture(image), pts, index)
                return
            # odd size for this pixel format: padded in RGB, like processed frames
            image = image.to_ndarray(format="rgb48le" if self.source.deep else "rgb24", src_color_range=image.color_range)
        height, width = image.shape[:2]
        if self.video is None:
            self._open(width, height)
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[1]), (0, self.pad[0]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb48le" if image.dtype == np.uint16 else "rgb24")
        self._encode(self._to_output_format(frame), pts, index)

    def _as_output_picture(self, picture: av.VideoFrame) -> av.VideoFrame:
        """A decoded frame ready for the encoder: as it is when it has the output pixel format, with its
        picture type cleared (else x264 would copy the input's frame types); converted otherwise."""
        if picture.format.name != self.pix_fmt:
            return self._to_output_format(picture)
        picture.pict_type = PictureType.NONE
        return picture

    def _to_output_format(self, frame: av.VideoFrame) -> av.VideoFrame:
        """`frame` converted to the encoder's pixel format, tagged with the source's colour description."""
        colour = self.source.colour
        return frame.reformat(
            format=self.pix_fmt,
            src_color_range=frame.color_range or None,
            dst_colorspace=colour.matrix if colour.matrix != 2 else None,
            dst_color_range=colour.range or None,
            dst_color_trc=colour.transfer,
            dst_color_primaries=colour.primaries,
        )

    def _encode(self, frame: av.VideoFrame, pts: int | None, index: int) -> None:
        """Encode `frame` at `pts` (or, without one, at `index` frames of the nominal rate) and mux it."""
        if pts is None:
            pts = int(round(index / (self.source.rate * self.source.time_base)))
        frame.pts, frame.time_base = pts, self.source.time_base
        self._mux_copies_until(pts * self.source.time_base)
        self.container.mux(self.video.encode(frame))

    def copy_video(self, template: av.video.stream.VideoStream) -> None:
        """Take the video stream as already encoded (like `template`) instead of encoding frames."""
        self.video = self.container.add_stream_from_template(template)
        self.encoding = False
        if self.source.rotation:
            self.video.set_display_rotation(self.source.rotation)
        self._open_copies()

    def mux_video(self, packet: av.Packet) -> None:
        """Mux one encoded video packet (after `copy_video`), interleaving the copied streams by time."""
        time = packet.dts if packet.dts is not None else packet.pts
        if time is not None:
            self._mux_copies_until(time * packet.time_base)
        packet.stream = self.video
        self.container.mux(packet)

    def _mux_copies_until(self, seconds: Fraction | None) -> None:
        """Mux copied packets whose time is before `seconds` (all of them when None)."""
        if self.copy_packets is None:
            return
        while True:
            if self.pending is None:
                self.pending = next(self.copy_packets, None)
                if self.pending is None:
                    self.copy_packets = None
                    return
            packet = self.pending
            time = packet.dts if packet.dts is not None else packet.pts
            if seconds is not None and time is not None and time * packet.time_base > seconds:
                return
            self.pending = None
            if packet.size == 0:
                continue
            packet.stream = self.copies[packet.stream.index]
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and the copied streams, and close the file."""
        try:
            if self.video is not None:
                if self.encoding:
                    self.container.mux(self.video.encode(None))
                self._mux_copies_until(None)
        finally:
            self.container.close()
            if self.copy_source is not None:
                self.copy_source.close()

    def abort(self) -> None:
        """Close without flushing (the caller removes the file)."""
        for container in (self.container, self.copy_source):
            if container is None:
                continue
            try:
                container.close()
            except Exception:  # closing a half-written file may itself fail; it is deleted next
                pass
