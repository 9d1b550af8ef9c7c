"""`vidgen run --start/--duration/--frames`: a window of the video, with audio cut to match."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from clips import decode, moving_pattern, write_clip

from vidgen.metrics import psnr
from vidgen.trim import parse_time


@pytest.fixture
def long_clip(tmp_path: Path) -> Path:
    """4 s at 25 fps, 64x48, with AAC audio."""
    return write_clip(tmp_path / "long.mp4", moving_pattern(100, 64, 48), audio=True)


def audio_span(path: Path) -> tuple[float, float]:
    """(start, end) in seconds of the audio packets of `path`."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(audio=0) if p.size]
    return float(packets[0].pts * packets[0].time_base), float((packets[-1].pts + packets[-1].duration) * packets[-1].time_base)


def test_start_and_duration(cli, long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "part.mp4"
    code, _, err = cli("run", long_clip, "--start", "1", "--duration", "0:02", "-o", out)
    assert code == 0 and "warning" not in err and "50 frames" in err, err  # the frames after it are not "lost"
    frames, pts = decode(out)
    source, _ = decode(long_clip)
    assert len(frames) == 50 and pts[0] == 0
    assert psnr(frames[0], source[25]) > 35 and psnr(frames[-1], source[74]) > 35
    start, end = audio_span(out)
    assert start < 0.05 and abs(end - 2.0) < 0.05


def test_frames_limit_with_a_processor_chain(cli, long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "ten.mp4"
    code, _, err = cli("run", long_clip, "--frames", "10", "--start", "2", "--plugin", "sr", "-p", "scale=2", "-o", out, "-q")
    assert code == 0, err
    frames, _ = decode(out)
    assert frames.shape == (10, 96, 128, 3)
    assert abs(audio_span(out)[1] - 0.4) < 0.05


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--start", "9"], "no frame at or after --start 9 s"),
        (["--start", "1:2:3:4"], "expected seconds"),
        (["--duration", "0"], "--duration > 0"),
        (["--frames", "5", "--engine", "ray"], "local engine only"),
    ],
)
def test_bad_windows_are_one_line_errors(cli, long_clip: Path, tmp_path: Path, args: list[str], fragment: str) -> None:
    code, _, err = cli("run", long_clip, *args, "-o", tmp_path / "x.mp4")
    assert code == 1 and err.startswith("error: ") and fragment in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_parse_time() -> None:
    assert [parse_time(t) for t in ("90", "1:30.5", "1:00:00", "2.")] == [90, 90.5, 3600, 2]
    assert np.isclose(parse_time("0:0.04"), 0.04)


def test_library_run_takes_a_window(long_clip: Path, tmp_path: Path) -> None:
    import vidgen
    from vidgen.trim import Trim

    result = vidgen.run(long_clip, tmp_path / "w.mp4", trim=Trim(start=0.5, frames=3))
    assert result.frames == 3 and len(decode(tmp_path / "w.mp4")[0]) == 3
