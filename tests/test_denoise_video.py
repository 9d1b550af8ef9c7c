"""The denoise plugin on real-video terms: training samples aligned as the processor aligns them, H.264 noise, grown
networks, the two-stage (flow-free) network, `--videos` training, the `--clips` bench, and inputs too short, too
small, grey or deep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from clips import moving_pattern, write_clip

import vidgen
from vidgen.weights import save_weights
from vidgen_denoise.data import VideoCropPool, find_clips, through_h264, video_sample
from vidgen_denoise import processor as denoise_processor
from vidgen_denoise.model import TemporalREDNet, TwoStageREDNet
from vidgen_denoise.processor import aligned_stack, load_model
from vidgen_denoise.train import grown, training_loss


@pytest.fixture
def video_folder(tmp_path: Path) -> Path:
    """Two 12-frame clips: an H.264 file and a folder of PNG frames (with a `masks` folder that is not a clip)."""
    import cv2

    folder = tmp_path / "videos"
    (folder / "frames" / "masks").mkdir(parents=True)
    write_clip(folder / "drift.mp4", moving_pattern(12, 96, 72, seed=1))
    for index, frame in enumerate(moving_pattern(12, 96, 72, seed=2)):
        cv2.imwrite(str(folder / "frames" / f"{index:03d}.png"), frame[..., ::-1])
        cv2.imwrite(str(folder / "frames" / "masks" / f"{index:03d}.png"), frame[..., 0])
    return folder


def test_grown_network_starts_as_the_smaller_one() -> None:
    torch.manual_seed(0)
    small = TemporalREDNet(frames=3, width=8, body_layers=1)
    grown = TemporalREDNet(frames=3, width=8, body_layers=1, quarter_blocks=2, half_blocks=1)
    grown.load_state_dict(small.state_dict(), strict=False)
    x = torch.rand(2, 10, 20, 28)
    assert torch.allclose(grown(x), small(x), atol=1e-6)
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in small.parameters())


def test_init_from_a_larger_network_keeps_its_first_blocks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    large = TemporalREDNet(frames=3, width=8, body_layers=1, quarter_blocks=3, half_blocks=1)
    for block in [*large.quarter_refine, *large.half_refine]:
        torch.nn.init.normal_(block.second.weight, std=0.05)  # blocks that change the output
    save_weights(tmp_path / "large.safetensors", large.state_dict(), large.config())
    pruned = TemporalREDNet(frames=3, width=8, body_layers=1, quarter_blocks=1, half_blocks=1)
    grown(pruned, str(tmp_path / "large.safetensors"))
    large = load_model(tmp_path / "large.safetensors")  # as stored (fp16)
    large.quarter_refine = large.quarter_refine[:1]  # without its last two 1/4-resolution blocks
    x = torch.rand(2, 10, 20, 28)
    assert torch.allclose(pruned(x), large(x), atol=1e-6)
    with pytest.raises(vidgen.VidgenError, match="not weights of this network"):
        grown(TemporalREDNet(frames=3, width=16, body_layers=1), str(tmp_path / "large.safetensors"))


def test_load_model_reads_the_residual_blocks(tmp_path: Path) -> None:
    model = TemporalREDNet(frames=5, width=8, body_layers=2, quarter_blocks=3, half_blocks=1)
    save_weights(tmp_path / "grown.safetensors", model.state_dict(), model.config())
    assert load_model(tmp_path / "grown.safetensors").config() == model.config()


def test_h264_round_trip_keeps_frames_in_order() -> None:
    frames = moving_pattern(6, 64, 48)
    frames[3] = 255 - frames[3]  # one frame unlike its neighbours
    decoded = through_h264(frames, 20)
    assert decoded.shape == frames.shape
    errors = np.abs(decoded.astype(int) - frames).mean((1, 2, 3))
    assert errors.max() < 6 and not np.array_equal(decoded, frames)  # lossy, but each frame in its place


def test_training_samples_are_aligned_like_the_processor_aligns() -> None:
    clip = moving_pattern(12, 80, 64)
    rng = np.random.default_rng(0)
    stack, clean, level = video_sample(clip, rng, frames=5, reject=4.0, single_share=0.0, h264_share=0.0,
                                       poisson_share=0.0, max_sigma=1.0)
    assert stack.shape == (5, 3, 64, 80) and clean.shape == (3, 64, 80) and 0 <= level <= 1 / 255
    centre = stack[2]
    unaligned = torch.from_numpy(clip[[0, 1, 3, 4]]).permute(0, 3, 1, 2).float() / 255
    # the neighbours were warped onto the centre frame: closer to it than the raw neighbours of any window
    aligned_error = (stack[[0, 1, 3, 4], :, 8:-8, 8:-8] - centre[:, 8:-8, 8:-8]).abs().mean()
    raw_error = (unaligned[:, :, 8:-8, 8:-8] - unaligned[1:2, :, 8:-8, 8:-8]).abs().mean()
    assert aligned_error < 0.5 * raw_error
    noisy = torch.rand(5, 3, 32, 32)
    assert torch.equal(aligned_stack(noisy, 2, [2] * 5, 4.0), noisy[[2] * 5])  # per-frame mode: the frame only


def test_crop_pool_batches_and_refreshes() -> None:
    rng = np.random.default_rng(0)
    pool = VideoCropPool([moving_pattern(10, 72, 56)], size=8, patch=32, frames=5, reject=4.0, rng=rng,
                         crops_per_sample=4, h264_share=1.0)
    before = pool.inputs.clone()
    pool.refresh()
    assert (pool.inputs != before).flatten(1).any(1).sum() == 4
    inputs, targets, levels = pool.batch(3)
    assert inputs.shape == (3, 5, 3, 32, 32) and targets.shape == (3, 3, 32, 32) and torch.all(levels == 0)


def test_find_clips_takes_files_and_frame_folders(video_folder: Path) -> None:
    assert [path.name for path in find_clips(video_folder)] == ["drift.mp4", "frames"]
    assert find_clips(video_folder / "drift.mp4") == [video_folder / "drift.mp4"]
    with pytest.raises(vidgen.VidgenError, match="not a video file or folder"):
        find_clips(video_folder / "missing")


def test_psnr_loss_counts_each_crop_by_its_relative_error() -> None:
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    error = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.01
    louder = error * torch.tensor([1.0, 10.0]).view(2, 1, 1, 1)  # the second crop's error 10x (+20 dB of MSE)
    psnr_change = training_loss(target + louder, target, "psnr") - training_loss(target + error, target, "psnr")
    mse_ratio = training_loss(target + louder, target, "mse") / training_loss(target + error, target, "mse")
    assert psnr_change.item() == pytest.approx(np.log(100) / 2, rel=0.02)  # the same log step whatever its size
    assert mse_ratio.item() == pytest.approx(101 / 2, rel=0.1)  # mse: dominated by the louder crop


def test_two_stage_network_fuses_the_stage_one_outputs_of_each_triplet() -> None:
    torch.manual_seed(0)
    model = TwoStageREDNet(frames=5, width=8, body_layers=1, half_blocks=1)
    x = torch.rand(2, 16, 37, 50)
    level = x[:, -1:]
    stage_one = [model.triplet(torch.cat([x[:, 3 * start:3 * start + 9], level], 1)).clamp(0, 1) for start in range(3)]
    out = model(x)
    assert out.shape == (2, 3, 37, 50)
    assert torch.allclose(out, model.fusion(torch.cat([*stage_one, level], 1)), atol=1e-6)
    for stage in (model.triplet, model.fusion):  # with no residual predicted, both stages pass frame t through
        torch.nn.init.zeros_(stage.tail.weight)
        torch.nn.init.zeros_(stage.tail.bias)
    assert torch.allclose(model(x), x[:, 6:9])
    assert model.config() == {"arch": "two-stage", "frames": 5, "width": 8, "body_layers": 1, "quarter_blocks": 0,
                              "half_blocks": 1}


def raise_if_flow_is_computed(*_: object) -> None:
    raise AssertionError("optical flow computed")


def test_two_stage_weights_run_on_raw_neighbours_sharing_stage_one(tmp_path: Path, tiny_denoise_weights: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = TwoStageREDNet(frames=5, width=8, body_layers=1, quarter_blocks=1)
    path = tmp_path / "two-stage.safetensors"
    save_weights(path, model.state_dict(), model.config())
    loaded = load_model(path)  # fp16-rounded weights
    assert isinstance(loaded, TwoStageREDNet) and loaded.config() == model.config()
    monkeypatch.setattr(denoise_processor, "flow_to_neighbour", raise_if_flow_is_computed)
    clip = torch.from_numpy(moving_pattern(11, 40, 32)).permute(0, 3, 1, 2).float() / 255
    with pytest.raises(vidgen.VidgenError, match="optical flow computed"):  # the flow-aligned network aligns
        vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights)(clip)
    batch_sizes: dict[int, int] = {}
    forward = TemporalREDNet.forward

    def counted(self: TemporalREDNet, x: torch.Tensor) -> torch.Tensor:
        batch_sizes[id(self)] = batch_sizes.get(id(self), 0) + len(x)
        return forward(self, x)

    monkeypatch.setattr(TemporalREDNet, "forward", counted)

    def run(**options: object) -> tuple[torch.Tensor, list[int]]:
        """The processor's output and how many frames each of its two stages restored."""
        batch_sizes.clear()
        out = vidgen.processor("denoise", device="cpu", precision="fp32", weights=path, **options)(clip)
        return out, sorted(batch_sizes.values())

    temporal, temporal_runs = run(tile=0)
    single, single_runs = run(frames=1)
    # 11 frames in groups of 8 and 3 core frames: 8 + 2 and 3 + 2 stage-1 windows (not 3 per frame), 11 fusions
    assert temporal_runs == [11, 15] and single_runs == [11, 11]
    monkeypatch.setattr(TemporalREDNet, "forward", forward)
    last = len(clip) - 1
    windows = torch.stack([clip[[min(max(t + offset, 0), last) for offset in range(-2, 3)]].flatten(0, 1)
                           for t in range(len(clip))])
    blind = torch.zeros(len(clip), 1, 32, 40)
    with torch.no_grad():
        assert torch.allclose(temporal, loaded(torch.cat([windows, blind], 1)).clamp(0, 1), atol=1e-5)
        assert torch.allclose(single, loaded(torch.cat([clip.repeat(1, 5, 1, 1), blind], 1)).clamp(0, 1), atol=1e-5)


