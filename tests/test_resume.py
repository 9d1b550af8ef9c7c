"""`vidgen run --resume`: a run killed at any point and resumed gives what an uninterrupted run gives."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from clips import audio_digest, decode, moving_pattern, write_clip
from distributed_processors import TrailingMax
from resume_child import TestProcessors

import vidgen
from vidgen.resume import work_folder

TESTS = Path(__file__).parent
FRAMES = 60
CHAIN = ("--plugin", "trailing-max", "--plugin", "kill-at", "--crf", "0", "--segment-frames", "10")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames, a keyframe every 10 (and B-frames), with an AAC track."""
    folder = tmp_path_factory.mktemp("resume")
    options = {"g": "10", "keyint_min": "10", "sc_threshold": "0"}
    return write_clip(folder / "in.mp4", moving_pattern(FRAMES, 64, 48), audio=True, options=options)


@pytest.fixture(scope="module")
def reference(source: Path) -> Path:
    """The uninterrupted run (without --resume) of the chain the tests kill."""
    dst = source.with_name("reference.mp4")
    vidgen.run(source, dst, [TrailingMax()], encode=vidgen.EncodeSettings(crf=0))
    return dst


@pytest.fixture
def vidgen_cli(cli, register) -> Callable[..., tuple[int, str, str]]:
    """The in-process CLI with the test processors registered."""
    register(TestProcessors(), "resume-test-processors")
    return cli


def kill_options(frame: int, spared: Path) -> tuple[str, ...]:
    return (*CHAIN, "-p", f"kill-at.frame={frame}", "-p", f"kill-at.spared={spared}")


