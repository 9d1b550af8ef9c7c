"""Reading and writing video with PyAV: probing, decoding to RGB arrays, encoding with stream copy."""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.video.frame import PictureType

from vidgen.errors import VidgenError

GENERATED_METADATA = {"encoder"}  # tags the muxer writes itself (as the ffmpeg CLI, the rest is copied)
HDR_PARAMS = {"libx264": "x264-params", "libx265": "x265-params"}  # encoders that take mastering display data


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
        raise VidgenError(f"{path}: not a readable video ({_describe_av_error(exc)}){_mp4_hint(path)}") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise VidgenError(f"{path}: has no video stream (found: {', '.join(kinds)})")
    return container


def _mp4_hint(path: Path) -> str:
    """Why an MP4/MOV that FFmpeg cannot open is unreadable, told from its top-level boxes: the index
    (moov box) is missing, as in a recording cut off before it was finished, or damaged."""
    boxes, end = set(), path.stat().st_size
    with path.open("rb") as file:
        while file.tell() < end and len(boxes) < 1000:
            header = file.read(8)
            size, kind = int.from_bytes(header[:4], "big"), header[4:]
            if size == 1:  # a 64-bit size follows
                size = int.from_bytes(file.read(8), "big") - 8
            if size < 8 or not kind.isalpha():
                break
            boxes.add(kind)
            file.seek(size - 8, os.SEEK_CUR)
        complete = file.tell() >= end  # past the end: the last box was cut off
    if b"moov" in boxes:
        return "; its MP4 index (moov box) is damaged: FFmpeg cannot read it either"
    if b"mdat" in boxes:
        where = "is missing, as when a recording is cut off" if complete else "after the media data is damaged"
        return f"; its MP4 index (moov box) {where}: FFmpeg cannot read it either"
    return ""


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
    """Describe the video at `path`: size, pixel format, colour and rotation of its first decodable
    picture, and its frames counted by demuxing (up to where a damaged file cannot be read further)."""
    reader = VideoReader(path)
    reader.close()
    with open_video(path) as container:
        stream = container.streams.video[0]
        streams = []
        for s in container.streams:
            entry = {"index": s.index, "type": s.type, "codec": s.codec_context.name if s.codec_context else None}
            if s.type == "audio":
                entry.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
            if s.metadata.get("language"):
                entry["language"] = s.metadata["language"]
            streams.append(entry)
        frame_count = 0
        try:
            for packet in container.demux(stream):
                frame_count += bool(packet.size)
        except av.FFmpegError:
            pass  # the rest cannot be read (as `vidgen run` reports); the count is of what can
        duration = float(container.duration / av.time_base) if container.duration else None
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            duration=duration,
            width=reader.width,
            height=reader.height,
            fps=float(reader.rate),
            frame_count=frame_count,
            codec=stream.codec_context.name,
            pix_fmt=reader.pix_fmt,
            bit_depth=bit_depth(reader.pix_fmt),
            rotation=reader.rotation,
            colour=reader.colour.names(),
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


DAMAGE_KINDS = {
    "lost": "frame(s) lost to broken video packets, skipped",
    "concealed": "frame(s) concealed by the decoder and kept (as FFmpeg does)",
    "dropped": "frame(s) dropped (timestamp not after the previous frame's)",
    "stopped": "reading stopped early",
    "missing": "frames that the header lists not found",
    "copy-dropped": "audio/subtitle packet(s) the muxer refused, left out",
    "copy-stopped": "copying audio/subtitles stopped early",
}


