"""Image sequences in (`'frames/%05d.png' --fps 24` or a folder of frames) and out (`-o 'out/%05d.png'`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import decode, moving_pattern, write_clip

import vidgen
from vidgen import FrameGroup, Processor
from vidgen.metrics import psnr


def write_frames(folder: Path, frames: np.ndarray, name: str = "{:05d}.png", first: int = 1) -> Path:
    folder.mkdir(exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / name.format(first + i)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


class FailsLate(Processor):
    name = "fails-late"
    group_size = 2

    def process(self, group: FrameGroup) -> FrameGroup:
        if group.indices[0] >= 4:
            raise vidgen.VidgenError("late failure")
        return group.with_frames(group.core_frames)


class Plugin:
    @vidgen.hookimpl
    def vidgen_register_processors(self, register) -> None:
        register(FailsLate)


def test_pattern_and_folder_inputs(cli, tmp_path: Path) -> None:
    frames = moving_pattern(9, 64, 48)
    folder = write_frames(tmp_path / "frames", frames)
    (folder / "notes.txt").write_text("not a frame")
    code, _, err = cli("run", folder / "%05d.png", "--fps", "24", "-o", tmp_path / "a.mp4", "-q")
    assert code == 0, err
    info = vidgen.probe(tmp_path / "a.mp4")
    assert (info.frame_count, info.fps, info.width) == (9, 24.0, 64)
    assert psnr(decode(tmp_path / "a.mp4")[0], frames) > 35
    code, _, err = cli("run", folder, "--fps", "12.5", "-o", tmp_path / "b.mp4", "--start", "0.16", "-q")
    assert code == 0, err
    assert vidgen.probe(tmp_path / "b.mp4").frame_count == 7  # from frame 2 (0.16 s at 12.5 fps)


def test_16_bit_frames_make_a_10_bit_video(cli, tmp_path: Path) -> None:
    folder = tmp_path / "deep"
    folder.mkdir()
    ramp = (np.linspace(0, 65535, 64)[None, :, None] * np.ones((48, 1, 3))).astype(np.uint16)
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), ramp)
    code, _, err = cli("run", folder / "f%d.png", "--fps", "25", "-o", tmp_path / "deep.mp4", "-q")
    assert code == 0, err
    assert vidgen.probe(tmp_path / "deep.mp4").bit_depth == 10
    code, _, err = cli("run", tmp_path / "deep.mp4", "-o", tmp_path / "out%d.png")
    assert code == 0 and "warning" not in err, err
    assert cv2.imread(str(tmp_path / "out0.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # 10-bit stays deep
    code, _, err = cli("run", tmp_path / "deep.mp4", "-o", tmp_path / "low%d.jpg")
    assert code == 0 and "warning: .jpg images hold 8 bits" in err, err


def test_output_pattern(cli, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", moving_pattern(6, 64, 48), audio=True)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = cli("run", clip, "-o", out / "%04d.png", "--plugin", "sr", "-p", "scale=2")
    assert code == 0 and "the input's audio not written" in err, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:04d}.png" for i in range(6)]
    assert cv2.imread(str(out / "0000.png")).shape == (96, 128, 3)
    code, _, err = cli("run", clip, "-o", out / "%04d.png", "--frames", "2")
    assert code == 1 and "--overwrite" in err
    code, _, err = cli("run", clip, "-o", out / "%04d.png", "--frames", "2", "--overwrite", "-q")
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["0000.png", "0001.png"], err
    assert psnr(cv2.imread(str(out / "0001.png"))[..., ::-1], decode(clip)[0][1]) > 35


def test_a_failed_run_writes_no_frames(cli, tmp_path: Path, register) -> None:
    register(Plugin(), "fails-late-plugin")
    clip = write_clip(tmp_path / "in.mp4", moving_pattern(8, 64, 48))
    (tmp_path / "out").mkdir()
    code, _, err = cli("run", clip, "-o", tmp_path / "out" / "%03d.jpg", "--plugin", "fails-late")
    assert code == 1 and "late failure" in err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["{frames}/%05d.png", "-o", "{tmp}/x.mp4"], "needs --fps"),
        (["{clip}", "--fps", "24", "-o", "{tmp}/x.mp4"], "--fps is for image-sequence inputs"),
        (["{tmp}/none/%05d.png", "--fps", "24", "-o", "{tmp}/x.mp4"], "no image files match"),
        (["{clip}", "{clip2}", "-o", "{tmp}/%05d.png"], "takes one input"),
        (["{frames}", "--fps", "24", "--engine", "ray", "-o", "{tmp}/x.mp4"], "local engine only"),
        (["{clip}", "-o", "{tmp}/%05d.gif"], "image sequences are written as"),
    ],
)
def test_sequence_errors(cli, tmp_path: Path, args: list[str], fragment: str) -> None:
    places = {"frames": write_frames(tmp_path / "frames", moving_pattern(2, 32, 32)), "tmp": tmp_path,
              "clip": write_clip(tmp_path / "c.mp4", moving_pattern(2, 32, 32)),
              "clip2": write_clip(tmp_path / "d.mp4", moving_pattern(2, 32, 32))}
    code, _, err = cli("run", *[a.format(**places) for a in args])
    assert code == 1 and err.startswith("error: ") and fragment in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "d.mp4", "frames"]


def test_batch_of_frame_folders(cli, tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_frames(tmp_path / name, moving_pattern(3, 32, 32))
    code, _, err = cli("run", tmp_path / "a", tmp_path / "b", "--fps", "24", "-o", tmp_path / "out", "-q")
    assert code == 0, err
    for name in ("a", "b"):
        info = vidgen.probe(tmp_path / "out" / f"{name}.mp4")
        assert (info.frame_count, info.fps) == (3, 24.0)
