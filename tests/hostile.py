"""A corpus of damaged and unusual inputs, each built in a few milliseconds from tiny synthetic clips.

`CORPUS` names each kind of damage and how to build it into a folder; `python tests/hostile.py` runs
`vidgen run` on every one and prints the table of docs/robustness.md (kind → what vidgen does).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from clips import copy_audio_only, moving_pattern, write_clip  # noqa: E402

WIDTH, HEIGHT, FRAMES = 64, 48, 30
FONT = b"\x00\x01\x00\x00" + bytes(60)  # the start of a TrueType file: enough for a container to carry


def base_clip(folder: Path, name: str = "base.mp4", audio: bool = True, frames: int = FRAMES) -> Path:
    """A 64x48 H.264 clip (keyframe every 10 frames), with an AAC tone when `audio`."""
    return write_clip(folder / name, moving_pattern(frames, WIDTH, HEIGHT), audio=audio, options={"g": "10"})


def remux(src: Path, dst: Path, fmt: str | None = None, options: dict[str, str] | None = None) -> Path:
    """Copy every stream of `src` into `dst` (container `fmt`, muxer `options`) without re-encoding."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format=fmt, options=options or {}) as target:
        outputs = {s.index: target.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.size:
                packet.stream = outputs[packet.stream.index]
                target.mux(packet)
    return dst


def atoms(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Top-level MP4 boxes between `start` and `end`: type → (offset of the box, offset after it)."""
    found, offset, end = {}, start, len(data) if end is None else end
    while offset + 8 <= end:
        size = int.from_bytes(data[offset:offset + 4], "big")
        if size < 8:
            break
        found[bytes(data[offset + 4:offset + 8])] = (offset, offset + size)
        offset += size
    return found


def mdat_payload(data: bytes) -> tuple[int, int]:
    start, end = atoms(data)[b"mdat"]
    return start + 8, end


def packet_ranges(path: Path, kind: str) -> list[tuple[int, int]]:
    """(byte offset, size) of the packets of the first stream of `kind` ('video' or 'audio')."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [(p.pos, p.size) for p in container.demux(stream) if p.size and p.pos is not None]


def damaged(src: Path, dst: Path, change: Callable[[bytearray], None]) -> Path:
    data = bytearray(src.read_bytes())
    change(data)
    dst.write_bytes(bytes(data))
    return dst


def keep_first(fraction: float) -> Callable[[bytearray], None]:
    """A change to a file's bytes that cuts it after `fraction` of them."""
    def change(data: bytearray) -> None:
        del data[int(len(data) * fraction):]
    return change


def data_packet(stream: av.stream.Stream, index: int) -> av.Packet:
    """The `index`-th packet of a 25 fps KLV data stream: 16 bytes 0..15."""
    packet = av.Packet(bytes(range(16)))
    packet.stream, packet.time_base = stream, Fraction(1, 90000)
    packet.pts = packet.dts = index * 3600
    return packet


def flip_bytes(data: bytearray, count: int, start: int, end: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        data[rng.randrange(start, end)] ^= 0xFF


def raw_h264(frames: np.ndarray) -> bytes:
    """`(T, H, W, 3)` uint8 frames as a raw Annex B H.264 stream (no container, no timestamps)."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 25), Fraction(25)
    out = b""
    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        out += b"".join(bytes(p) for p in codec.encode(frame))
    return out + b"".join(bytes(p) for p in codec.encode(None))


# Each builder makes its input in `folder` and returns its path.


def flips_in_frames(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        flip_bytes(data, 50, *mdat_payload(data))
    return damaged(base_clip(folder), folder / "flips.mp4", change)


def flips_anywhere(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        flip_bytes(data, 50, 0, len(data), seed=1)
    return damaged(base_clip(folder), folder / "flips-anywhere.mp4", change)


def garbage_in_the_middle(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        start, end = mdat_payload(data)
        middle = (start + end) // 2
        data[middle:middle + 1500] = random.Random(2).randbytes(1500)
    return damaged(base_clip(folder), folder / "garbage.mp4", change)


def zeroed_run(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        start, end = mdat_payload(data)
        offset = start + (end - start) * 3 // 5
        data[offset:offset + 800] = bytes(800)
    return damaged(base_clip(folder), folder / "zeroed.mp4", change)


def zeroed_index(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        start, end = atoms(data)[b"moov"]
        data[start + 200:start + 600] = bytes(400)
    return damaged(base_clip(folder), folder / "zeroed-index.mp4", change)


def zeroed_keyframe_index(folder: Path) -> Path:
    """The sync-sample box (which frames are keyframes) zeroed: a broken index, frames still readable."""
    def change(data: bytearray) -> None:
        position = data.index(b"stss")
        size = int.from_bytes(data[position - 4:position], "big")
        data[position + 4:position - 4 + size] = bytes(size - 8)
    return damaged(base_clip(folder), folder / "stss.mp4", change)


def first_keyframe_lost(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        position, size = packet_ranges(folder / "base.mp4", "video")[0]
        data[position:position + size] = bytes(size)
    return damaged(base_clip(folder), folder / "no-first-keyframe.mp4", change)


def every_frame_broken(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        for position, size in packet_ranges(folder / "base.mp4", "video"):
            data[position:position + size] = bytes(size)
    return damaged(base_clip(folder), folder / "all-broken.mp4", change)


def damaged_audio(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        for position, size in packet_ranges(folder / "base.mp4", "audio")[2::3]:
            flip_bytes(data, 4, position, position + size, seed=position)
    return damaged(base_clip(folder), folder / "audio.mp4", change)


def cut_header(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        del data[:1000]
    return damaged(base_clip(folder), folder / "cut-header.mp4", change)


def truncated_index_at_end(folder: Path) -> Path:
    def change(data: bytearray) -> None:
        start, end = atoms(data)[b"moov"]
        del data[(start + end) // 2:]
    return damaged(base_clip(folder), folder / "cut-moov.mp4", change)


def truncated_before_index(folder: Path) -> Path:
    return damaged(base_clip(folder), folder / "cut-mdat.mp4", keep_first(0.5))


def truncated_faststart(folder: Path) -> Path:
    """Index first (as for streaming), media data cut at 60%."""
    fast = remux(base_clip(folder), folder / "fast.mp4", options={"movflags": "faststart"})
    return damaged(fast, folder / "cut-faststart.mp4", keep_first(0.6))


def huge_frame_size(folder: Path) -> Path:
    """The sample description claims 65535x65535 pictures; the pictures are 64x48."""
    def change(data: bytearray) -> None:
        entry = data.index(b"avc1")
        data[entry + 28:entry + 32] = b"\xff\xff\xff\xff"
    return damaged(base_clip(folder), folder / "huge-size.mp4", change)


def huge_box_size(folder: Path) -> Path:
    """The index box claims to be 4 GB long."""
    def change(data: bytearray) -> None:
        start, _ = atoms(data)[b"moov"]
        data[start:start + 4] = b"\xff\xff\xff\xf0"
    return damaged(base_clip(folder), folder / "huge-box.mp4", change)


def garbage_appended(folder: Path) -> Path:
    return damaged(base_clip(folder), folder / "tail.mp4", lambda data: data.extend(random.Random(3).randbytes(3000)))


def empty_file(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def random_bytes(folder: Path) -> Path:
    path = folder / "noise.mp4"
    path.write_bytes(random.Random(4).randbytes(20000))
    return path


def text_file(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("not a video\n" * 100)
    return path


def one_frame(folder: Path) -> Path:
    return base_clip(folder, "one.mp4", frames=1)


def audio_only(folder: Path) -> Path:
    return copy_audio_only(base_clip(folder), folder / "audio-only.m4a")


def attachment_only(folder: Path) -> Path:
    path = folder / "font-only.mkv"
    with av.open(str(path), "w") as container:
        container.add_attachment("font.ttf", "font/ttf", FONT)
        container.start_encoding()
    return path


def data_only(folder: Path) -> Path:
    """An MPEG-TS holding nothing but a KLV data stream."""
    path = folder / "klv.ts"
    with av.open(str(path), "w") as container:
        stream = container.add_data_stream("klv")
        for index in range(5):
            container.mux(data_packet(stream, index))
    return path


def remuxed_and_damaged(folder: Path, fmt: str, name: str, change: Callable[[bytearray], None]) -> Path:
    """The base clip remuxed into container `fmt` (named by `name`'s suffix), then damaged by `change`."""
    clean = remux(base_clip(folder), folder / f"clip{Path(name).suffix}", fmt=fmt)
    return damaged(clean, folder / name, change)


def truncated_transport_stream(folder: Path) -> Path:
    return remuxed_and_damaged(folder, "mpegts", "cut.ts", keep_first(2 / 3))


def flips_in_transport_stream(folder: Path) -> Path:
    return remuxed_and_damaged(folder, "mpegts", "flips.ts",
                               lambda data: flip_bytes(data, 50, 2000, len(data), seed=5))


def joined_transport_streams(folder: Path) -> Path:
    """Two MPEG-TS recordings joined byte by byte (`cat a.ts b.ts`): the timestamps start again halfway."""
    ts = remux(base_clip(folder), folder / "clip.ts", fmt="mpegts")
    path = folder / "joined.ts"
    path.write_bytes(ts.read_bytes() * 2)
    return path


def truncated_matroska(folder: Path) -> Path:
    return remuxed_and_damaged(folder, "matroska", "cut.mkv", keep_first(2 / 3))


def flips_in_matroska(folder: Path) -> Path:
    return remuxed_and_damaged(folder, "matroska", "flips.mkv",
                               lambda data: flip_bytes(data, 50, 1500, len(data), seed=6))


def raw_stream_without_timestamps(folder: Path) -> Path:
    path = folder / "raw.h264"
    path.write_bytes(raw_h264(moving_pattern(12, WIDTH, HEIGHT)))
    return path


def resolution_change(folder: Path) -> Path:
    """A raw stream whose pictures go from 64x48 to 32x24 after 8 frames."""
    path = folder / "size-change.h264"
    path.write_bytes(raw_h264(moving_pattern(8, WIDTH, HEIGHT)) + raw_h264(moving_pattern(8, 32, 24, seed=1)))
    return path


def cut_mask_video(folder: Path) -> Path:
    """A clean input whose inpainting mask video (`mask.mp4` beside it, 8 frames) is cut in half."""
    mask = np.zeros((8, HEIGHT, WIDTH, 3), np.uint8)
    mask[:, 10:20, 10:30] = 255
    whole = write_clip(folder / "whole-mask.mp4", mask, options={"g": "4"})
    damaged(whole, folder / "mask.mp4", keep_first(0.5))
    return base_clip(folder, "masked.mp4", audio=False, frames=8)


@dataclass(frozen=True)
class Hostile:
    """One kind of damage: how to build it, whether a usable output is expected (else one error line),
    and extra `vidgen run` arguments ("{folder}" stands for the folder the input was built in)."""

    name: str
    build: Callable[[Path], Path]
    output: bool
    args: tuple[str, ...] = ()

    def arguments(self, folder: Path) -> list[str]:
        return [arg.format(folder=folder) for arg in self.args]


CORPUS = [
    Hostile("50 random byte flips in the frames", flips_in_frames, True),
    Hostile("50 random byte flips anywhere (index included)", flips_anywhere, False),
    Hostile("1.5 KB of garbage in the middle", garbage_in_the_middle, True),
    Hostile("a run of zeroed bytes in the last half", zeroed_run, True),
    Hostile("a run of zeroed bytes in the index (moov)", zeroed_index, False),
    Hostile("keyframe index (stss) zeroed", zeroed_keyframe_index, True),
    Hostile("first keyframe lost", first_keyframe_lost, True),
    Hostile("every video frame zeroed", every_frame_broken, False),
    Hostile("damaged audio packets", damaged_audio, True),
    Hostile("header cut off (first 1000 bytes)", cut_header, False),
    Hostile("truncated inside the index (moov at the end)", truncated_index_at_end, True),
    Hostile("truncated before the index (moov lost)", truncated_before_index, False),
    Hostile("truncated media data, index first (faststart)", truncated_faststart, True),
    Hostile("bogus huge frame size in the header", huge_frame_size, True),
    Hostile("bogus huge box size in the header", huge_box_size, True),
    Hostile("garbage appended after the end", garbage_appended, True),
    Hostile("0-byte file", empty_file, False),
    Hostile("random bytes", random_bytes, False),
    Hostile("a text file named .mp4", text_file, False),
    Hostile("1-frame clip", one_frame, True),
    Hostile("audio only", audio_only, False),
    Hostile("attachment only (no video)", attachment_only, False),
    Hostile("data stream only (KLV in MPEG-TS)", data_only, False),
    Hostile("MPEG-TS truncated", truncated_transport_stream, True),
    Hostile("MPEG-TS with 50 byte flips", flips_in_transport_stream, True),
    Hostile("two MPEG-TS files joined (timestamps start again)", joined_transport_streams, True),
    Hostile("Matroska truncated (no index)", truncated_matroska, True),
    Hostile("Matroska with 50 byte flips", flips_in_matroska, True),
    Hostile("raw H.264 without timestamps", raw_stream_without_timestamps, True),
    Hostile("resolution change mid-stream", resolution_change, True),
    Hostile("inpainting mask video cut in half", cut_mask_video, False,
            ("--plugin", "inpaint", "--mask", "{folder}/mask.mp4", "--device", "cpu")),
]


def run_cli(*args: str | Path, timeout: float = 60) -> tuple[int, str, float]:
    """`vidgen ARGS...` in a subprocess: (exit code, stderr, seconds)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidgen", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stderr, time.perf_counter() - start


def main() -> None:
    """Print the docs/robustness.md table: each kind, and what `vidgen run` answered."""
    import tempfile

    print("| kind of damage | what vidgen does |\n|---|---|")
    for hostile in CORPUS:
        with tempfile.TemporaryDirectory(prefix="vidgen-hostile-") as folder:
            src = hostile.build(Path(folder))
            code, err, seconds = run_cli("run", src, "-o", Path(folder) / "out.mp4", *hostile.arguments(Path(folder)))
            answer = " / ".join(line for line in err.splitlines() if line and " frames in " not in line) or "-"
            if code == 0:
                with av.open(str(Path(folder) / "out.mp4")) as out:
                    frames = sum(1 for p in out.demux(video=0) if p.size)
                answer = f"{frames} frames written; {answer}"
            print(f"| {hostile.name} | {answer.replace('|', '/').replace(folder + '/', '')} ({seconds:.1f} s) |")


if __name__ == "__main__":
    main()