class Damage:
    """What was wrong with an input and what was done about it, for one warning line at the end of a run.

    With `strict`, the first problem noted is an error instead.
    """

    def __init__(self, path: Path, strict: bool) -> None:
        self.path = path
        self.strict = strict
        self.places: dict[str, list[str]] = {kind: [] for kind in DAMAGE_KINDS}
        self.lost_frames = 0  # counted at the end: some broken packets make the decoder lose frames silently

    def note(self, kind: str, where: str) -> None:
        """Record one problem of `kind` (a key of `DAMAGE_KINDS`) at `where` (e.g. "1.20 s")."""
        if self.strict:
            raise VidgenError(f"{self.path}: damaged input: {DAMAGE_KINDS[kind]} at {where} (--strict)")
        self.places[kind].append(where)

    def lose(self, frames: int) -> None:
        """Record that `frames` packets gave no frame (the places were noted as they were met, if seen)."""
        if frames > 0 and self.strict:
            raise VidgenError(f"{self.path}: damaged input: {frames} {DAMAGE_KINDS['lost']} (--strict)")
        self.lost_frames = frames

    def __bool__(self) -> bool:
        return bool(self.lost_frames) or any(self.places.values())

    def summary(self) -> str:
        """One line: each kind of problem with its count and where (the first few places)."""
        parts = []
        for kind, places in self.places.items():
            count = max(self.lost_frames, len(places)) if kind == "lost" else len(places)
            if not count:
                continue
            shown = ", ".join(places[:4]) + (", ..." if len(places) > 4 else "")
            counted = "" if kind in ("stopped", "missing", "copy-stopped") else f"{count} "  # said by the place
            parts.append(counted + DAMAGE_KINDS[kind] + (f" ({shown})" if shown else ""))
        return f"{self.path} is damaged: " + "; ".join(parts)


class TimestampMender:
    """Mends the timestamp jumps of containers that allow them (MPEG-TS, MPEG-PS: joined files, restarted
    broadcast recordings) as FFmpeg does: when a video or audio packet's decoding time goes back by more
    than `MAX_BACK_S` or leaps more than `MAX_GAP_S` past where its stream was expected to go on, every
    later packet of the file (subtitles and data included) is shifted to go on from there.
    """

    MAX_GAP_S = 10
    MAX_BACK_S = Fraction(1, 10)
    DISCONTINUOUS = 0x0200  # FFmpeg's AVFMT_TS_DISCONT input format flag

    def __init__(self, container: av.container.InputContainer) -> None:
        self.active = bool(container.format.flags & self.DISCONTINUOUS)
        self.shift = Fraction(0)  # seconds added to every timestamp from here on
        self.last: dict[int, tuple[Fraction, Fraction]] = {}  # video/audio stream → (its last dts, step) in s
        self.jumps: list[float] = []  # where jumps were mended, in seconds of the output

    def mend(self, packet: av.Packet) -> None:
        """Shift `packet`'s timestamps by the jumps so far, after noting a new jump at this packet."""
        if not self.active or packet.dts is None:
            return
        time_base = packet.time_base
        dts = packet.dts * time_base + self.shift
        stream = packet.stream.index
        if packet.stream.type in ("video", "audio"):
            if stream in self.last:
                last, step = self.last[stream]
                if dts < last - self.MAX_BACK_S or dts > last + step + self.MAX_GAP_S:
                    self.shift += last + step - dts
                    dts = last + step
                    self.jumps.append(float(dts))
                step = packet.duration * time_base if packet.duration else dts - last
            else:
                step = packet.duration * time_base
            self.last[stream] = (dts, step)
        ticks = round(self.shift / time_base)
        packet.dts += ticks
        if packet.pts is not None:
            packet.pts += ticks


