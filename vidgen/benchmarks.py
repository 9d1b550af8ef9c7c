"""`vidgen bench io`: the cost of vidgen's frame path against the ffmpeg CLI, and memory against length."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from vidgen.bench import print_table


def write_test_clip(path: Path, seconds: float, width: int, height: int, fps: int = 25) -> None:
    """A camera-motion clip over a photo-like image with an AAC track (a 4 s motion played back and forth to
    reach `seconds`). The image is made here, so the bench needs no scikit-image."""
    from vidgen.synth import camera_path, synthetic_photo, write_clip

    cycle = camera_path(synthetic_photo(), width, height, 4 * fps)
    bounce = np.concatenate([cycle, cycle[::-1]])
    frames = (bounce[index % len(bounce)] for index in range(int(seconds * fps)))
    write_clip(path, frames, fps, audio=True, options={"crf": "20", "preset": "veryfast"})


def timed(command: list[str]) -> tuple[float, float]:
    """Run `command`; return (wall seconds, peak RSS in MiB of that program).

    The peak is read from /proc (VmHWM) while it runs: the rusage of a forked child would also count the
    memory of this (large) parent process from before the exec.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            line = next(l for l in status.read_text().splitlines() if l.startswith("VmHWM:"))
            peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise click.ClickException(f"{command[0]} failed: {proc.stderr.read().decode(errors='replace')[-300:]}")
    return seconds, peak_kib / 1024


IDENTITY_RUN = """
import sys
import vidgen

class Identity(vidgen.Processor):
    name = "identity"

    def process(self, group):
        return group.with_frames(group.core_frames)

src, dst, crf, preset = sys.argv[1:5]
vidgen.run(src, dst, [Identity()], overwrite=True, encode=vidgen.EncodeSettings(crf=int(crf), preset=preset))
"""


def io_benchmark(seconds: float, width: int, height: int, repeats: int = 3, crf: int = 18, preset: str = "medium") -> None:
    """Print a table: vidgen with no processor and with an identity processor (every frame through the
    RGB float tensor path) vs the ffmpeg CLI (same codec settings), on a clip and one 8x longer; each
    run `repeats` times, interleaved, reporting the median time and the median peak RSS."""
    vidgen = [sys.executable, "-m", "vidgen", "run", "-q", "--overwrite", "--crf", str(crf), "--preset", preset]
    ffmpeg = shutil.which("ffmpeg")
    runs = ["vidgen", "identity"] + (["ffmpeg"] if ffmpeg else [])
    names = {"vidgen": "vidgen run (no plugin)", "identity": "vidgen, identity processor (RGB tensor path)",
             "ffmpeg": "ffmpeg CLI, same settings"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        for length in (seconds, 8 * seconds):
            clip = Path(tmp) / f"clip{length:g}.mp4"
            click.echo(f"making a {length:g} s {width}x{height} clip ...", err=True)
            write_test_clip(clip, length, width, height)
            commands = {
                "vidgen": vidgen + [str(clip), "-o", out],
                "identity": [sys.executable, "-c", IDENTITY_RUN, str(clip), out, str(crf), preset],
                "ffmpeg": [ffmpeg or "ffmpeg", "-v", "error", "-y", "-i", str(clip), "-map", "0", "-c:v", "libx264",
                           "-crf", str(crf), "-preset", preset, "-c:a", "copy", out],
            }
            results: dict[str, list[tuple[float, float]]] = {run: [] for run in runs}
            for _ in range(repeats):
                for run in runs:
                    results[run].append(timed(commands[run]))
            for run in runs:
                secs, rss = (float(np.median(values)) for values in zip(*results[run]))
                rows.append((run, length, int(length * 25), secs, rss))
    click.echo(f"\nmedian of {repeats} runs each\n")
    print_table(["run", "clip", "seconds", "fps", "peak RSS (MiB)"],
                [[names[run], f"{length:g} s", f"{secs:.2f}", f"{frames / secs:.1f}", f"{rss:.0f}"]
                 for run, length, frames, secs, rss in rows])
    click.echo("")
    by = {(run, length): (secs, rss) for run, length, _, secs, rss in rows}
    if ffmpeg:
        for length in (seconds, 8 * seconds):
            for run in ("vidgen", "identity"):
                ratio = by[(run, length)][0] / by[("ffmpeg", length)][0]
                click.echo(f"time ratio {names[run]} / ffmpeg, {length:g} s clip (libx264 crf {crf} {preset}): {ratio:.2f}")
    else:
        click.echo("ffmpeg CLI not found: install it to compare")
    for run in ("vidgen", "identity"):
        ratio = by[(run, 8 * seconds)][1] / by[(run, seconds)][1]
        click.echo(f"peak RSS ratio of {names[run]}, 8x longer clip / clip: {ratio:.2f}")
