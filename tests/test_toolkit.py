"""The plugin authors' toolkit: vidgen.weights, vidgen.training, vidgen.bench (and the built-ins' use of it)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from clips import moving_pattern

import vidgen.weights
from vidgen import VidgenError
from vidgen.bench import (FrameSize, ReferenceRates, contact_sheet, count_flops, masks_from_clip, read_frames,
                          read_masks, sheet_frames)
from vidgen.synth import write_clip
from vidgen.training import TrainingRun, TrainOptions, cosine_rate, train_options
from vidgen.weights import ModelCard, load_weights, read_metadata, relative_command, save_weights

PLUGINS = Path(__file__).parents[1] / "plugins"
DOCS = Path(__file__).parents[1] / "docs" / "toolkit.md"


# --- weights ---------------------------------------------------------------------------------------------


def test_weights_are_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    save_weights(path, {"w": torch.ones(3)}, {"version": 1})
    import safetensors.torch

    def crash(tensors: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"half a fi")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_weights(path, {"w": torch.zeros(3)}, {"version": 2})
    tensors, metadata = load_weights(path)
    assert metadata == {"version": 1} and torch.equal(tensors["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary file left


def test_model_card_round_trips_with_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path.parent / "data"
    command = relative_command(["/usr/bin/vidgen", "train", "sr", "--images", str(data), f"--init={tmp_path}/a.pt"])
    assert command == "vidgen train sr --images ../data --init=a.pt"
    module_run = ["/repo/vidgen/__main__.py", "train", "sr", "--seed", "1"]  # `python -m vidgen train sr --seed 1`
    assert relative_command(module_run) == "vidgen train sr --seed 1"
    card = ModelCard(command, ["../data"], 3, {"val_psnr": 30.5}, {"steps": 7})
    save_weights("m.safetensors", {"w": torch.ones(1)}, {"channels": 8, **card.as_metadata()})
    assert read_metadata("m.safetensors") == {"channels": 8, "command": command, "fitted_on": ["../data"], "seed": 3,
                                              "metrics": {"val_psnr": 30.5}, "training": {"steps": 7}}


@pytest.mark.parametrize("path", sorted(PLUGINS.glob("*/weights/*.safetensors")), ids=lambda p: p.name)
def test_shipped_weights_carry_a_model_card(path: Path) -> None:
    meta = read_metadata(path)
    assert meta["command"].startswith("vidgen train ") and isinstance(meta["seed"], int)
    assert meta["fitted_on"] and not any(os.path.isabs(folder) for folder in meta["fitted_on"])
    assert meta["metrics"] and all(value is not None for value in meta["metrics"].values())
    assert f"`{meta['command']}`" in (path.parent / "README.md").read_text()  # the card quotes it exactly


def test_weights_readmes_are_short_model_cards_with_history_beside_them() -> None:
    for readme in PLUGINS.glob("*/weights/README.md"):
        text = readme.read_text()
        assert len(text) < 4000, readme
        assert "vidgen train" in text and "seed" in text.lower() and "licen" in text.lower(), readme
        assert (readme.parent / "HISTORY.md").is_file()


# --- training --------------------------------------------------------------------------------------------


def test_cosine_rate_decays_to_its_floor() -> None:
    assert cosine_rate(1.0, 0.0, floor=0.05) == pytest.approx(1.0)
    assert cosine_rate(1.0, 0.5, floor=0.05) == pytest.approx(0.525)
    assert cosine_rate(1.0, 1.0, floor=0.05) == cosine_rate(1.0, 2.0, floor=0.05) == pytest.approx(0.05)


def options(tmp_path: Path, minutes: float = 10.0, resume: bool = False) -> TrainOptions:
    return TrainOptions(tmp_path / "toy.safetensors", minutes, 5, torch.device("cpu"), 0, resume, False)


def test_resume_continues_exactly_as_the_uninterrupted_run(tmp_path: Path) -> None:
    def parts() -> dict:
        torch.manual_seed(1)
        model = torch.nn.Linear(4, 1)
        return {"model": model, "optimizer": torch.optim.Adam(model.parameters(), lr=0.1)}

    def train_step(run: TrainingRun, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        inputs = torch.from_numpy(run.rng.random((8, 4))).float() + torch.randn(8, 4)
        run.optimise(model(inputs).pow(2).mean(), optimizer)

    first = parts()
    run = TrainingRun(options(tmp_path), first, torch.float32)
    steps = run.steps()
    for _ in range(3):
        next(steps)
        train_step(run, **first)
    run.step = 3
    run.save_checkpoint()
    train_step(run, **first)  # the 4th step of the uninterrupted run

    second = parts()
    resumed = TrainingRun(options(tmp_path, resume=True), second, torch.float32)
    assert resumed.step == 3
    train_step(resumed, **second)
    assert torch.equal(first["model"].weight, second["model"].weight)
    assert first["optimizer"].state_dict()["state"][0]["step"] == second["optimizer"].state_dict()["state"][0]["step"]


def test_loop_spends_its_budget_and_leaves_an_atomic_checkpoint(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    run = TrainingRun(options(tmp_path, minutes=0.0), {"model": model}, torch.float32)
    assert list(run.steps()) == [0]  # at least one step, even on an empty budget
    state = torch.load(tmp_path / "toy.ckpt.pt", weights_only=True)
    assert state["run"]["step"] == 1 and set(state) == {"model", "run"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.ckpt.pt"]


def test_gradient_scaling_only_under_cuda_fp16(tmp_path: Path) -> None:
    run = TrainingRun(options(tmp_path), {}, torch.bfloat16)
    assert not run.scaler.is_enabled()
    if torch.cuda.is_available():
        cuda = TrainOptions(tmp_path / "c.safetensors", 1, 0, torch.device("cuda"), 0, False, False)
        assert TrainingRun(cuda, {}, torch.float16).scaler.is_enabled()


def test_inpaint_gan_step_scales_both_losses() -> None:
    from vidgen_inpaint.model import Discriminator, Generator
    from vidgen_inpaint.train import gan_step

    class Recording:
        def __init__(self) -> None:
            self.scaled, self.stepped = 0, 0

        def scale(self, loss: torch.Tensor) -> torch.Tensor:
            self.scaled += 1
            return loss * 2

        def step(self, optimizer: torch.optim.Optimizer) -> None:
            self.stepped += 1
            optimizer.step()

    netG, netD = Generator(width=4), Discriminator(width=4)
    scaler = Recording()
    gan_step(netG, netD, torch.optim.SGD(netG.parameters(), 0.1), torch.optim.SGD(netD.parameters(), 0.1),
             torch.rand(2, 3, 64, 64), scaler=scaler)
    assert scaler.scaled == scaler.stepped == 2


def test_seg2vid_batches_move_to_the_training_device() -> None:
    from vidgen_seg2vid.train import Pair, sample_clips

    pair = Pair.from_arrays(np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.uint8))
    batch = sample_clips([pair], 16, 2, np.random.default_rng(0)).to(torch.device("meta"))
    assert {tensor.device.type for tensor in vars(batch).values()} == {"meta"}


def test_every_trainer_shares_the_options(cli) -> None:
    for name in ("sr", "denoise", "inpaint", "seg2vid"):
        code, out, _ = cli("train", name, "--help")
        assert code == 0
        for option in ("--out", "--minutes", "--seed", "--device", "--threads", "--resume", "--overwrite"):
            assert option in out, (name, option)


@pytest.mark.parametrize("name", ["sr", "denoise", "inpaint", "seg2vid"])
def test_trainers_refuse_the_installed_package_and_existing_outputs(cli, name: str, noise_photos: Path,
                                                                    tmp_path: Path) -> None:
    shipped = next((PLUGINS / f"vidgen_{name}" / "weights").glob("*.safetensors"))
    before = shipped.read_bytes()
    code, _, err = cli("train", name, "--images", noise_photos, "--out", shipped, "--minutes", "0.001", "--overwrite")
    assert code == 1 and "inside the installed package" in err and "Traceback" not in err
    assert shipped.read_bytes() == before
    existing = tmp_path / "mine.safetensors"
    existing.write_bytes(b"keep")
    code, _, err = cli("train", name, "--images", noise_photos, "--out", existing, "--minutes", "0.001")
    assert code == 1 and "--overwrite" in err and existing.read_bytes() == b"keep"
    code, _, err = cli("train", name, "--images", noise_photos, "--out", tmp_path / "new.safetensors", "--resume")
    assert code == 1 and "no checkpoint to resume from" in err


def test_seg2vid_trains_into_the_current_folder_by_default(cli, noise_photos: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("train", "seg2vid", "--images", noise_photos, "--minutes", "0", "--crop", "32", "--batch", "1",
                         "--threads", "1")
    assert code == 0, err
    meta = read_metadata(tmp_path / "seg2vid.safetensors")
    assert meta["fitted_on"] == ["photos"] and meta["command"].startswith("vidgen train seg2vid --images photos")
    assert set(meta["metrics"]) == {"val_psnr_style0", "val_label_accuracy"} and meta["training"]["steps"] == 1


def test_train_options_pass_one_options_object(tmp_path: Path) -> None:
    import click

    seen: list[TrainOptions] = []

    @click.command()
    @train_options(default_out="x.safetensors", default_minutes=2.0)
    def command(options: TrainOptions) -> None:
        seen.append(options)

    result = CliRunner().invoke(command, ["--out", str(tmp_path / "a.safetensors"), "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert seen[0].seed == 4 and seen[0].minutes == 2.0 and seen[0].checkpoint == tmp_path / "a.ckpt.pt"


# --- bench -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["io"], ["denoise"], ["inpaint"], ["seg2vid"]])
def test_bench_sizes_are_checked_in_one_line(cli, command: list[str]) -> None:
    code, _, err = cli("bench", *command, "--size", "640")
    assert code == 2 and "expected WIDTHxHEIGHT" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["io", "--seconds", "-1"], ["denoise", "--sigmas", "a,b"],
                                  ["inpaint", "--seeds", "1.5"],
                                  ["inpaint", "--clip", "."], ["sr", "--precision", "fp64"],
                                  ["seg2vid", "--sheet", "sheet.jpg"]])
def test_bench_option_errors_have_no_traceback(cli, args: list[str]) -> None:
    code, _, err = cli("bench", *args)
    assert code == 2 and "Error" in err and "Traceback" not in err


def test_unreadable_weights_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "photo.pt"
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((4, 4, 3), np.uint8))
    path.write_bytes((tmp_path / "photo.png").read_bytes())
    with pytest.raises(VidgenError) as error:
        load_weights(path)
    assert "cannot read weights" in str(error.value) and "\n" not in str(error.value)


def test_frame_size_type() -> None:
    assert FrameSize().convert("640X360", None, None) == (640, 360)
    for bad in ("640", "0x10", "ax3", "64x"):
        with pytest.raises(Exception, match="WIDTHxHEIGHT"):
            FrameSize().convert(bad, None, None)


def test_benches_name_the_bench_extra_without_scikit_image(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)
    code, _, err = cli("bench", "denoise", "--size", "32x24", "--frames", "1")
    assert code == 1 and "pip install 'vidgen[bench]'" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("bench", "io", "--seconds", "0.2", "--size", "32x24", "--repeats", "1")
    assert code == 0, err
    assert "peak RSS ratio" in out


def test_bench_writes_a_contact_sheet_and_reports_matmul_shares(cli, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    code, out, err = cli("bench", "denoise", "--size", "40x32", "--frames", "3", "--sigmas", "25", "--tile", "64",
                         "--compare-tile", "0", "--precision", "fp32", "--sheet", sheet)
    assert code == 0, err
    assert "GFLOP/s fp32" in out and "% of bf16 matmul" in out
    temporal = next(line for line in out.splitlines() if "temporal" in line and line.startswith("| 25"))
    assert re.search(r"\| \d+ % \|", temporal)
    image = cv2.imread(str(sheet))
    columns = ["noisy", "cv2", "per-frame", "temporal", "clean"]
    assert image.shape == (22 + 3 * (32 + 2), len(columns) * (40 + 2), 3)


def test_contact_sheet_grid(tmp_path: Path) -> None:
    small = np.zeros((4, 8, 10, 3), np.uint8)
    large = np.full((4, 16, 20, 3), 200, np.uint8)
    path = contact_sheet(tmp_path / "s.png", {"input": small, "truth": large}, sheet_frames(4))
    image = cv2.imread(str(path))
    assert sheet_frames(4) == [0, 2, 3] and image.shape == (22 + 3 * 18, 2 * 22, 3)
    assert image[22 + 5, 5].max() == 0 and image[22 + 5, 22 + 5].min() == 200  # small tiles scaled up
    with pytest.raises(VidgenError, match="contact sheet"):
        contact_sheet(tmp_path / "s.unknown", {"input": small}, [0])


def test_reference_rates_and_flop_counting() -> None:
    rates = ReferenceRates(fp32=100e9, bf16=400e9)
    assert rates.shares(50e9) == ("50 %", "12 %")
    assert ReferenceRates(fp32=100e9, bf16=None).shares(50e9) == ("50 %", "-")
    a = torch.ones(8, 16)
    assert count_flops(lambda: a @ torch.ones(16, 4)) == 2 * 8 * 16 * 4


def test_clip_readers(tmp_path: Path) -> None:
    frames = moving_pattern(5, 24, 16)
    (tmp_path / "frames").mkdir()
    (tmp_path / "masks").mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / "frames" / f"{index:03d}.png"), frame[..., ::-1])
        cv2.imwrite(str(tmp_path / "masks" / f"{index:03d}.png"), np.full((16, 24), 255 * (index % 2), np.uint8))
    assert np.array_equal(read_frames(tmp_path / "frames", limit=3), frames[:3])
    assert read_masks(tmp_path / "masks").tolist() == [[[bool(i % 2)] * 24] * 16 for i in range(5)]
    video = write_clip(tmp_path / "clip.mp4", frames, options={"crf": "0"})
    decoded = read_frames(video)
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 6  # yuv420p
    with pytest.raises(VidgenError, match="no images"):
        read_masks(tmp_path)


def test_masks_from_another_clip_are_resized_played_back_and_forth_and_dilated() -> None:
    masks = np.zeros((3, 10, 10), bool)
    for t in range(3):
        masks[t, 4:6, 2 * t + 2] = True  # a thin object moving right
    pasted = masks_from_clip(masks, frames=6, height=20, width=20, dilation=0)
    assert pasted.shape == (6, 20, 20)
    columns = [int(np.flatnonzero(frame.any(0)).mean()) for frame in pasted]
    assert columns[:3] == [4, 8, 12] and columns[3:] == [8, 4, 8]  # 0 1 2 1 0 1
    dilated = masks_from_clip(masks, frames=1, height=20, width=20, dilation=3)
    assert dilated.sum() > pasted[0].sum() and dilated[0, pasted[0]].all()


# --- documentation ---------------------------------------------------------------------------------------


def test_toolkit_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of docs/toolkit.md runs (in order, sharing one namespace, in a temporary folder)."""
    text = DOCS.read_text()
    blocks = list(re.finditer(r"```python\n(.*?)```", text, re.S))
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        padding = "\n" * text.count("\n", 0, block.start(1))  # tracebacks name the line of the page
        exec(compile(padding + block.group(1), str(DOCS), "exec"), namespace)  # noqa: S102
