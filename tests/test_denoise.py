"""The denoise plugin: model shapes, tiling, temporal neighbours, options, trainer, shipped-weight quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from clips import moving_pattern, write_clip

import vidgen
from vidgen.metrics import psnr, warp
from vidgen.processor import FrameGroup
from vidgen.synth import camera_path, evaluation_photos
from vidgen.weights import save_weights
from vidgen_denoise.model import TemporalREDNet
from vidgen_denoise.processor import ALIGN, SHIPPED_WEIGHTS, Denoise, load_model, reject_misaligned, tile_spans




def noisy_clip(frames: int, width: int, height: int, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) `(T, H, W, 3)` uint8 camera-motion clips of the astronaut photo, fresh noise per frame."""
    clean = camera_path(evaluation_photos()["astronaut"], width, height, frames, seed=seed)
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).round().astype(np.uint8)


def test_model_restores_shape_and_handles_odd_sizes() -> None:
    model = TemporalREDNet(frames=3, width=8, body_layers=2)
    out = model(torch.rand(2, 10, 37, 50))
    assert out.shape == (2, 3, 37, 50)


def test_load_model_reads_shape_from_tensors(tiny_denoise_weights: Path) -> None:
    model = load_model(tiny_denoise_weights)
    assert model.config() == {"frames": 5, "width": 8, "body_layers": 1, "quarter_blocks": 0, "half_blocks": 0}


@pytest.mark.parametrize("length, tile", [(360, 1024), (360, 180), (1080, 512), (101, 30)])
def test_tile_spans_cover_the_frame_once_on_aligned_starts(length: int, tile: int) -> None:
    spans = tile_spans(length, tile)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(spans, spans[1:]))
    assert all(start % ALIGN == 0 and stop - start <= tile + ALIGN for start, stop in spans)


def test_tiled_output_equals_whole_frame(tiny_denoise_weights: Path) -> None:
    frames = torch.rand(4, 3, 72, 100)
    whole = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights, tile=0)(frames)
    tiled = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights, tile=24)(frames)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_temporal_inputs_repeat_nearest_frame_at_the_ends(tiny_denoise_weights: Path) -> None:
    denoise = Denoise(weights=tiny_denoise_weights, align=False)
    denoise.model = load_model(tiny_denoise_weights)
    frames = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    group = FrameGroup(frames, [0, 1, 2, 3], [0, 1, 2, 3], core=slice(0, 2))  # start of a video: no frames before
    inputs = denoise.network_inputs(group)
    assert inputs.shape == (2, 16, 2, 2)
    assert inputs[0, :15:3, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert inputs[1, :15:3, 0, 0].tolist() == [0, 0, 1, 2, 3]


def test_alignment_warps_neighbours_onto_the_centre_frame(tiny_denoise_weights: Path) -> None:
    from vidgen.synth import camera_path, evaluation_photos

    clip = torch.from_numpy(camera_path(evaluation_photos()["astronaut"], 192, 128, 5, pan=0.1)).permute(0, 3, 1, 2) / 255
    group = FrameGroup(clip, list(range(5)), list(range(5)), core=slice(2, 3))
    errors = {}
    for align in (False, True):
        denoise = Denoise(weights=tiny_denoise_weights, align=align)
        denoise.model = load_model(tiny_denoise_weights)
        neighbours = denoise.network_inputs(group)[0, :15].view(5, 3, 128, 192)
        errors[align] = float((neighbours[[0, 4], :, 8:-8, 8:-8] - clip[2, :, 8:-8, 8:-8]).abs().mean())
    assert errors[True] < 0.3 * errors[False]  # measured 0.036 vs 0.263 for the outer neighbours


def test_warp_samples_where_the_flow_points_bilinearly_with_edges_repeated() -> None:
    frame = np.random.default_rng(0).random((20, 30, 3), np.float32)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 0.5  # two pixels right, half a pixel down
    warped = warp(frame, flow)
    between_rows = (frame[:-1] + frame[1:]) / 2
    np.testing.assert_allclose(warped[:19, :28], between_rows[:, 2:], atol=1e-5)
    np.testing.assert_allclose(warped[:19, 28:], np.repeat(between_rows[:, -1:], 2, 1), atol=1e-5)  # past the edge
    np.testing.assert_allclose(warped[19, :28], frame[19, 2:], atol=1e-5)


def test_misaligned_neighbour_pixels_are_replaced_by_the_centre_frame() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random(3, np.float32)
    centre = (clean + 0.1 * rng.standard_normal((64, 64, 3))).astype(np.float32)
    warped = (clean + 0.1 * rng.standard_normal((64, 64, 3))).astype(np.float32)
    warped[20:36, 30:50] += 0.3  # content the flow did not match
    kept = reject_misaligned(centre, warped.copy(), threshold=4.0)
    np.testing.assert_array_equal(kept[20:36, 30:50], centre[20:36, 30:50])
    replaced = (kept != warped).any(2)
    assert replaced[:, :24].mean() < 0.02  # columns away from the patch (noise only) keep the neighbour


def test_per_frame_mode_ignores_neighbours(tiny_denoise_weights: Path) -> None:
    clip = torch.rand(6, 3, 32, 40)
    changed = clip.clone()
    changed[0] = torch.rand(3, 32, 40)
    single = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights, frames=1)
    assert torch.equal(single(clip)[1:], single(changed)[1:])
    temporal = vidgen.processor("denoise", device="cpu", precision="fp32", weights=tiny_denoise_weights, frames=5)
    assert not torch.equal(temporal(clip)[1], temporal(changed)[1])


