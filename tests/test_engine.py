"""The streaming engine: frame accounting, groups and context, timing, audio, colour, sizes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np
import pytest
import torch
from clips import audio_digest, decode, moving_pattern, write_clip

import vidgen
from vidgen import FrameGroup, Processor, VidgenError, engine
from vidgen.metrics import psnr
from vidgen.video import DecodedFrame, VideoReader, VideoWriter


class Recorder(Processor):
    """Records the groups it sees and returns its core frames, optionally inverted or resized."""

    name = "recorder"

    def __init__(self, size: int = 3, context: tuple[int, int] = (2, 1), scale: int = 1, invert: bool = False):
        super().__init__()
        self.group_size, self.context, self.scale, self.invert = size, context, scale, invert
        self.groups: list[tuple[list[int], list[int], bool]] = []

    def process(self, group: FrameGroup) -> FrameGroup:
        self.groups.append((group.indices, group.core_indices, group.is_last))
        out = group.core_frames
        if self.invert:
            out = 1 - out
        if self.scale != 1:
            out = torch.nn.functional.interpolate(out, scale_factor=self.scale, mode="nearest")
        return group.with_frames(out)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return width * self.scale, height * self.scale


def test_every_frame_is_core_once_with_the_context_that_exists() -> None:
    recorder = Recorder(size=3, context=(2, 1))
    clip = np.zeros((8, 8, 8, 3), np.uint8)
    vidgen.chain([recorder], device="cpu")(clip)
    cores = [i for _, core, _ in recorder.groups for i in core]
    assert cores == list(range(8))
    assert recorder.groups[0][0] == [0, 1, 2, 3]  # no frame before 0, one after
    assert recorder.groups[1][0] == [1, 2, 3, 4, 5, 6]
    assert recorder.groups[-1] == ([4, 5, 6, 7], [6, 7], True)


def test_chain_applies_processors_in_order_with_their_own_groups() -> None:
    first, second = Recorder(size=2, context=(0, 0), invert=True), Recorder(size=5, context=(1, 1), scale=2)
    clip = np.random.default_rng(0).integers(0, 256, (7, 6, 4, 3), dtype=np.uint8)
    out = vidgen.chain([first, second], device="cpu")(clip)
    assert out.shape == (7, 12, 8, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, ::2, ::2], 255 - clip)
    assert [len(core) for _, core, _ in second.groups] == [5, 2]


def test_library_processor_returns_the_kind_it_was_given() -> None:
    ready = vidgen.chain([Recorder(invert=True)], device="cpu")
    frames = torch.rand(5, 3, 6, 4)
    out = ready(frames)
    assert isinstance(out, torch.Tensor) and torch.allclose(out, 1 - frames)
    with pytest.raises(ValueError):
        ready(np.zeros((5, 6, 4), np.uint8))


class Buffering(Processor):
    """Holds every frame until the end: exercises `finish()`."""

    name = "buffering"

    def __init__(self) -> None:
        super().__init__()
        self.held: list[FrameGroup] = []

    def process(self, group: FrameGroup) -> None:
        self.held.append(group.with_frames(group.core_frames))

    def finish(self) -> FrameGroup:
        frames = torch.cat([g.frames for g in self.held])
        return FrameGroup(frames, sum((g.indices for g in self.held), []), sum((g.pts for g in self.held), []))


def test_buffering_processor_flushes_in_finish() -> None:
    clip = np.random.default_rng(1).integers(0, 256, (9, 4, 4, 3), dtype=np.uint8)
    assert np.array_equal(vidgen.chain([Buffering()], device="cpu")(clip), clip)


class Dropper(Processor):
    name = "dropper"

    def process(self, group: FrameGroup) -> FrameGroup:
        return FrameGroup(group.core_frames[1:], group.core_indices[1:], group.pts[group.core][1:])


def test_a_processor_that_drops_frames_is_an_error() -> None:
    with pytest.raises(VidgenError, match="dropper"):
        vidgen.chain([Dropper()], device="cpu")(np.zeros((4, 4, 4, 3), np.uint8))


def test_no_plugin_run_keeps_frames_pts_audio_and_quality(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = vidgen.run(clip, out, [])
    assert result.frames == 12
    src_frames, src_pts = decode(clip)
    out_frames, out_pts = decode(out)
    assert out_pts == src_pts
    assert psnr(src_frames, out_frames) > 38
    assert audio_digest(out) == audio_digest(clip)  # copied bit-exact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's private mode


def test_untouched_frames_are_encoded_as_decoded_without_torch(tmp_path: Path) -> None:
    """With no processor, decoded pictures go to the encoder as they are: lossless settings give the
    input's YUV planes back bit-exact (an RGB round trip would not), the input's frame types are not
    imposed on the encoder, and `vidgen run` never imports torch."""
    src = write_clip(tmp_path / "in.mp4", moving_pattern(12, 32, 24), options={"g": "3"})
    out = tmp_path / "out.mp4"
    script = ("import atexit, sys; from vidgen.cli import main; "  # the entry point: plugins add commands there
              "atexit.register(lambda: print('torch' in sys.modules)); "
              f"sys.argv = ['vidgen', 'run', {str(src)!r}, '-o', {str(out)!r}, '--crf', '0', '-q']; main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

    def planes_and_keyframes(path: Path) -> tuple[list[np.ndarray], int]:
        with av.open(str(path)) as container:
            keyframes = sum(p.is_keyframe for p in container.demux(video=0) if p.size)
            container.seek(0)
            return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)], keyframes

    (src_planes, src_keys), (out_planes, out_keys) = planes_and_keyframes(src), planes_and_keyframes(out)
    assert len(out_planes) == 12 and all(np.array_equal(a, b) for a, b in zip(src_planes, out_planes))
    assert (src_keys, out_keys) == (4, 1)


def test_variable_frame_rate_pts_survive(tmp_path: Path) -> None:
    pts = [0, 1, 2, 4, 5, 9, 10, 11, 15, 16]
    src = write_clip(tmp_path / "vfr.mp4", moving_pattern(10, 32, 32), pts=pts, time_base=Fraction(1, 25))
    vidgen.run(src, tmp_path / "out.mp4", [Recorder(size=4)])
    assert decode(tmp_path / "out.mp4")[1] == decode(src)[1]


def test_rotation_and_colour_tags_are_carried(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "rot.mp4", moving_pattern(4, 32, 24), rotation=90, colour=(1, 1, 1, 2))
    vidgen.run(src, tmp_path / "out.mp4", [])
    info = vidgen.probe(tmp_path / "out.mp4")
    assert info.rotation == 90
    assert info.colour == vidgen.probe(src).colour
    assert info.colour["primaries"] == "bt709" and info.colour["matrix"] == "itu709"
    assert psnr(decode(src)[0], decode(tmp_path / "out.mp4")[0]) > 38  # full range not squeezed


def test_ten_bit_input_stays_ten_bit(tmp_path: Path) -> None:
    frames = moving_pattern(4, 32, 32).astype(np.uint16) * 257
    src = write_clip(tmp_path / "ten.mp4", frames, pix_fmt="yuv420p10le")
    vidgen.run(src, tmp_path / "out.mp4", [])
    info = vidgen.probe(tmp_path / "out.mp4")
    assert (info.pix_fmt, info.bit_depth) == ("yuv420p10le", 10)


def test_size_change_and_odd_sizes(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "odd.mp4", moving_pattern(4, 31, 17), pix_fmt="yuv444p")
    vidgen.run(src, tmp_path / "same.mp4", [])
    assert (vidgen.probe(tmp_path / "same.mp4").width, vidgen.probe(tmp_path / "same.mp4").height) == (31, 17)
    vidgen.run(src, tmp_path / "padded.mp4", [], encode=vidgen.EncodeSettings(pix_fmt="yuv420p"))
    assert (vidgen.probe(tmp_path / "padded.mp4").width, vidgen.probe(tmp_path / "padded.mp4").height) == (32, 18)
    vidgen.run(src, tmp_path / "x2.mp4", [Recorder(scale=2)])
    assert (vidgen.probe(tmp_path / "x2.mp4").width, vidgen.probe(tmp_path / "x2.mp4").height) == (62, 34)


def test_iter_groups_yields_what_a_processor_sees(clip: Path) -> None:
    groups = list(vidgen.iter_groups(clip, group_size=5, context=(1, 0)))
    assert [g.core_indices for g in groups] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert groups[1].indices[0] == 4 and groups[1].frames.dtype == torch.float32
    assert groups[-1].is_last


class Slow(Processor):
    """Returns its frames after a short sleep, so the queue before it fills up; raises at frame `fail_at`."""

    name = "slow"

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.group_size, self.fail_at = 1, fail_at

    def process(self, group: FrameGroup) -> FrameGroup:
        time.sleep(0.005)
        if group.core_indices[0] == self.fail_at:
            raise RuntimeError("injected processor failure")
        return group.with_frames(group.core_frames)


def _run_with_watchdog(src: Path, dst: Path, processors: list[Processor], seconds: float = 15) -> BaseException:
    """Run the engine in a thread; assert it ends within `seconds` with an error, and return that error."""
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            engine.run(src, dst, processors, log=lambda message: None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the run hung"
    assert len(outcome) == 1, "the run succeeded although a thread failed"
    return outcome[0]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("side", ["decode", "compute", "encode", "encode-vanishes", "decode-vanishes"])
def test_a_failing_thread_ends_the_run_under_full_queues(side: str, seed: int, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever thread fails (an exception, or a thread that just ends), at a random frame and with the
    queues full, the run ends within seconds with that error and leaves nothing at the output path."""
    monkeypatch.setattr(engine, "QUEUE_FRAMES", 2)
    src = write_clip(tmp_path / "in.mp4", moving_pattern(30, 64, 48))
    fail_at = random.Random(f"{side}{seed}").randrange(3, 27)
    original_frames, original_write = VideoReader.frames, VideoWriter.write

    def failing_frames(self: VideoReader, rgb: bool = True) -> Iterator[DecodedFrame]:
        for frame in original_frames(self, rgb):
            if frame.index == fail_at:
                raise RuntimeError("injected decoder failure")
            yield frame

    def slow_failing_write(self: VideoWriter, image: Any, pts: int | None, index: int) -> None:
        time.sleep(0.005)  # slower than decoding: the queue before the encoder stays full
        if index == fail_at:
            raise RuntimeError("injected encoder failure")
        original_write(self, image, pts, index)

    def run_and_vanish(self: engine._Worker) -> None:
        try:
            self._target_fn()
        except BaseException:
            pass  # the thread ends and tells nobody: as if it had been killed

    if side.endswith("vanishes"):
        monkeypatch.setattr(engine._Worker, "run", run_and_vanish)
    processors: list[Processor] = []
    if side.startswith("decode"):
        monkeypatch.setattr(VideoReader, "frames", failing_frames)
        processors = [Slow()]  # slower than decoding: the queue after the decoder stays full
    elif side == "compute":
        processors = [Slow(fail_at=fail_at)]
    else:
        monkeypatch.setattr(VideoWriter, "write", slow_failing_write)
    dst = tmp_path / "out.mp4"
    error = _run_with_watchdog(src, dst, processors)
    assert "\n" not in str(error)
    expected = {"decode": "injected decoder failure", "compute": "injected processor failure",
                "encode": "injected encoder failure"}.get(side, "ended without finishing")
    assert expected in str(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_an_encoder_that_cannot_open_is_one_line_naming_its_options(clip: Path, tmp_path: Path) -> None:
    settings = vidgen.EncodeSettings(options={"preset": "nonexistent"})
    with pytest.raises(VidgenError, match=r"^cannot open encoder libx264 with options preset=nonexistent, crf=18 "
                                          r"\(Invalid argument\)$"):
        vidgen.run(clip, tmp_path / "out.mp4", encode=settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_ctrl_c_python_dropped_still_stops_the_run(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    engine.INTERRUPT_REQUESTED.set()  # what the `vidgen` command's handler leaves when the exception was lost
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.run(clip, out, [])
    finally:
        engine.INTERRUPT_REQUESTED.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == [clip.name]
