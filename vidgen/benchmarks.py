"""`vidgen bench io`: the cost of vidgen's frame path against the ffmpeg CLI, and memory against length."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np


def write_test_clip(path: Path, seconds: float, width: int, height: int, fps: int = 25) -> None:
    """A real-photo camera-motion clip with an AAC track (a 4 s motion played back and forth to reach `seconds`)."""
    from vidgen.synth import camera_path, evaluation_photos, write_clip

    cycle = camera_path(evaluation_photos()["coffee"], width, height, 4 * fps)
    bounce = np.concatenate([cycle, cycle[::-1]])
    frames = (bounce[index % len(bounce)] for index in range(int(seconds * fps)))
    write_clip(path, frames, fps, audio=True, options={"crf": "20", "preset": "veryfast"})


def timed(command: list[str]) -> tuple[float, float]:
    """Run `command`; return (wall seconds, peak RSS in MiB of that process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise click.ClickException(f"{command[0]} failed: {proc.stderr.read().decode(errors='replace')[-300:]}")
    return seconds, usage.ru_maxrss / 1024


def io_benchmark(seconds: float, width: int, height: int, crf: int = 18, preset: str = "medium") -> None:
    """Print a table: vidgen no-plugin pass vs ffmpeg CLI (same codec settings); RSS for 1x vs 8x length."""
    vidgen = [sys.executable, "-m", "vidgen", "run", "-q", "--overwrite", "--crf", str(crf), "--preset", preset]
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp) / "short.mp4", Path(tmp) / "long.mp4"
        click.echo(f"making {seconds:g} s and {8 * seconds:g} s {width}x{height} clips ...", err=True)
        write_test_clip(short, seconds, width, height)
        write_test_clip(long, 8 * seconds, width, height)
        out = str(Path(tmp) / "out.mp4")
        rows = []
        v_time, v_rss = timed(vidgen + [str(short), "-o", out])
        rows.append(("vidgen run (no plugin)", f"{seconds:g} s", v_time, v_rss))
        if ffmpeg:
            f_time, f_rss = timed([ffmpeg, "-v", "error", "-y", "-threads", "0", "-i", str(short), "-map", "0",
                                   "-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-c:a", "copy", out])
            rows.append(("ffmpeg CLI, same settings", f"{seconds:g} s", f_time, f_rss))
        l_time, l_rss = timed(vidgen + [str(long), "-o", out])
        rows.append(("vidgen run (no plugin)", f"{8 * seconds:g} s", l_time, l_rss))
    frames = int(seconds * 25)
    click.echo(f"\n| run | clip | seconds | fps | peak RSS (MiB) |\n|---|---|---|---|---|")
    for name, clip, secs, rss in rows:
        n = frames * (8 if clip.startswith(f"{8 * seconds:g}") else 1)
        click.echo(f"| {name} | {clip} | {secs:.2f} | {n / secs:.1f} | {rss:.0f} |")
    click.echo("")
    if ffmpeg:
        click.echo(f"time ratio vidgen / ffmpeg (same clip, libx264 crf {crf} {preset}): {v_time / f_time:.2f}")
    else:
        click.echo("ffmpeg CLI not found: install it to compare")
    click.echo(f"peak RSS ratio, 8x longer clip / clip: {l_rss / v_rss:.2f}")
