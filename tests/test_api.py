"""The library API: typed option values, set-up once per frame size, validation, quiet logging."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vidgen
from vidgen import FrameGroup, Option, Processor, ProcessorContext


class Counting(Processor):
    """Adds the number of frames seen in this stream / 255 to each frame (state that must not leak)."""

    name = "counting"
    options = (Option("step", float, 1.0, "added per frame seen, in 1/255"),)

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.setups = self.resets = 0

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        self.setups += 1
        self.seen = 0

    def reset(self) -> None:
        self.resets += 1
        self.seen = 0

    def process(self, group: FrameGroup) -> FrameGroup:
        out = []
        for frame in group.core_frames:
            out.append(frame + self.seen * self.settings.step / 255)
            self.seen += 1
        return group.with_frames(torch.stack(out))


def test_inpaint_takes_python_values() -> None:
    ready = vidgen.processor("inpaint", device="cpu", box=(10, 10, 40, 30))
    assert ready.processors[0].boxes == [(10, 10, 40, 30)]
    several = vidgen.processor("inpaint", device="cpu", box=[(0, 0, 4, 4), [8, 8, 2, 2]], mask=Path("m.png"))
    assert several.processors[0].boxes == [(0, 0, 4, 4), (8, 8, 2, 2)]
    assert several.processors[0].settings.mask == "m.png"
    assert vidgen.processor("inpaint", device="cpu", box="1,2,3,4;5,6,7,8").processors[0].boxes == [(1, 2, 3, 4), (5, 6, 7, 8)]
    array = np.zeros((4, 4), bool)
    assert vidgen.processor("inpaint", device="cpu", mask=array, propagate=False).processors[0].settings.mask is array


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"box": 5}, "inpaint: option box: expected (x, y, w, h)"),
        ({"box": (1, 2, 3)}, "expected x,y,w,h"),
        ({"mask": 3}, "option mask: expected a path or an (H, W)"),
        ({"dilate": 2.5}, "option dilate: expected int, got float 2.5"),
        ({"propagate": 1}, "option propagate: expected bool, got int 1"),
        ({"smooth": "lots"}, "option smooth"),
        ({"schedule": "weekly"}, "not one of video, per-frame"),
    ],
)
def test_python_values_of_the_wrong_type_are_one_line_errors(options: dict, fragment: str) -> None:
    with pytest.raises(vidgen.VidgenError) as caught:
        vidgen.processor("inpaint", device="cpu", **options)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_option_types_accept_python_values() -> None:
    assert Option("n", int, 0, "").convert(np.int64(3)) == 3
    assert Option("x", float, 0.0, "").convert(2) == 2.0
    assert Option("p", Path, None, "").convert("a/b") == Path("a/b")
    assert Option("s", str, None, "").convert(Path("a/b")) == "a/b"
    assert Option("b", bool, False, "").convert(True) is True


def test_set_up_once_per_frame_size_and_no_state_between_calls() -> None:
    counting = Counting()
    ready = vidgen.chain([counting], device="cpu")
    clip = np.zeros((3, 8, 8, 3), np.uint8)
    first, second = ready(clip), ready(clip)
    assert np.array_equal(first, second) and first[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert (counting.setups, counting.resets) == (1, 1)
    ready(np.zeros((2, 8, 16, 3), np.uint8))
    assert (counting.setups, counting.resets) == (2, 1)


def test_sr_loads_its_model_once_and_logs_quietly(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    upscale = vidgen.processor("sr", scale=2, device="cpu", precision="fp32")
    with caplog.at_level(logging.INFO, logger="vidgen"):
        for _ in range(2):
            assert upscale(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 16, 16, 3)
    assert len([r for r in caplog.records if r.message.startswith("sr: ")]) == 1
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("device, precision, fragment", [("cpu", "fp8", "unknown precision 'fp8'"),
                                                         ("tpu9", "auto", "unknown device 'tpu9'")])
def test_device_and_precision_are_checked(device: str, precision: str, fragment: str) -> None:
    with pytest.raises(vidgen.VidgenError, match=fragment):
        vidgen.processor("sr", device=device, precision=precision)


def test_ready_processor_documents_only_real_parameters() -> None:
    assert "keep_state" not in (vidgen.ReadyProcessor.__doc__ or "")


def test_import_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, vidgen, vidgen.api; print(os.environ.get('OMP_WAIT_POLICY'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "None", done.stderr


class Failing(Processor):
    """Raises on the second group; records `abort` calls."""

    name = "failing"
    aborted = 0

    def process(self, group: FrameGroup) -> FrameGroup:
        if group.indices[0] > 0:
            raise vidgen.VidgenError("bad frame")
        return group.with_frames(group.core_frames)

    def abort(self) -> None:
        self.aborted += 1


def test_failed_runs_call_abort(clip: Path, tmp_path: Path) -> None:
    failing = Failing()
    failing.group_size = 4
    with pytest.raises(vidgen.VidgenError, match="bad frame"):
        vidgen.run(clip, tmp_path / "out.mp4", [failing], device="cpu")
    assert failing.aborted == 1 and not (tmp_path / "out.mp4").exists()
    with pytest.raises(vidgen.VidgenError, match="bad frame"):
        vidgen.chain([failing], device="cpu")(np.zeros((8, 8, 8, 3), np.uint8))
    assert failing.aborted == 2


def test_failed_segments_of_a_distributed_run_call_abort(clip: Path, tmp_path: Path) -> None:
    from vidgen.distributed import ChainSpec, ChainWorker, Segment, frame_layout

    pts, _ = frame_layout(clip)
    worker = ChainWorker(ChainSpec(((Failing, {}),)), vidgen.EncodeSettings(), "cpu", "fp32", 1)
    with pytest.raises(vidgen.VidgenError, match="bad frame"):
        worker.run_segment(clip, Segment(0, len(pts), 0, 0, len(pts), tuple(pts)), tmp_path / "part.mp4")
    assert worker.processors[0].aborted == 1


@pytest.mark.parametrize("has_flag, speedup, expected", [(True, 0.5, torch.float32), (True, 2.5, torch.bfloat16),
                                                         (False, 2.5, torch.float32)])
def test_auto_precision_on_the_cpu_follows_a_measurement(monkeypatch: pytest.MonkeyPatch, has_flag: bool,
                                                         speedup: float, expected: torch.dtype) -> None:
    """A CPU that reports AVX-512 BF16 but runs bf16 slower than fp32 gets fp32 from 'auto'."""
    from vidgen import compute

    monkeypatch.setattr(compute, "cpu_has_native_bf16", lambda: has_flag)
    monkeypatch.setattr(compute, "bf16_conv_speedup", lambda: speedup)
    compute.cpu_bf16_is_faster.cache_clear()
    try:
        assert compute.compute_dtype(torch.device("cpu"), "auto") == expected
        assert compute.compute_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    finally:
        compute.cpu_bf16_is_faster.cache_clear()


def test_bf16_speedup_is_a_positive_ratio() -> None:
    from vidgen.compute import bf16_conv_speedup

    assert 0.05 < bf16_conv_speedup(rounds=2) < 20
