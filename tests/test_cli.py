"""The command line: bad input gives one line and a non-zero exit, plugin syntax, batch runs, Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from clips import copy_audio_only, moving_pattern, write_clip

import vidgen
from vidgen import FrameGroup, Option, Processor


class Invert(Processor):
    name = "invert"
    description = "1 - x"
    options = (Option("amount", float, 1.0, "blend"),)

    def process(self, group: FrameGroup) -> FrameGroup:
        frames = group.core_frames
        return group.with_frames(frames + self.settings.amount * (1 - 2 * frames))


class Exploding(Processor):
    name = "exploding"

    def process(self, group: FrameGroup) -> FrameGroup:
        raise RuntimeError("boom")


class TestPlugins:
    @vidgen.hookimpl
    def vidgen_register_processors(self, register) -> None:
        register(Invert)
        register(Exploding)


@pytest.fixture
def test_plugins(register) -> None:
    register(TestPlugins(), "test-plugins")


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: written(d / "empty.mp4", b""), "empty"),
        (lambda d: written(d / "text.mp4", b"hello\n"), "not a readable video"),
        (lambda d: d, "no video files"),
    ],
    ids=["missing", "empty", "text", "folder"],
)
def test_unreadable_inputs(cli, tmp_path: Path, make, fragment: str) -> None:
    code, _, err = cli("run", make(tmp_path), "-o", tmp_path / "out.mp4")
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "out.mp4").exists()


def test_truncated_and_audio_only_inputs(cli, clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    assert_one_line_error(*cli("run", truncated, "-o", tmp_path / "a.mp4")[::2], "cut.mp4")
    audio_only = copy_audio_only(clip, tmp_path / "sound.m4a")
    assert_one_line_error(*cli("run", audio_only, "-o", tmp_path / "b.mp4")[::2], "no video stream")
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_one_pixel_video(cli, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "dot.mp4", np.full((3, 1, 1, 3), 90, np.uint8), pix_fmt="yuv444p")
    code, _, err = cli("run", src, "-o", tmp_path / "out.mp4")
    assert code == 0, err
    assert vidgen.probe(tmp_path / "out.mp4").frame_count == 3


def test_output_path_rules(cli, clip: Path, tmp_path: Path) -> None:
    before = clip.read_bytes()
    assert_one_line_error(*cli("run", clip, "-o", clip)[::2], "input")
    assert_one_line_error(*cli("run", clip, "-o", tmp_path / "nope" / "out.mp4")[::2], "does not exist")
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"keep")
    assert_one_line_error(*cli("run", clip, "-o", existing)[::2], "--overwrite")
    assert existing.read_bytes() == b"keep"
    assert cli("run", clip, "-o", existing, "--overwrite", "-q")[0] == 0
    assert vidgen.probe(existing).frame_count == 12
    assert clip.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_output_folder(cli, clip: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_one_line_error(*cli("run", clip, "-o", locked / "out.mp4")[::2], "not writable")


def test_unwritable_output_folder_as_root_too(cli, clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert_one_line_error(*cli("run", clip, "-o", clip.parent / "out.mp4")[::2], "not writable")


def test_plugin_and_option_errors_list_the_valid_names(cli, clip: Path, tmp_path: Path, test_plugins) -> None:
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "nosuch")
    assert_one_line_error(code, err, "nosuch", "invert")
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "invert", "-p", "colour=1")
    assert_one_line_error(code, err, "colour", "amount")
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "invert", "-p", "amount=lots")
    assert_one_line_error(code, err, "amount")
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "invert", "--plugin", "invert", "-p", "amount=1")
    assert_one_line_error(code, err, "NAME.KEY=VALUE")
    assert not (tmp_path / "o.mp4").exists()


def test_chain_with_options(cli, clip: Path, tmp_path: Path, test_plugins) -> None:
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "invert", "--plugin", "invert",
                       "-p", "invert.amount=0.5", "-q")
    assert code == 0, err
    with av.open(str(tmp_path / "o.mp4")) as container:
        grey = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(float(grey.mean()) - 127.5) < 3  # 0.5-blend of a frame and its inverse is mid-grey


def test_processor_that_raises(cli, clip: Path, tmp_path: Path, test_plugins) -> None:
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "exploding")
    assert_one_line_error(code, err, "exploding", "boom")
    assert list(tmp_path.iterdir()) == [clip]


def test_plugins_listing(cli, test_plugins) -> None:
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    entries = {e["name"]: e for e in json.loads(out)}
    assert entries["invert"]["options"][0] == {"name": "amount", "type": "float", "default": 1.0, "help": "blend"}
    ensemble = {o["name"]: o for o in entries["sr"]["options"]}["ensemble"]
    assert ensemble["choices"] == [1, 2, 4, 8]  # integer choices (sr.ensemble) list as numbers
    code, out, err = cli("plugins")
    assert code == 0, err
    assert "invert.amount=1.0" in out and "[1|2|4|8]" in out


def test_info(cli, clip: Path) -> None:
    code, out, err = cli("info", clip, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert (info["width"], info["height"], info["frame_count"]) == (64, 48, 12)
    assert [s["type"] for s in info["streams"]] == ["video", "audio"]
    assert info["colour"]["range"] == "unspecified"


def test_info_names_full_range(cli, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "full.mp4", moving_pattern(2, 32, 24), colour=(1, 1, 1, 2))
    code, out, err = cli("info", src)
    assert code == 0, err
    assert "range jpeg" in out and "primaries bt709" in out
    code, out, _ = cli("info", write_clip(tmp_path / "tv.mp4", moving_pattern(2, 32, 24), colour=(1, 1, 1, 1)), "--json")
    assert json.loads(out)["colour"]["range"] == "mpeg"


def test_batch_run_reports_each_file_and_survives_a_bad_one(cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        write_clip(folder / f"c{i}.mp4", moving_pattern(4, 32, 32, seed=i))
    (folder / "broken.mp4").write_text("not a video")
    code, out, err = cli("run", folder, "-o", tmp_path / "out")
    assert code == 1 and "1 of 3 file(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.mp4", "c1.mp4"]
    assert "broken.mp4" in out and out.count(" ok") == 2


def test_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "long.mp4", moving_pattern(1200, 320, 240))
    out = tmp_path / "out.mp4"
    # the child gets Ctrl-C's default action even if something in this test process set SIGINT to be ignored
    # (an ignored signal is inherited, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "vidgen", "run", src, "-o", out, "--preset", "veryslow"],
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".out.") for p in tmp_path.iterdir()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # as soon as writing has started: an idle machine encodes the clip in ~4 s
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_bench_io_compares_both_frame_paths_and_lengths(cli) -> None:
    code, out, _ = cli("bench", "io", "--seconds", "0.2", "--size", "32x24", "--repeats", "1")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| vidgen") or line.startswith("| ffmpeg")]
    assert len(rows) == 4 + 2 * bool(shutil.which("ffmpeg"))
    assert out.count("peak RSS ratio") == 2


def test_ray_only_options_need_the_ray_engine(cli, clip: Path, tmp_path: Path) -> None:
    for args in (["--workers", "2"], ["--segment-frames", "10"], ["--ray-address", "auto"]):
        code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", *args)
        assert_one_line_error(code, err, args[0], "--engine ray")
    assert not (tmp_path / "o.mp4").exists()


def test_crf_and_preset_reach_the_encoder_or_are_named_as_ignored(cli, clip: Path, tmp_path: Path) -> None:
    code, _, err = cli("run", clip, "-o", tmp_path / "m.mp4", "--codec", "mpeg4", "--crf", "30", "--preset", "fast")
    assert code == 0, err
    assert "encoder mpeg4 has no crf option" in err and "encoder mpeg4 has no preset option" in err
    code, _, err = cli("run", clip, "-o", tmp_path / "v.webm", "--codec", "libvpx", "--crf", "4", "--encoder-opt", "b=1M")
    assert code == 0 and "no crf" not in err, err
    code, _, err = cli("run", clip, "-o", tmp_path / "v63.webm", "--codec", "libvpx", "--crf", "63", "--encoder-opt", "b=1M")
    assert (tmp_path / "v.webm").stat().st_size > 1.5 * (tmp_path / "v63.webm").stat().st_size  # crf was applied


def test_group_size_override_is_reported(cli, clip: Path, tmp_path: Path, test_plugins) -> None:
    code, _, err = cli("run", clip, "-o", tmp_path / "o.mp4", "--plugin", "invert", "--group-size", "3")
    assert code == 0, err
    assert "--group-size 3 replaces invert's own group size 8" in err


def test_batch_inputs_with_the_same_name_are_refused(cli, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_clip(tmp_path / folder / "x.mp4", moving_pattern(2, 32, 32))
    code, _, err = cli("run", tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "a/x.mp4", "b/x.mp4", "out/x.mp4")
    assert not (tmp_path / "out").exists()
