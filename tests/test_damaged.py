"""Damaged and unusual input: the hostile corpus end to end, --strict, and what is kept of the input
(aspect ratio, field order, HDR tags, tags, chapters, other streams)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import pytest
from clips import audio_digest, decode, moving_pattern, write_clip
from hostile import (CORPUS, FONT, HEIGHT, WIDTH, Hostile, damaged_audio, data_packet,
                     garbage_in_the_middle, joined_transport_streams, remux, resolution_change, run_cli,
                     truncated_before_index, truncated_faststart)

import vidgen
from vidgen import FrameGroup, Processor, VidgenError, engine
from vidgen.metrics import psnr
from vidgen.video import VideoReader, VideoWriter

TIMEOUT = 30  # seconds; every kind takes well under 1 s here, the inpainting one 3 s


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.build.__name__ for h in CORPUS])
def test_hostile_input_gives_an_output_or_one_error_line(hostile: Hostile, tmp_path: Path) -> None:
    """Each kind of damage ends within the time limit (the subprocess is killed otherwise) with a
    decodable output and one-line warnings, or with one error line and nothing at the output path."""
    src = hostile.build(tmp_path)
    inputs = set(tmp_path.iterdir())
    out = tmp_path / "out.mp4"
    code, err, _ = run_cli("run", src, "-o", out, *hostile.arguments(tmp_path), timeout=TIMEOUT)
    lines = err.splitlines()
    assert "Traceback" not in err
    if hostile.output:
        assert code == 0, err
        assert all(line.startswith(("warning: ", f"{out}: ")) for line in lines), err
        frames, _ = decode(out)
        assert len(frames) >= 1 and frames.shape[1:3] == (HEIGHT, WIDTH)
        assert set(tmp_path.iterdir()) == inputs | {out}  # no temporary file left
    else:
        assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert set(tmp_path.iterdir()) == inputs  # nothing at the output path, no temporary file


def test_an_mp4_cut_before_its_index_is_explained(tmp_path: Path) -> None:
    cut_off = r"not a readable video .*its MP4 index \(moov box\) is missing, as when a recording is cut off"
    with pytest.raises(VidgenError, match=cut_off):
        vidgen.probe(truncated_before_index(tmp_path))


def test_broken_packets_are_skipped_keeping_the_pts_of_what_was_decoded(tmp_path: Path) -> None:
    src = garbage_in_the_middle(tmp_path)
    out = tmp_path / "out.mp4"
    messages: list[str] = []
    result = engine.run(src, out, [], log=messages.append)
    clean_pts = decode(tmp_path / "base.mp4")[1]
    out_pts = decode(out)[1]
    assert result.frames == len(out_pts) and 20 <= len(out_pts) < len(clean_pts)
    assert set(out_pts) <= set(clean_pts) and out_pts == sorted(out_pts)
    assert len(messages) == 1
    lost = len(clean_pts) - len(out_pts)
    assert messages[0].startswith(f"warning: {src} is damaged: {lost} frame(s) lost to broken video packets")


def test_strict_turns_damage_into_an_error(tmp_path: Path, clip: Path) -> None:
    src = garbage_in_the_middle(tmp_path)
    code, err, _ = run_cli("run", src, "-o", tmp_path / "out.mp4", "--strict", timeout=TIMEOUT)
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {src}: damaged input: frame(s) lost to broken video packets") and "(--strict)" in err
    assert not (tmp_path / "out.mp4").exists()
    with pytest.raises(VidgenError, match="frames that the header lists not found"):
        engine.run(truncated_faststart(tmp_path), tmp_path / "cut.mp4", [], strict=True)
    assert engine.run(clip, tmp_path / "clean.mp4", [], strict=True).frames == 12


def test_damaged_audio_packets_are_copied_as_they_are(tmp_path: Path) -> None:
    src = damaged_audio(tmp_path)
    out = tmp_path / "out.mp4"
    assert engine.run(src, out, []).frames == 30
    assert audio_digest(out) == audio_digest(src) != audio_digest(tmp_path / "base.mp4")


def test_a_resolution_change_is_scaled_to_the_first_size_and_said_once(tmp_path: Path) -> None:
    messages: list[str] = []
    out = tmp_path / "out.mp4"
    engine.run(resolution_change(tmp_path), out, [], log=messages.append)
    frames, pts = decode(out)
    assert frames.shape == (16, HEIGHT, WIDTH, 3) and pts == sorted(set(pts))
    assert len(messages) == 1 and "8 frame(s) were scaled to the first frame's 64x48" in messages[0]


def test_joined_recordings_go_on_where_the_first_ended(tmp_path: Path) -> None:
    """Timestamps that start again (MPEG-TS files joined) are moved to follow on, video and audio alike,
    as FFmpeg does, instead of the second half being dropped as going back in time."""
    src = joined_transport_streams(tmp_path)
    messages: list[str] = []
    out = tmp_path / "out.mp4"
    assert engine.run(src, out, [], log=messages.append).frames == 60
    with av.open(str(src)) as container:
        audio_packets = sum(1 for p in container.demux(audio=0) if p.size)
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(video) if p.size)
        assert pts == list(range(pts[0], pts[0] + 60 * 3600, 3600))  # 25 fps in 1/90000, no gap, no overlap
        container.seek(0)
        audio = [p for p in container.demux(audio=0) if p.size]
        assert len(audio) == audio_packets
        assert abs(float(audio[-1].pts * audio[-1].time_base) - float(pts[-1] * video.time_base)) < 0.1
    assert messages == [f"warning: {src}: timestamps jump (joined or restarted recording) at 1.20 s: what follows "
                        "was moved to go on from there, as FFmpeg does"]


def write_tagged_clip(path: Path, fmt: str | None = None, *, sar: Fraction | None = None, interlaced: bool = False,
                      hdr: str | None = None, tags: bool = False, font: bool = False, klv: bool = False,
                      timecode: str | None = None) -> Path:
    """A 10-frame 64x48 clip with a silent AAC track and, as asked: a sample aspect ratio, interlaced
    coding (top field first), PQ/BT.2020 tags with x265 mastering display parameters `hdr`, a title,
    an audio language and two chapters, a font attachment, a KLV data stream, a timecode."""
    with av.open(str(path), "w", format=fmt) as container:
        video = container.add_stream("libx265" if hdr else "libx264", rate=25)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p10le" if hdr else "yuv420p"
        ctx = video.codec_context
        if sar:
            ctx.sample_aspect_ratio = sar
        if interlaced:
            ctx.field_order = 2  # top field first
            ctx.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        if hdr:
            ctx.color_primaries, ctx.color_trc, ctx.colorspace = 9, 16, 9  # BT.2020, PQ, BT.2020 non-constant
            video.options = {"x265-params": hdr + ":log-level=error"}
        if timecode:
            video.metadata["timecode"] = timecode
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        if tags:
            container.metadata["title"] = "A hostile title"
            audio.metadata["language"] = "fra"
            container.set_chapters([{"id": n, "start": 5 * (n - 1), "end": 5 * n, "time_base": Fraction(1, 25),
                                     "metadata": {"title": f"Part {n}"}} for n in (1, 2)])
        data = container.add_data_stream("klv") if klv else None
        if font:
            container.add_attachment("font.ttf", "font/ttf", FONT)
        for index, rgb in enumerate(moving_pattern(10, WIDTH, HEIGHT)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=video.pix_fmt)
            frame.pts = index
            container.mux(video.encode(frame))
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.float32), format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 48000, index * 1920
            container.mux(audio.encode(sound))
            if data is not None:
                container.mux(data_packet(data, index))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def _first_frame(path: Path) -> tuple[av.video.stream.VideoStream, av.VideoFrame, av.container.InputContainer]:
    container = av.open(str(path))
    stream = container.streams.video[0]
    return stream, next(container.decode(stream)), container


def test_aspect_ratio_and_field_order_are_kept(tmp_path: Path) -> None:
    anamorphic = write_tagged_clip(tmp_path / "sar.mp4", sar=Fraction(4, 3))
    vidgen.run(anamorphic, tmp_path / "sar-out.mp4")
    stream, _, container = _first_frame(tmp_path / "sar-out.mp4")
    with container:
        assert stream.sample_aspect_ratio == Fraction(4, 3)
    interlaced = write_tagged_clip(tmp_path / "tff.mkv", interlaced=True)
    vidgen.run(interlaced, tmp_path / "tff-out.mp4")
    stream, frame, container = _first_frame(tmp_path / "tff-out.mp4")
    with container:
        assert frame.interlaced_frame and int(stream.codec_context.field_order) == 2


def test_hdr_tags_and_mastering_display_are_kept(tmp_path: Path) -> None:
    mastering = "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"
    src = write_tagged_clip(tmp_path / "hdr.mkv", hdr=mastering)
    vidgen.run(src, tmp_path / "out.mp4")  # HEVC in, H.264 (the default encoder) out

    def hdr_of(path: Path) -> tuple:
        stream, frame, container = _first_frame(path)
        with container:
            side = {str(sd.type).rsplit(".", 1)[-1]: bytes(sd) for sd in frame.side_data.keys()}
            return (frame.color_trc, frame.color_primaries, frame.format.name,
                    side.get("MASTERING_DISPLAY_METADATA"), side.get("CONTENT_LIGHT_LEVEL"))

    original, written = hdr_of(src), hdr_of(tmp_path / "out.mp4")
    assert original[3] is not None and original[4] is not None
    assert written == original and written[:3] == (16, 9, "yuv420p10le")
    vidgen.run(src, tmp_path / "x265.mp4", encode=vidgen.EncodeSettings(codec="libx265"))
    assert hdr_of(tmp_path / "x265.mp4") == original
    messages: list[str] = []
    engine.run(src, tmp_path / "ffv1.mkv", [], encode=vidgen.EncodeSettings(codec="ffv1"), log=messages.append)
    assert messages == ["warning: HDR mastering display / content light level metadata not carried: ffv1 cannot "
                        "take it (libx264 and libx265 can)"]
    assert hdr_of(tmp_path / "ffv1.mkv")[:2] == (16, 9)


def test_tags_chapters_and_attachments_are_copied_where_the_output_holds_them(tmp_path: Path) -> None:
    src = write_tagged_clip(tmp_path / "in.mkv", tags=True, font=True)
    messages: list[str] = []
    for out in (tmp_path / "out.mkv", tmp_path / "out.mp4"):
        engine.run(src, out, [], log=messages.append)
        with av.open(str(out)) as container:
            assert container.metadata.get("title") == "A hostile title"
            assert container.streams.audio[0].metadata.get("language") == "fra"
            assert [c["metadata"]["title"] for c in container.chapters()] == ["Part 1", "Part 2"]
            attachments = [s for s in container.streams if s.type == "attachment"]
            assert [s.metadata.get("filename") for s in attachments] == (["font.ttf"] if out.suffix == ".mkv" else [])
    assert messages == ["warning: streams not copied: #2 attachment (font.ttf) (mp4 cannot hold attachments; "
                        "Matroska can)"]


def test_data_streams_and_timecodes_are_copied_or_named(tmp_path: Path) -> None:
    src = write_tagged_clip(tmp_path / "klv.ts", "mpegts", klv=True)
    messages: list[str] = []
    engine.run(src, tmp_path / "out.ts", [], log=messages.append)
    with av.open(str(tmp_path / "out.ts")) as container:
        assert [bytes(p) for p in container.demux(data=0) if p.size] == [bytes(range(16))] * 10
    assert messages == []
    engine.run(src, tmp_path / "out.mp4", [], log=messages.append)
    assert messages == ["warning: streams not copied: #2 data (klv): data streams are copied only into their own "
                        "kind of container, not mp4"]
    timed = write_tagged_clip(tmp_path / "tc.mp4", timecode="01:00:00:00")
    engine.run(timed, tmp_path / "tc-out.mp4", [], log=messages.append)
    with av.open(str(tmp_path / "tc-out.mp4")) as container:
        assert container.streams.video[0].metadata.get("timecode") == "01:00:00:00"
    assert len(messages) == 1


def test_a_demuxer_error_ends_reading_after_the_frames_before_it(clip: Path) -> None:
    """FFmpeg's demuxers mostly end at damage as at a normal end; an error (e.g. EIO from a failing
    disk) ends reading too, after the frames the decoder still holds, and is noted."""
    reader = VideoReader(clip)

    def failing_after_six(packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        for count, packet in enumerate(packets):
            if count == 6:
                raise av.error.OSError(5, "Input/output error")
            yield packet

    reader._packets = failing_after_six(reader._packets)
    try:
        frames = [frame.index for frame in reader.frames(rgb=False)]
    finally:
        reader.close()
    assert frames == list(range(len(frames))) and 6 <= len(frames) < 12  # some packets were read on opening
    [warning] = reader.warnings()
    assert warning.startswith(f"{clip} is damaged: reading stopped early (") and "(Input/output error))" in warning


def test_audio_copy_survives_a_bad_timestamp_and_a_demuxer_error(clip: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A copied packet whose timestamp repeats is refused by the MP4 muxer and left out, and a demuxer
    error ends the copying; the video is complete and both are in the one warning."""
    open_copies = VideoWriter._open_copies

    def with_damaged_copies(self: VideoWriter) -> None:
        open_copies(self)
        self.copy_packets = repeat_third_then_fail(self.copy_packets)

    def repeat_third_then_fail(packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        for count, packet in enumerate(packets):
            if count == 6:
                raise av.error.OSError(5, "Input/output error")
            yield packet
            if count == 2:
                yield packet

    monkeypatch.setattr(VideoWriter, "_open_copies", with_damaged_copies)
    messages: list[str] = []
    out = tmp_path / "out.mp4"
    assert engine.run(clip, out, [], log=messages.append).frames == 12
    with av.open(str(out)) as container:
        assert sum(1 for p in container.demux(audio=0) if p.size) == 6
    [warning] = messages
    assert "is damaged: 1 audio/subtitle packet(s) the muxer refused, left out (stream #1 at 0.02 s: " \
           "Invalid argument); " in warning
    assert warning.endswith("; copying audio/subtitles stopped early (0.12 s (Input/output error))")


class Identity(Processor):
    """Returns its core frames unchanged, in groups of 4 with one frame of context on each side."""

    name = "identity"
    group_size, context = 4, (1, 1)

    def process(self, group: FrameGroup) -> FrameGroup:
        return group.with_frames(group.core_frames)


def test_damaged_input_through_a_processor_keeps_the_decoded_frames_and_pts(tmp_path: Path) -> None:
    src = garbage_in_the_middle(tmp_path)
    engine.run(src, tmp_path / "plain.mp4", [], log=lambda message: None)
    engine.run(src, tmp_path / "processed.mp4", [Identity()], device="cpu", log=lambda message: None)
    plain, processed = decode(tmp_path / "plain.mp4"), decode(tmp_path / "processed.mp4")
    assert processed[1] == plain[1]
    assert psnr(plain[0], processed[0]) > 35


def test_an_empty_packet_mid_stream_does_not_end_decoding(clip: Path) -> None:
    """An empty packet (AVI writes one per dropped frame) would tell the decoder the stream has ended."""
    reader = VideoReader(clip)

    def with_an_empty_packet(packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        for count, packet in enumerate(packets):
            if count == 2:
                empty = av.Packet(b"")
                empty.pts = packet.pts
                yield empty
            yield packet

    reader._packets = with_an_empty_packet(reader._packets)
    try:
        assert [frame.index for frame in reader.frames(rgb=False)] == list(range(12))
    finally:
        reader.close()
    assert reader.warnings() == []


def test_seeking_in_an_mpeg_ts_is_not_taken_for_a_timestamp_jump(tmp_path: Path) -> None:
    """Distributed segments seek; the frames after a seek 14 s ahead keep their own timestamps."""
    src = remux(write_clip(tmp_path / "long.mp4", moving_pattern(400, 32, 24), options={"g": "25"}),
                tmp_path / "long.ts", fmt="mpegts")
    reader = VideoReader(src)
    every_pts = [frame.pts for frame in reader.frames(rgb=False)]
    reader.close()
    reader = VideoReader(src)
    reader.seek(every_pts[350])
    after_seek = [frame.pts for frame in reader.frames(rgb=False)]
    reader.close()
    assert after_seek == every_pts[-len(after_seek):] and 10 <= len(after_seek) <= 50  # MPEG-TS seeks roughly
    assert reader.warnings() == []


def test_sparse_data_packets_are_not_taken_for_a_timestamp_jump(tmp_path: Path) -> None:
    """Only video and audio tell a jump, as in FFmpeg: a data packet 12 s after the previous one keeps
    its time."""
    src = tmp_path / "sparse.ts"
    with av.open(str(src), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        data = container.add_data_stream("klv")
        container.mux(data_packet(data, 0))
        for index, rgb in enumerate(moving_pattern(10, WIDTH, HEIGHT)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        container.mux(data_packet(data, 300))  # 12 s
    messages: list[str] = []
    engine.run(src, tmp_path / "out.ts", [], log=messages.append)

    def data_times(path: Path) -> list[float]:
        with av.open(str(path)) as container:
            return [float(p.pts * p.time_base) for p in container.demux(data=0) if p.size]

    assert messages == []
    assert np.allclose(np.diff(data_times(tmp_path / "out.ts")), np.diff(data_times(src)))
    assert np.diff(data_times(src))[0] == pytest.approx(12)