def killed_run(src: Path, dst: Path, options: tuple[str, ...], **env: str) -> subprocess.CompletedProcess:
    """`vidgen run --resume` in a process that is killed (SIGKILL) on the way."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(TESTS / "resume_child.py"), "run", str(src), "-o", str(dst), "-q",
                           "--resume", *options], env={**os.environ, "PYTHONPATH": path, **env},
                          capture_output=True, text=True, timeout=120)


def assert_same_video(result: Path, reference: Path, src: Path) -> None:
    frames, pts = decode(result)
    expected_frames, expected_pts = decode(reference)
    assert pts == expected_pts == decode(src)[1]
    assert np.array_equal(frames, expected_frames)
    assert audio_digest(result) == audio_digest(src)


@pytest.mark.parametrize("frame, env", [
    (2, {}),  # before the first segment is complete
    (45, {}),  # in the middle: some segments kept, one half-written
    (FRAMES + 1, {"VIDGEN_TEST_KILL_IN_JOIN": "30"}),  # half-way through the join
    (FRAMES + 1, {"VIDGEN_TEST_KILL_AFTER_JOIN": "1"}),  # the output in place, the work folder not yet removed
], ids=["before-first-segment", "mid-run", "during-join", "after-join"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(vidgen_cli, source: Path, reference: Path, tmp_path: Path,
                                                          frame: int, env: dict[str, str]) -> None:
    spared = tmp_path / "spared"
    options = kill_options(frame, spared)
    killed = killed_run(source, tmp_path / "out.mp4", options, **env)
    assert killed.returncode == -9, killed.stderr
    work = work_folder(tmp_path / "out.mp4")
    assert (work / "manifest.json").is_file()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["out.mp4", work.name] if "VIDGEN_TEST_KILL_AFTER_JOIN" in env else [work.name])
    spared.touch()
    code, _, err = vidgen_cli("run", source, "-o", tmp_path / "out.mp4", "--resume", *options)
    assert code == 0, err
    if frame == 45:
        assert "resuming at frame" in err
    assert not work.exists()
    assert_same_video(tmp_path / "out.mp4", reference, source)


def interrupt_options(spared: Path) -> tuple[str, ...]:
    """A chain stopped by Ctrl-C on frame 45 until file `spared` exists."""
    return ("--crf", "0", "--plugin", "trailing-max", "--plugin", "interrupt-at", "-p", "interrupt-at.frame=45",
            "-p", f"interrupt-at.spared={spared}")


def interrupted_run(vidgen_cli, src: Path, dst: Path, spared: Path) -> str:
    """A `--resume` run stopped by Ctrl-C on frame 45; its stderr."""
    code, _, err = vidgen_cli("run", src, "-o", dst, "--resume", "--segment-frames", "10", *interrupt_options(spared))
    assert code == 130
    return err


def test_ctrl_c_keeps_the_segments_and_a_different_run_is_refused_without_deleting(vidgen_cli, source: Path,
                                                                                  tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    shutil.copy(source, src)
    spared = tmp_path / "spared"
    err = interrupted_run(vidgen_cli, src, dst, spared)
    work = work_folder(dst)
    assert err.strip().splitlines()[-1] == (f"interrupted; the finished segments are kept in {work}: run the same "
                                            "command again with --resume to continue")
    kept = sorted(p.name for p in work.iterdir())
    assert "seg-00000000-00000010.mp4" in kept and not [name for name in kept if name.startswith(".")]
    chain = interrupt_options(spared)[2:]
    code, _, err = vidgen_cli("run", src, "-o", dst, "--resume", "--crf", "18", *chain)
    assert code == 1 and err == (f"error: {dst}: cannot resume the work in {work}: option crf differs (was 0, now 18); "
                                 "nothing was deleted (remove the folder, or use --overwrite, to start over)\n")
    code, _, err = vidgen_cli("run", src, "-o", dst, "--resume", "--crf", "0", *chain[:2])
    assert code == 1 and f"the chain differs (was trailing-max → interrupt-at frame=45 spared={spared}, now trailing-max)" in err
    os.utime(src, ns=(0, 0))
    code, _, err = vidgen_cli("run", src, "-o", dst, "--resume", "--crf", "0", *chain)
    assert code == 1 and "the input file changed (mtime_ns differ)" in err
    code, _, err = vidgen_cli("run", src, "-o", dst, "--crf", "0", *chain)
    assert code == 1 and err == (f"error: {dst}: {work} holds the finished part of an interrupted run; add --resume "
                                 "to continue it, or --overwrite to start over\n")
    assert sorted(p.name for p in work.iterdir()) == kept and not dst.exists()
    code, _, err = vidgen_cli("run", src, "-o", dst, "--overwrite", "-q")
    assert code == 0 and not work.exists() and len(decode(dst)[1]) == FRAMES


def test_a_truncated_segment_is_redone_and_a_batch_skips_finished_outputs(vidgen_cli, source: Path,
                                                                          reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    second = write_clip(tmp_path / "second.mp4", moving_pattern(20, 64, 48, seed=4))
    spared = tmp_path / "spared"
    interrupted_run(vidgen_cli, source, out / "in.mp4", spared)
    segments = sorted(work_folder(out / "in.mp4").glob("seg-*"))
    assert len(segments) >= 2
    segments[1].write_bytes(segments[1].read_bytes()[:3000])  # as an older crash without fsync could leave it
    code, _, err = vidgen_cli("run", second, "-o", out / "second.mp4", "--crf", "0", "--plugin", "trailing-max")
    assert code == 0, err
    finished_at = (out / "second.mp4").stat().st_mtime_ns
    spared.touch()
    code, out_text, err = vidgen_cli("run", source, second, "-o", out, "--resume", "--segment-frames", "10",
                                     *interrupt_options(spared))
    assert code == 0, err
    assert f"{out / 'in.mp4'}: resuming at frame 10 of {FRAMES}" in err
    assert f"{out / 'second.mp4'}: already finished; skipped (--resume)" in err
    assert "finished earlier" in out_text and (out / "second.mp4").stat().st_mtime_ns == finished_at
    assert_same_video(out / "in.mp4", reference, source)
    assert sorted(p.name for p in out.iterdir()) == ["in.mp4", "second.mp4"]


def test_an_image_sequence_output_keeps_its_images_and_resumes(vidgen_cli, source: Path, tmp_path: Path) -> None:
    pattern, spared = tmp_path / "frames" / "%03d.png", tmp_path / "spared"
    pattern.parent.mkdir()
    (tmp_path / "whole").mkdir()
    assert interrupted_run(vidgen_cli, source, pattern, spared)
    kept = sorted(p.name for p in work_folder(pattern).glob("*.png"))
    assert kept[:2] == ["000.png", "001.png"] and len(kept) < FRAMES
    assert sorted(p.name for p in pattern.parent.iterdir()) == [work_folder(pattern).name]
    spared.touch()
    code, _, err = vidgen_cli("run", source, "-o", pattern, "--resume", *interrupt_options(spared))
    assert code == 0, err
    assert f"resuming at frame {len(kept)} of {FRAMES}" in err
    code, _, err = vidgen_cli("run", source, "-o", tmp_path / "whole" / "%03d.png", *interrupt_options(spared))
    assert code == 0, err
    names = sorted(p.name for p in pattern.parent.iterdir())
    assert names == [f"{index:03d}.png" for index in range(FRAMES)]
    for name in names:
        assert (pattern.parent / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_temporal_denoise_resumed_matches_the_uninterrupted_run(vidgen_cli, source: Path, tmp_path: Path) -> None:
    """The shipped temporal denoiser sees its neighbours across a resume: the frames after the cut get the
    same context frames as in one run, so a lossless resumed output equals the uninterrupted one."""
    chain = ("--crf", "0", "--plugin", "denoise", "-p", "denoise.sigma=10")
    code, _, err = vidgen_cli("run", source, "-o", tmp_path / "whole.mp4", "-q", *chain)
    assert code == 0, err
    spared = tmp_path / "spared"
    resumable = ("--resume", "--segment-frames", "10", *chain, "--plugin", "interrupt-at",
                 "-p", "interrupt-at.frame=45", "-p", f"interrupt-at.spared={spared}")
    code, _, err = vidgen_cli("run", source, "-o", tmp_path / "out.mp4", *resumable)
    assert code == 130, err
    spared.touch()
    code, _, err = vidgen_cli("run", source, "-o", tmp_path / "out.mp4", *resumable)
    assert code == 0 and "resuming at frame" in err, err
    resumed, whole = decode(tmp_path / "out.mp4")[0], decode(tmp_path / "whole.mp4")[0]
    assert resumed.shape == whole.shape
    assert np.abs(resumed.astype(int) - whole.astype(int)).max() <= 1