class VideoReader:
    """Decodes the first video stream of a file, frame-threaded, the way FFmpeg treats damaged input:
    packets the decoder rejects are skipped, frames it concealed are kept, frames that cannot be
    encoded after the previous one (no later timestamp) are dropped, and reading stops at the first
    point the demuxer cannot get past; all of it is noted in `damage`. Frames whose size differs from
    the first frame's (a resolution change mid-stream) are scaled to the first frame's size.

    The first frame is decoded on opening, so size, colour, rotation, aspect ratio and field order are
    those of the pictures, not of a header that may be wrong.
    """

    def __init__(self, path: str | os.PathLike, strict: bool = False) -> None:
        self.path = Path(path)
        self.container = open_video(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.damage = Damage(self.path, strict)
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.rate: Fraction = Fraction(rate)
        self.estimated_frames = self.stream.frames or int(
            (self.stream.duration or 0) * self.time_base * self.rate
        ) or None
        self.decoded_frames = 0
        self.resized_frames = 0
        self._last_pts: int | None = None
        self._packets_read = 0  # video packets from the demuxer, its end marker left out
        self._packets_sent = self._frames_out = 0  # video packets given to the decoder, frames it gave back
        self._sought = False
        self.timestamps = TimestampMender(self.container)
        self._packets = self.container.demux(self.stream)
        self._pictures = self._decode()
        try:
            first = next(self._pictures, None)
        except BaseException:
            self.container.close()
            raise
        if first is None:
            self.container.close()
            raise VidgenError(f"{self.path}: no video frame could be decoded{self._why_nothing()}")
        self._first: av.VideoFrame | None = first  # given out first by `frames()`
        self.width, self.height = first.width, first.height
        self.pix_fmt = first.format.name
        self.deep = bit_depth(self.pix_fmt) > 8
        self.rotation = int(first.rotation or 0)
        self.colour = Colour.of(first)
        self.hdr_side_data = {str(sd.type).rsplit(".", 1)[-1]: bytes(sd) for sd in first.side_data.keys()
                              if str(sd.type).endswith(("MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"))}
        ctx = self.stream.codec_context
        self.sample_aspect_ratio: Fraction | None = self.stream.sample_aspect_ratio or ctx.sample_aspect_ratio or None
        # FFmpeg's AVFieldOrder (2-5: interlaced, in four orders), or 0 for progressive pictures; interlaced
        # pictures from a stream that states no order are taken as top field first (4), the common case
        order = int(ctx.field_order)
        self.field_order = order if order >= 2 else 4 if first.interlaced_frame else 0

    def _why_nothing(self) -> str:
        skipped, stopped = self.damage.places["lost"], self.damage.places["stopped"]
        if stopped:
            return f" (reading stopped at {stopped[0]})"
        if skipped:
            return f" ({len(skipped)} broken packet(s))"
        return ""

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Every frame the decoder gives, with broken packets skipped and an unreadable rest noted.

        Reading ends, as in FFmpeg, at the end of the file or at a demuxer error, after flushing the
        frames the decoder still holds. Empty packets (the demuxer's end marker, AVI's dropped frames)
        are not given to the decoder, which would take them for the end.
        """
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                packet = None
            except av.FFmpegError as exc:
                self.damage.note("stopped", f"{self._position()} ({_describe_av_error(exc)})")
                packet = None
            if packet is not None:
                if packet.size or packet.pts is not None:
                    self._packets_read += 1
                if not packet.size:
                    continue
                self._packets_sent += 1
                self.timestamps.mend(packet)
            try:
                frames = self.stream.decode(packet)
            except av.FFmpegError:
                self.damage.note("lost", f"near {self._position(packet)}")
                frames = []
            self._frames_out += len(frames)
            yield from frames
            if packet is None:
                break
        if any(self.damage.places[kind] for kind in ("lost", "concealed", "stopped")):
            self.damage.lose(self._packets_sent - self._frames_out)
        listed = self.stream.frames
        if listed > self._packets_read and not self._sought:
            self.damage.note("missing", f"{listed - self._packets_read} of {listed}")

    def _position(self, packet: av.Packet | None = None) -> str:
        """Where reading is, in seconds: `packet`'s time, else just after the last frame decoded."""
        pts = packet.pts if packet is not None and packet.pts is not None else self._last_pts
        return "start" if pts is None else f"{float(pts * self.time_base):.2f} s"

    def frames(self, rgb: bool = True) -> Iterator[DecodedFrame]:
        """Yield every usable frame in presentation order, at the first frame's size: in RGB at the
        stream's bit depth, or (`rgb=False`) as decoded, for frames that go to the encoder untouched."""
        fmt = "rgb48le" if self.deep else "rgb24"
        step = max(1, round(1 / (self.rate * self.time_base)))
        while True:
            if self._first is not None:
                frame, self._first = self._first, None
            else:
                frame = next(self._pictures, None)
            if frame is None:
                return
            pts = frame.pts
            if pts is None:  # no timestamp (e.g. a raw stream): the next one at the nominal rate
                pts = 0 if self._last_pts is None else self._last_pts + step
            elif self._last_pts is not None and pts <= self._last_pts:
                self.damage.note("dropped", f"{float(pts * self.time_base):.2f} s")
                continue
            if frame.is_corrupt:
                self.damage.note("concealed", f"frame {self.decoded_frames} at {float(pts * self.time_base):.2f} s")
            if (frame.width, frame.height) != (self.width, self.height):
                self.resized_frames += 1
                frame = frame.reformat(width=self.width, height=self.height)
            self._last_pts = pts
            index = self.decoded_frames
            self.decoded_frames += 1
            if rgb:
                yield DecodedFrame(frame.to_ndarray(format=fmt, src_color_range=frame.color_range), index, pts)
            else:
                yield DecodedFrame(None, index, pts, picture=frame)

    def warnings(self) -> list[str]:
        """One line for the damage met, one for a picture size that changed, as far as there were any."""
        lines = [self.damage.summary()] if self.damage else []
        if self.timestamps.jumps:
            places = ", ".join(f"{seconds:.2f} s" for seconds in self.timestamps.jumps[:4])
            lines.append(f"{self.path}: timestamps jump (joined or restarted recording) at {places}: what follows "
                         "was moved to go on from there, as FFmpeg does")
        if self.resized_frames:
            lines.append(f"{self.path}: the picture size changes mid-stream; {self.resized_frames} frame(s) "
                         f"were scaled to the first frame's {self.width}x{self.height}")
        return lines

    def seek(self, pts: int) -> None:
        """Make `frames()` start at the keyframe at or before `pts` (in the stream's time base)."""
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            raise VidgenError(f"{self.path}: cannot seek to pts {pts} ({_describe_av_error(exc)})") from None
        self._first = None
        self._last_pts = None
        self._packets_read = self._packets_sent = self._frames_out = 0
        self._sought = True
        self.timestamps = TimestampMender(self.container)  # a jump from before the seek is no jump

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


def describe_stream(stream: av.stream.Stream) -> str:
    """'audio (aac, eng)', 'attachment (font.ttf)': a stream's kind, codec or file name, and language."""
    name = stream.metadata.get("filename") or (stream.codec_context.name if stream.codec_context else None)
    details = ", ".join(filter(None, [name, stream.metadata.get("language")]))
    return f"{stream.type} ({details})" if details else str(stream.type)


def hdr_encoder_params(side_data: dict[str, bytes], codec: str) -> list[str]:
    """x264/x265 parameters for FFmpeg's mastering display (`AVMasteringDisplayMetadata`: R, G, B and
    white point chromaticities, then min and max luminance, as rationals) and content light level
    (MaxCLL, MaxFALL) side data: chromaticities in units of 0.00002, luminance of 0.0001 cd/m²."""
    params = []
    mastering = side_data.get("MASTERING_DISPLAY_METADATA")
    if mastering is not None:
        values = struct.unpack("<20i2i", mastering[:88])
        rationals = [values[i] / values[i + 1] if values[i + 1] else 0.0 for i in range(0, 20, 2)]
        (rx, ry, gx, gy, bx, by, wx, wy), (low, high) = rationals[:8], rationals[8:10]
        has_primaries, has_luminance = values[20], values[21]
        if has_primaries and has_luminance:
            xy = [round(v * 50000) for v in (gx, gy, bx, by, rx, ry, wx, wy)]
            display = "G({},{})B({},{})R({},{})WP({},{})".format(*xy) + f"L({round(high * 10000)},{round(low * 10000)})"
            params.append(f"{'mastering-display' if codec == 'libx264' else 'master-display'}={display}")
    light = side_data.get("CONTENT_LIGHT_LEVEL")
    if light is not None:
        max_cll, max_fall = struct.unpack("<2I", light[:8])
        params.append(f"{'cll' if codec == 'libx264' else 'max-cll'}={max_cll},{max_fall}")
    return params


class VideoWriter:
    """Encodes RGB frames into `path`, copying the other streams of `source` (audio, subtitles, data,
    attachments, as far as the output container holds them) bit-exact, with its tags and chapters.

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
        self.copy_timestamps = TimestampMender(self.copy_source) if self.copy_source is not None else None
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
        if src.sample_aspect_ratio:
            ctx.sample_aspect_ratio = src.sample_aspect_ratio
        if src.field_order:
            ctx.field_order = src.field_order
            ctx.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        options = dict(settings.options)
        if settings.crf is not None and settings.codec in ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1"):
            options.setdefault("crf", str(settings.crf))
        if settings.preset and settings.codec in ("libx264", "libx265", "libsvtav1"):
            options.setdefault("preset", str(settings.preset))
        self._add_hdr_params(options)
        stream.options = options
        if src.rotation:
            stream.set_display_rotation(src.rotation)
        self._copy_metadata(src.stream, stream)
        self.video = stream
        self.pix_fmt = pix_fmt
        self._open_copies()

    def _add_hdr_params(self, options: dict[str, str]) -> None:
        """Pass the source's mastering display and content light level to x264/x265 (other encoders
        cannot take them from PyAV: say so)."""
        side_data = self.source.hdr_side_data
        if not side_data:
            return
        key = HDR_PARAMS.get(self.settings.codec)
        if key is None:
            self.warn(f"HDR mastering display / content light level metadata not carried: "
                      f"{self.settings.codec} cannot take it (libx264 and libx265 can)")
            return
        params = [p for p in options.get(key, "").split(":") if p]
        params.extend(hdr_encoder_params(side_data, self.settings.codec))
        options[key] = ":".join(params)

    def _copy_metadata(self, source: av.stream.Stream, target: av.stream.Stream) -> None:
        """Copy a stream's tags (language, title, timecode, ...) and disposition (default, forced, ...)."""
        target.metadata.update({k: v for k, v in source.metadata.items() if k.lower() not in GENERATED_METADATA})
        if int(source.disposition):
            target.disposition = int(source.disposition)

    def _open_copies(self) -> None:
        """Copy the container's tags and chapters, and add an output stream for every other stream of the
        source but MP4 chapter and timecode tracks, which the muxer writes again (none of it without
        `copy_streams`); the streams the output container cannot hold are named in one warning."""
        if self.copy_source is None:
            return
        self.container.metadata.update(
            {k: v for k, v in self.copy_source.metadata.items() if k.lower() not in GENERATED_METADATA})
        chapters = self.copy_source.chapters()
        if chapters:
            self.container.set_chapters(chapters)
        dropped = []
        for in_stream in self.copy_source.streams:
            if in_stream.index == self.source.stream.index:
                continue
            if in_stream.type == "data":
                if self._is_mp4_chapter_or_timecode_track(in_stream, bool(chapters)):
                    continue  # the muxer writes them again from the chapters and the video's timecode tag
                output_format = self.container.format.name
                if output_format not in self.copy_source.format.name.split(","):
                    dropped.append(f"#{in_stream.index} data ({in_stream.name or 'unknown codec'}): data streams "
                                   f"are copied only into their own kind of container, not {output_format}")
                    continue
            if in_stream.type == "attachment" and self.container.format.name != "matroska":
                dropped.append(f"#{in_stream.index} {describe_stream(in_stream)} "
                               f"({self.container.format.name} cannot hold attachments; Matroska can)")
                continue
            try:
                out = self.container.add_stream_from_template(in_stream)
            except (ValueError, av.FFmpegError) as exc:
                dropped.append(f"#{in_stream.index} {describe_stream(in_stream)} ({_describe_av_error(exc)})")
                continue
            self._copy_metadata(in_stream, out)
            self.copies[in_stream.index] = out
        if dropped:
            self.warn(f"streams not copied: {'; '.join(dropped)}")
        packet_streams = [self.copy_source.streams[i] for i in self.copies
                          if self.copy_source.streams[i].type != "attachment"]
        if packet_streams:
            self.copy_packets = self.copy_source.demux(*packet_streams)

    def _is_mp4_chapter_or_timecode_track(self, stream: av.stream.Stream, has_chapters: bool) -> bool:
        """MP4/MOV keep chapters and timecodes in tracks of their own that FFmpeg shows as data streams."""
        if not self.copy_source.format.name.startswith("mov"):
            return False
        return bool(stream.metadata.get("timecode")) or (has_chapters and stream.name in (None, "bin_data"))

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
        opening = not self.video.codec_context.is_open  # the encoder opens on its first frame
        try:
            packets = self.video.encode(frame)
        except av.FFmpegError as exc:
            if opening:
                options = ", ".join(f"{k}={v}" for k, v in self.video.options.items())
                raise VidgenError(f"cannot open encoder {self.settings.codec} with options {options} "
                                  f"({_describe_av_error(exc)})") from None
            raise VidgenError(f"encoding failed at frame {index} ({_describe_av_error(exc)})") from None
        try:
            self.container.mux(packets)
        except av.FFmpegError as exc:
            raise VidgenError(f"writing the output failed at frame {index} ({_describe_av_error(exc)})") from None

    def copy_video(self, template: av.video.stream.VideoStream) -> None:
        """Take the video stream as already encoded (like `template`) instead of encoding frames."""
        self.video = self.container.add_stream_from_template(template)
        self.encoding = False
        self._copy_metadata(self.source.stream, self.video)
        if self.source.rotation:
            self.video.set_display_rotation(self.source.rotation)
        self._open_copies()

    def mux_video(self, packet: av.Packet) -> None:
        """Mux one encoded video packet (after `copy_video`), interleaving the copied streams by time."""
        time = packet.dts if packet.dts is not None else packet.pts
        if time is not None:
            self._mux_copies_until(time * packet.time_base)
        packet.stream = self.video
        try:
            self.container.mux(packet)
        except av.FFmpegError as exc:
            raise VidgenError(f"writing the output failed ({_describe_av_error(exc)})") from None

    def _mux_copies_until(self, seconds: Fraction | None) -> None:
        """Mux copied packets whose time is before `seconds` (all of them when None).

        As FFmpeg's stream copy, packets go out as they are, damaged or not; a packet the muxer refuses
        (e.g. its timestamp goes backwards) is left out, and a demuxer error ends the copying; both are
        noted in the source's `damage`.
        """
        if self.copy_packets is None:
            return
        damage = self.source.damage
        while True:
            if self.pending is None:
                try:
                    self.pending = next(self.copy_packets, None)
                except av.FFmpegError as exc:
                    damage.note("copy-stopped", f"{float(seconds or 0):.2f} s ({_describe_av_error(exc)})")
                    self.pending = None
                if self.pending is None:
                    self.copy_packets = None
                    return
                self.copy_timestamps.mend(self.pending)
            packet = self.pending
            time = packet.dts if packet.dts is not None else packet.pts
            if seconds is not None and time is not None and time * packet.time_base > seconds:
                return
            self.pending = None
            if packet.size == 0:
                continue
            index = packet.stream.index
            packet.stream = self.copies[index]
            try:
                self.container.mux(packet)
            except av.FFmpegError as exc:  # a timestamp going backwards, an ADTS header the AAC filter refuses
                damage.note("copy-dropped", f"stream #{index} at {float((time or 0) * packet.time_base):.2f} s: "
                                            f"{_describe_av_error(exc)}")

    def close(self) -> None:
        """Flush the encoder and the copied streams, and close the file."""
        try:
            if self.video is not None:
                if self.encoding:
                    self.container.mux(self.video.encode(None))
                self._mux_copies_until(None)
        except av.FFmpegError as exc:
            raise VidgenError(f"cannot finish writing the output ({_describe_av_error(exc)})") from None
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
