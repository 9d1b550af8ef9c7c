"""--engine ray: segments cut at keyframes and joined without re-encoding equal a single-process run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from clips import audio_digest, decode, moving_pattern, write_clip
from distributed_processors import CrashOnce, NeedsWidth64, NeighbourMean, TrailingMax
from hostile import garbage_in_the_middle
from resume_child import InterruptAt

import vidgen
from vidgen.distributed import ChainSpec, Reach, frame_layout, plan_segments, run_batch
from vidgen.resume import run_manifest, run_resumable, work_folder

ray = pytest.importorskip("ray")

TESTS = Path(__file__).parent
GOP = 8


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module; workers import the test processors from tests/."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def write_keyframed_clip(path: Path, frames: np.ndarray, fps: int = 25, rotation: int = 0) -> Path:
    """H.264 (B-frames, a keyframe every GOP frames) with an AAC tone."""
    options = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0"}
    return write_clip(path, frames, fps, audio=True, options=options, rotation=rotation)


def test_segments_are_cut_at_keyframes_with_aligned_warmup() -> None:
    reach = Reach.of([NeighbourMean(), TrailingMax()])
    assert reach == Reach(before=2 + 3 + 0 + 4 + 3, after=1 + 4 + 0 + 5, align=20)
    segments = plan_segments(list(range(100)), [0, 30, 45, 60, 90], 25, reach)
    assert [(s.start, s.stop) for s in segments] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    second = segments[1]
    assert second.warmup_start == 0 and second.first_index == 0  # 30 - 12 = 18, rounded down to the grid of 20
    third = segments[2]
    assert (third.warmup_start, third.first_index, third.decode_stop) == (40, 30, 100)
    assert third.pts == tuple(range(30, 100))
    assert [(s.start, s.stop) for s in plan_segments(list(range(100)), [0, 30], 0, reach)] == [(0, 100)]


def test_segmented_run_is_frame_exact_and_audio_exact(local_ray: None, tmp_path: Path) -> None:
    src = write_keyframed_clip(tmp_path / "long.mp4", moving_pattern(40, 64, 48))
    narrow = write_keyframed_clip(tmp_path / "narrow.mp4", moving_pattern(6, 48, 32))
    assert frame_layout(src)[1] == [0, 8, 16, 24, 32]
    lossless = vidgen.EncodeSettings(crf=0)
    chain = ((NeighbourMean, {}), (TrailingMax, {}), (NeedsWidth64, {}))
    vidgen.run(src, tmp_path / "local.mp4", [NeighbourMean(), TrailingMax(), NeedsWidth64()], encode=lossless)
    done, failed = run_batch([(src, tmp_path / "ray.mp4"), (narrow, tmp_path / "narrow-out.mp4")], ChainSpec(chain),
                             encode=lossless, segment_frames=10, worker_logs=False)
    assert done.error is None and done.frames == 40  # segments 0-15, 16-31, 32-39
    assert failed.error == "needs-width-64: video is 48 pixels wide"  # raised in a worker, reported, not retried
    local_frames, local_pts = decode(tmp_path / "local.mp4")
    ray_frames, ray_pts = decode(tmp_path / "ray.mp4")
    assert ray_pts == local_pts == decode(src)[1]
    assert np.array_equal(ray_frames, local_frames)
    assert audio_digest(tmp_path / "ray.mp4") == audio_digest(tmp_path / "local.mp4") == audio_digest(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.mp4", "long.mp4", "narrow.mp4", "ray.mp4"]


def test_cli_batch_on_ray_matches_local_and_reports_a_bad_file(local_ray: None, cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_keyframed_clip(folder / "rotated.mp4", moving_pattern(30, 64, 48, seed=1), rotation=90)
    write_keyframed_clip(folder / "short.mp4", moving_pattern(6, 48, 32, seed=2))
    (folder / "broken.mp4").write_text("not a video")
    code, _, err = cli("run", folder, "-o", tmp_path / "local", "-q")
    assert code == 1
    code, out, err = cli("run", folder, "-o", tmp_path / "ray", "--engine", "ray", "--segment-frames", "8")
    assert code == 1 and "1 of 3 file(s) failed" in err
    assert "broken.mp4" in out and out.count(" ok") == 2
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["rotated.mp4", "short.mp4"]
    for name in ("rotated.mp4", "short.mp4"):
        local, joined = tmp_path / "local" / name, tmp_path / "ray" / name
        assert decode(joined)[1] == decode(local)[1]  # same frame count and pts, B-frames and all
        assert audio_digest(joined) == audio_digest(local)
        assert vidgen.probe(joined).rotation == vidgen.probe(local).rotation
    assert vidgen.probe(tmp_path / "ray" / "rotated.mp4").rotation == 90


def test_a_crashed_worker_is_restarted_and_its_segment_retried(local_ray: None, tmp_path: Path) -> None:
    src = write_keyframed_clip(tmp_path / "long.mp4", moving_pattern(32, 64, 48))
    marker = tmp_path / "crashed"
    [outcome] = run_batch([(src, tmp_path / "out.mp4")], ChainSpec(((CrashOnce, {"marker": str(marker)}),)),
                          segment_frames=8, worker_logs=False)
    assert marker.exists()  # the worker holding frame 20 died once
    assert outcome.error is None and outcome.frames == 32
    assert decode(tmp_path / "out.mp4")[1] == decode(src)[1]


def test_a_damaged_video_is_processed_whole_when_its_segments_cannot_be(local_ray: None, tmp_path: Path) -> None:
    """Segments are cut by packets; frames lost to damage make a segment come up short, so the video is
    processed whole on one worker instead, exactly as a local run does."""
    src = garbage_in_the_middle(tmp_path)
    vidgen.run(src, tmp_path / "local.mp4")
    [outcome] = run_batch([(src, tmp_path / "ray.mp4")], ChainSpec(()), segment_frames=10, worker_logs=False)
    assert outcome.error is None and outcome.frames == len(decode(tmp_path / "local.mp4")[1]) < 30
    assert decode(tmp_path / "ray.mp4")[1] == decode(tmp_path / "local.mp4")[1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ray_resumes_the_segments_a_local_resumable_run_kept(local_ray: None, tmp_path: Path) -> None:
    """`--resume` on Ray: segments already in the work folder (here from an interrupted local run) are
    not made again; the joined result equals an uninterrupted run."""
    src = write_keyframed_clip(tmp_path / "long.mp4", moving_pattern(40, 64, 48))
    lossless = vidgen.EncodeSettings(crf=0)
    vidgen.run(src, tmp_path / "local.mp4", [TrailingMax()], encode=lossless)
    manifest = run_manifest(src, [("trailing-max", {})], {"crf": 0})
    with pytest.raises(KeyboardInterrupt):
        run_resumable(src, tmp_path / "ray.mp4", [TrailingMax(), InterruptAt(frame=30)], manifest, encode=lossless,
                      segment_frames=8)
    assert (work_folder(tmp_path / "ray.mp4") / "seg-00000000-00000008.mp4").is_file()
    messages: list[str] = []
    [outcome] = run_batch([(src, tmp_path / "ray.mp4")], ChainSpec(((TrailingMax, {}),)), encode=lossless,
                          segment_frames=8, worker_logs=False, log=messages.append, manifests={src: manifest})
    assert outcome.error is None and outcome.frames == 40
    assert messages and messages[0].startswith(f"{tmp_path / 'ray.mp4'}: resuming; ") and "of 5 segments" in messages[0]
    assert "resuming; 0 of" not in messages[0]
    local_frames, local_pts = decode(tmp_path / "local.mp4")
    ray_frames, ray_pts = decode(tmp_path / "ray.mp4")
    assert ray_pts == local_pts and np.array_equal(ray_frames, local_frames)
    assert audio_digest(tmp_path / "ray.mp4") == audio_digest(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.mp4", "long.mp4", "ray.mp4"]