def test_sigma_option_reaches_the_network(tiny_denoise_weights: Path) -> None:
    clip = torch.rand(3, 3, 32, 32)
    blind = vidgen.processor("denoise", device="cpu", weights=tiny_denoise_weights)(clip)
    known = vidgen.processor("denoise", device="cpu", weights=tiny_denoise_weights, sigma=50)(clip)
    assert not torch.equal(blind, known)


@pytest.mark.parametrize("options", [{"frames": 4}, {"sigma": -1}, {"tile": -8}, {"reject": -1}, {"colour": 1}])
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(vidgen.VidgenError):
        vidgen.processor("denoise", device="cpu", **options)


def test_unusable_weights_are_rejected(tiny_denoise_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(vidgen.VidgenError, match="frames=1 or frames=5"):
        vidgen.processor("denoise", device="cpu", weights=tiny_denoise_weights, frames=3)(torch.rand(2, 3, 16, 16))
    with pytest.raises(vidgen.VidgenError, match="not found"):
        vidgen.processor("denoise", device="cpu", weights=tmp_path / "missing.safetensors")(torch.rand(2, 3, 16, 16))
    other = tmp_path / "other.safetensors"
    save_weights(other, {"conv.weight": torch.zeros(3, 3, 3, 3)}, {})
    with pytest.raises(vidgen.VidgenError, match="not a"):
        vidgen.processor("denoise", device="cpu", weights=other)(torch.rand(2, 3, 16, 16))


def tiny_dncnn(path: Path) -> torch.nn.Module:
    """A small DnCNN (KAIR layout, 8 channels) with random values, saved as a state dict at `path`."""
    from spandrel.architectures.DnCNN import DnCNNArch

    torch.manual_seed(0)
    dncnn = DnCNNArch().load({f"model.{i}.{kind}": torch.randn(8, 3 if i == 0 else 8, 3, 3) if kind == "weight"
                              else torch.zeros(8) for i in range(0, 15, 2) for kind in ("weight", "bias")}
                             | {"model.16.weight": torch.randn(3, 8, 3, 3) * 0.01, "model.16.bias": torch.zeros(3)})
    torch.save(dncnn.model.state_dict(), path)
    return dncnn


def test_spandrel_dncnn_checkpoint_runs_per_frame(tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    path = tmp_path / "dncnn.pth"
    dncnn = tiny_dncnn(path)
    frames = torch.rand(3, 3, 40, 56)
    out = vidgen.processor("denoise", device="cpu", precision="fp32", weights=path)(frames)
    with torch.no_grad():
        assert torch.allclose(out, dncnn.model(frames).clamp(0, 1), atol=1e-5)


def test_bench_has_peer_rows_on_the_same_clips(cli, tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    pytest.importorskip("skimage")
    path = tmp_path / "tiny-dncnn.pth"
    tiny_dncnn(path)
    code, out, err = cli("bench", "denoise", "--size", "32x24", "--frames", "2", "--sigmas", "25", "--compare-tile",
                         "0", "--peer", str(path))
    assert code == 0, err
    peer_rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| 25 | peer: tiny-dncnn.pth")]
    assert "(float32)" in " ".join(row[1] for row in peer_rows) and len(peer_rows) in (1, 2)
    assert all(float(row[2]) > 0 and row[5] != "-" for row in peer_rows)  # PSNR, and GFLOP/frame counted


def test_cli_run_keeps_every_frame(cli, tmp_path: Path, tiny_denoise_weights: Path) -> None:
    src = write_clip(tmp_path / "noisy.mp4", moving_pattern(9, 64, 48))
    dst = tmp_path / "clean.mp4"
    code, _, err = cli("run", src, "--plugin", "denoise", "-p", f"denoise.weights={tiny_denoise_weights}", "-o", dst)
    assert code == 0, err
    info = vidgen.probe(dst)
    assert (info.width, info.height) == (64, 48)
    assert sum(1 for _ in vidgen.iter_groups(dst, group_size=1)) == 9


def test_trainer_writes_loadable_weights_and_resumes(cli, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    for name, photo in evaluation_photos().items():
        cv2.imwrite(str(images / f"{name}.png"), cv2.resize(photo, (160, 128))[..., ::-1])
    out = tmp_path / "model.safetensors"
    args = ["train", "denoise", "--images", images, "--out", out, "--minutes", "0.01", "--width", "8",
            "--body-layers", "1", "--batch", "2", "--patch", "32", "--seed", "1", "--validate-every", "0"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "val PSNR" in stdout and out.is_file()
    code, stdout, err = cli(*args, "--minutes", "0.02", "--resume")
    assert code == 0, err
    assert "resumed at step" in stdout
    assert load_model(out).config() == {"frames": 5, "width": 8, "body_layers": 1, "quarter_blocks": 0, "half_blocks": 0}


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="shipped weights not built")
def test_shipped_weights_denoise_and_use_neighbours() -> None:
    clean, noisy = noisy_clip(7, 128, 96, sigma=25)
    per_frame = vidgen.processor("denoise", device="cpu", frames=1)(noisy)
    assert psnr(per_frame, clean) > psnr(noisy, clean) + 4.0  # measured: 20.88 -> 25.84 dB
    still = np.repeat(clean[:1], 7, 0)
    noisy_still = np.clip(still + np.random.default_rng(0).normal(0, 25, still.shape), 0, 255).round().astype(np.uint8)
    alone = vidgen.processor("denoise", device="cpu", frames=1)(noisy_still)
    together = vidgen.processor("denoise", device="cpu")(noisy_still)
    assert psnr(together, still) > psnr(alone, still) + 0.15  # measured: 25.74 -> 26.02 dB on a still scene