def test_two_stage_training_samples_are_not_aligned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(denoise_processor, "flow_to_neighbour", raise_if_flow_is_computed)
    rng = np.random.default_rng(0)
    clip = moving_pattern(12, 80, 64)
    stack, clean, _ = video_sample(clip, rng, frames=5, reject=4.0, single_share=0.0, h264_share=0.0,
                                   max_sigma=0.0, poisson_share=0.0, align=False)
    raw = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    assert stack.shape == (5, 3, 64, 80) and torch.equal(stack[2], clean)
    assert all(any(torch.equal(slot, frame) for frame in raw) for slot in stack)  # noiseless: the clip's own frames
    pool = VideoCropPool([moving_pattern(10, 72, 56)], size=8, patch=32, frames=5, reject=4.0, rng=rng,
                         crops_per_sample=4, align=False)
    assert pool.batch(3)[0].shape == (3, 5, 3, 32, 32)


def test_trainer_learns_from_videos_and_holds_clips_out(cli, tmp_path: Path, video_folder: Path) -> None:
    out = tmp_path / "model.safetensors"
    args = ["train", "denoise", "--videos", video_folder, "--out", out, "--minutes", "0.005", "--width", "8",
            "--body-layers", "1", "--quarter-blocks", "1", "--batch", "2", "--patch", "32", "--pool", "16",
            "--clip-frames", "10", "--validate-every", "0", "--loss", "psnr", "--hold-out", "frames"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "held out: frames" in stdout and "video temporal" in stdout
    assert load_model(out).config()["quarter_blocks"] == 1
    code, _, err = cli(*args[:-1], "nothing", "--overwrite")
    assert code != 0 and "--hold-out nothing: no such clip" in err


def test_trainer_trains_the_two_stage_network_without_optical_flow(cli, tmp_path: Path, video_folder: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(denoise_processor, "flow_to_neighbour", raise_if_flow_is_computed)
    out = tmp_path / "two-stage.safetensors"
    code, stdout, err = cli("train", "denoise", "--arch", "two-stage", "--videos", video_folder, "--out", out,
                            "--minutes", "0.005", "--width", "8", "--body-layers", "1", "--batch", "2", "--patch",
                            "32", "--pool", "16", "--clip-frames", "10", "--validate-every", "0", "--hold-out", "frames")
    assert code == 0, err
    assert "video temporal" in stdout
    model = load_model(out)
    assert isinstance(model, TwoStageREDNet) and model.config()["arch"] == "two-stage"


def test_bench_on_clips_reports_each_clip_and_the_temporal_gain(cli, video_folder: Path, tiny_denoise_weights: Path) -> None:
    code, out, err = cli("bench", "denoise", "--threads", "1", "--clips", video_folder, "--size", "48x32",
                         "--clip-frames", "6", "--sigmas", "25", "--weights", tiny_denoise_weights)
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("| σ | method"))
    assert "drift (dB)" in header and "frames (dB)" in header
    assert any(line.startswith("| 25 + H.264 crf 23 | vidgen temporal") for line in lines)
    gain_rows = [line for line in lines if "temporal − per-frame" in line]
    assert len(gain_rows) == 2 and all(len(row.split("|")) == 8 for row in gain_rows)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_clip_shorter_than_the_window(tiny_denoise_weights: Path, length: int) -> None:
    clip = torch.from_numpy(moving_pattern(length, 40, 32)).permute(0, 3, 1, 2).float() / 255
    temporal = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights)(clip)
    single = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights, frames=1)(clip)
    assert temporal.shape == clip.shape and torch.isfinite(temporal).all()
    if length < 3:  # one or two frames: per-frame mode (two frames were worse with the temporal network)
        assert torch.equal(temporal, single)
    else:
        assert not torch.equal(temporal, single)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_tiny_frames(tiny_denoise_weights: Path, size: int) -> None:
    clip = torch.rand(4, 3, size, size)
    out = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights)(clip)
    assert out.shape == clip.shape and torch.isfinite(out).all()


def test_grey_and_sixteen_bit_inputs(cli, tmp_path: Path, tiny_denoise_weights: Path) -> None:
    import cv2

    grey = write_clip(tmp_path / "grey.mkv", moving_pattern(6, 48, 32), codec="ffv1", pix_fmt="gray")
    frames = tmp_path / "deep"
    frames.mkdir()
    for index, frame in enumerate(moving_pattern(6, 48, 32)):
        cv2.imwrite(str(frames / f"{index:03d}.png"), frame.astype(np.uint16) * 257)
    for source, extra in ((grey, []), (frames, ["--fps", "25"])):
        out = tmp_path / f"{source.stem}-clean.mkv"
        code, _, err = cli("run", source, *extra, "--plugin", "denoise", "-p", f"denoise.weights={tiny_denoise_weights}",
                           "-o", out)
        assert code == 0, err
        assert sum(1 for _ in vidgen.iter_groups(out, group_size=1)) == 6
