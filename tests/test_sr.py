"""Tests of the sr plugin: mechanics on tiny random networks, quality with the shipped weights."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vidgen
from vidgen import VidgenError
from vidgen.plugins import processors
from vidgen.processor import ProcessorContext, VideoMeta
from vidgen.synth import camera_path, evaluation_photos
from vidgen.weights import load_weights, save_weights
from vidgen_sr import bench
from vidgen_sr.degrade import RealDegradation, degrade_real, gaussian_kernel, h264, jpeg
from vidgen_sr.evaluate import to_uint8, y_psnr_ssim
from vidgen_sr.model import BicubicPhases, PReLU, SRResNet, downscale, upscale_bicubic
from vidgen_sr.processor import SuperResolution, feather, tile_starts
from vidgen_sr.steady import Steadier
from vidgen_sr.train import augment_colours, grow_from, train_command


@pytest.fixture(scope="module")
def tiny_net() -> SRResNet:
    """A small randomly initialised ×2 SRResNet with a non-trivial residual."""
    torch.manual_seed(0)
    net = SRResNet(2, channels=16, blocks=2)
    for parameter in net.parameters():
        parameter.data.normal_(0, 0.05)
    return net.eval()


@pytest.fixture(scope="module")
def tiny_weights(tiny_net: SRResNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sr") / "tiny_x2.safetensors"
    save_weights(path, tiny_net.state_dict(), {**tiny_net.config(), "model": "srresnet"}, half=False)
    return path


def random_clip(frames: int, height: int, width: int) -> np.ndarray:
    return (np.random.default_rng(1).random((frames, height, width, 3)) * 255).astype(np.uint8)


def test_registered_with_documented_options() -> None:
    cls = processors()["sr"].cls
    assert {o.name for o in cls.options} == {"scale", "model", "weights", "tile", "tile_overlap", "batch",
                                                 "ensemble", "steady"}
    assert cls(scale=2).output_size(64, 48) == (128, 96)


def test_upscales_a_clip_in_batches(tiny_weights: Path) -> None:
    clip = random_clip(6, 48, 64)  # 6 frames in groups of 4 and 2
    out = vidgen.processor("sr", device="cpu", weights=str(tiny_weights), batch=4)(clip)
    assert out.shape == (6, 96, 128, 3) and out.dtype == np.uint8


def test_own_checkpoint_reproduces_the_network(tiny_net: SRResNet, tiny_weights: Path) -> None:
    frames = torch.rand(3, 3, 40, 56)
    out = vidgen.processor("sr", device="cpu", precision="fp32", weights=str(tiny_weights), steady=0)(frames)
    with torch.no_grad():
        expected = tiny_net(frames).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_tiled_output_matches_whole_frame(tiny_weights: Path) -> None:
    frames = torch.from_numpy(camera_path(evaluation_photos()["chelsea"], 128, 96, 2)).permute(0, 3, 1, 2) / 255
    whole = vidgen.processor("sr", device="cpu", precision="fp32", weights=str(tiny_weights))(frames)
    tiled = vidgen.processor("sr", device="cpu", precision="fp32", weights=str(tiny_weights), tile=40,
                             tile_overlap=12)(frames)
    assert tiled.shape == whole.shape == (2, 3, 192, 256)
    assert (tiled - whole).abs().max() < 2e-3


def test_self_ensemble_maps_every_output_back(tiny_net: SRResNet, tiny_weights: Path, tmp_path: Path) -> None:
    """With the residual zeroed the network is plain bicubic, which commutes with flips and quarter turns, so the
    ensemble must equal the single pass; a transform left undone would leave a mirrored or turned frame."""
    bicubic_only = SRResNet(2, channels=16, blocks=2)
    bicubic_only.load_state_dict(tiny_net.state_dict())
    torch.nn.init.zeros_(bicubic_only.upsample.weight)
    torch.nn.init.zeros_(bicubic_only.upsample.bias)
    path = tmp_path / "bicubic_x2.safetensors"
    save_weights(path, bicubic_only.state_dict(), {**bicubic_only.config(), "model": "srresnet"}, half=False)
    frames = torch.rand(2, 3, 20, 28)  # not square: odd quarter turns swap height and width

    def upscale(weights: Path, ensemble: int) -> torch.Tensor:
        return vidgen.processor("sr", device="cpu", precision="fp32", weights=str(weights), ensemble=ensemble)(frames)

    for ensemble in (2, 4, 8):
        torch.testing.assert_close(upscale(path, ensemble), upscale(path, 1), atol=1e-5, rtol=0)
    # the random network is not equivariant: its ensemble really averages different outputs
    assert (upscale(tiny_weights, 8) - upscale(tiny_weights, 1)).abs().max() > 1e-3


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_phases_are_torch_bicubic(scale: int) -> None:
    lr = torch.rand(2, 3, 9, 13)
    upscaled = torch.nn.functional.pixel_shuffle(BicubicPhases(scale)(lr), scale)
    torch.testing.assert_close(upscaled, upscale_bicubic(lr, scale), atol=1e-5, rtol=0)


def test_prelu_bf16_channels_last_path_matches_torch() -> None:
    act = PReLU(8)
    with torch.no_grad():
        act.weight.copy_(torch.linspace(-0.5, 1.5, 8))  # negative, fractional and above-one slopes
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.prelu(x, act.weight)
    fast = act(x.bfloat16()).float()
    torch.testing.assert_close(fast, expected, atol=0.05, rtol=0.02)
    torch.testing.assert_close(act(x), expected)


def test_tiles_cover_the_frame_and_blend_to_one() -> None:
    length, tile, overlap = 100, 40, 12
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    total = torch.zeros(length)
    for start in starts:
        weight = feather(tile, overlap if start > 0 else 0, overlap if start + tile < length else 0)
        if start > 0:
            assert weight[: overlap // 3].max() == 0  # the padded edge of a tile never shows
        total[start:start + tile] += weight
    assert total.min() >= 1 - 1e-6


def test_shipped_x4_beats_bicubic_on_an_unseen_photo() -> None:
    photo = evaluation_photos()["astronaut"][96:288, 160:352]  # 192×192, not in the training folders
    hr = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255
    lr = to_uint8(downscale(hr, 4)[0])
    bicubic = cv2.resize(lr, (192, 192), interpolation=cv2.INTER_CUBIC)
    ours = vidgen.processor("sr", device="cpu", scale=4)(lr[None])[0]
    gain = y_psnr_ssim(ours, photo, 4)[0] - y_psnr_ssim(bicubic, photo, 4)[0]
    assert gain > 1.0, f"srresnet x4 only {gain:+.2f} dB over bicubic"


def test_shipped_real_x4_beats_srresnet_and_bicubic_on_compressed_input() -> None:
    photo = evaluation_photos()["coffee"][96:288, 160:352]  # not in the training folders
    hr = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255
    lr = h264(to_uint8(downscale(hr, 4)[0])[None], 28)  # measured: bicubic 25.47, srresnet 25.34, real 26.09 dB
    bicubic = y_psnr_ssim(cv2.resize(lr[0], (192, 192), interpolation=cv2.INTER_CUBIC), photo, 4)[0]
    srresnet = y_psnr_ssim(vidgen.processor("sr", device="cpu", scale=4)(lr)[0], photo, 4)[0]
    real = y_psnr_ssim(vidgen.processor("sr", device="cpu", model="real")(lr)[0], photo, 4)[0]
    assert real > max(bicubic, srresnet) + 0.3, (bicubic, srresnet, real)


def test_shipped_srgan_x2_beats_bicubic() -> None:
    photo = evaluation_photos()["coffee"][100:196, 200:328]
    hr = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255
    lr = to_uint8(downscale(hr, 2)[0])
    bicubic = cv2.resize(lr, (128, 96), interpolation=cv2.INTER_CUBIC)
    ours = vidgen.processor("sr", device="cpu", scale=2, model="srgan")(lr[None])[0]
    assert y_psnr_ssim(ours, photo, 2)[0] > y_psnr_ssim(bicubic, photo, 2)[0] + 0.3


@pytest.mark.parametrize("options, message", [
    ({"scale": 3}, "scale"),
    ({"model": "edsr"}, "model"),
    ({"tile": 20, "tile_overlap": 16}, "tile"),
    ({"batch": 0}, "batch"),
    ({"ensemble": 3}, "ensemble"),
])
def test_bad_options_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(VidgenError, match=message):
        vidgen.processor("sr", device="cpu", **options)


def test_bad_weights_are_one_line_errors(tiny_weights: Path, tmp_path: Path) -> None:
    clip = random_clip(1, 16, 16)
    with pytest.raises(VidgenError, match="not found"):
        vidgen.processor("sr", device="cpu", weights=str(tmp_path / "missing.pth"))(clip)
    with pytest.raises(VidgenError, match="x2 model"):
        vidgen.processor("sr", device="cpu", scale=4, weights=str(tiny_weights))(clip)


def test_video_file_is_upscaled(tiny_weights: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in camera_path(evaluation_photos()["rocket"], 64, 48, 5):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    result = vidgen.run(src, dst, [("sr", {"scale": "2", "weights": str(tiny_weights), "tile": "24",
                                           "tile_overlap": "6"})], device="cpu")
    info = vidgen.probe(dst)
    assert result.frames == 5 and (info.width, info.height) == (128, 96)


def test_trainer_writes_weights_and_resumes(noise_photos: Path, tmp_path: Path) -> None:
    images = noise_photos
    out = tmp_path / "tiny.safetensors"
    common = ["--images", str(images), "--scale", "2", "--out", str(out), "--channels", "8", "--blocks", "1",
              "--batch", "2", "--patch", "16", "--holdout-every", "5", "--validate-every", "2", "--seed", "3"]
    first = CliRunner().invoke(train_command, common + ["--minutes", "0.01", "--min-scale", "0.5", "--invert", "0.5",
                                                        "--permute-colours"])
    assert first.exit_code == 0, first.output
    steps = load_weights(out)[1]["training"]["steps"]
    second = CliRunner().invoke(train_command, common + ["--minutes", "0.03", "--resume"])
    assert second.exit_code == 0, second.output
    assert "resumed" in second.output
    tensors, metadata = load_weights(out)
    assert metadata["training"]["steps"] > steps and metadata["seed"] == 3 and metadata["scale"] == 2
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # safetensors alone writes 0600
    assert vidgen.processor("sr", device="cpu", weights=str(out))(random_clip(1, 20, 20)).shape == (1, 40, 40, 3)


def test_colour_augmentation_keeps_patches_consistent_with_the_degradation() -> None:
    hr = torch.rand(6, 3, 16, 16)
    rng = np.random.default_rng(0)
    assert torch.equal(augment_colours(hr, rng, invert=1.0, permute=False), 1 - hr)
    assert torch.equal(augment_colours(hr, rng, invert=0.0, permute=False), hr)
    permuted = augment_colours(hr, rng, invert=0.0, permute=True)
    orders = set()
    for original, shuffled in zip(hr, permuted):
        order = [next(c for c in range(3) if torch.equal(shuffled[k], original[c])) for k in range(3)]
        assert sorted(order) == [0, 1, 2]
        orders.add(tuple(order))
    assert len(orders) > 1
    # the LR patch of an augmented HR patch is the augmented LR patch (before 8-bit rounding)
    lr = downscale(hr, 2, quantize=False)
    assert torch.allclose(downscale(1 - hr, 2, quantize=False), 1 - lr, atol=1e-6)


def compact_state(scale: int, nf: int = 16, convs: int = 2) -> dict[str, torch.Tensor]:
    """A tiny Real-ESRGAN Compact (SRVGGNetCompact) state dict with random values."""
    state = {"body.0.weight": torch.randn(nf, 3, 3, 3) * 0.05, "body.0.bias": torch.zeros(nf),
             "body.1.weight": torch.full((nf,), 0.25)}
    for i in range(convs):
        state[f"body.{2 * i + 2}.weight"] = torch.randn(nf, nf, 3, 3) * 0.05
        state[f"body.{2 * i + 2}.bias"] = torch.zeros(nf)
        state[f"body.{2 * i + 3}.weight"] = torch.full((nf,), 0.25)
    last = 2 * convs + 2
    state[f"body.{last}.weight"] = torch.randn(3 * scale * scale, nf, 3, 3) * 0.05
    state[f"body.{last}.bias"] = torch.zeros(3 * scale * scale)
    return state


class TestFieldCheckpoints:
    """Checkpoints laid out like the public releases, built here with random values, loaded via spandrel."""

    @staticmethod
    def run_checkpoint(state: dict, path: Path, scale: int) -> None:
        torch.save(state, path)
        clip = torch.rand(2, 3, 24, 32)
        out = vidgen.processor("sr", device="cpu", weights=str(path))(clip)
        assert out.shape == (2, 3, 24 * scale, 32 * scale)
        assert torch.isfinite(out).all()
        tiled = vidgen.processor("sr", device="cpu", weights=str(path), tile=20, tile_overlap=4)(clip)
        assert tiled.shape == out.shape

    def test_real_esrgan_rrdbnet_x4(self, tmp_path: Path) -> None:
        pytest.importorskip("spandrel")
        nf, gc = 16, 32  # spandrel reads ESRGAN's growth channels as the standard 32
        conv = lambda o, i: {"weight": torch.randn(o, i, 3, 3) * 0.02, "bias": torch.zeros(o)}  # noqa: E731
        layers = {"conv_first": conv(nf, 3), "conv_body": conv(nf, nf), "conv_up1": conv(nf, nf),
                  "conv_up2": conv(nf, nf), "conv_hr": conv(nf, nf), "conv_last": conv(3, nf)}
        for rdb in (1, 2, 3):
            for k in range(1, 6):
                layers[f"body.0.rdb{rdb}.conv{k}"] = conv(nf if k == 5 else gc, nf + (k - 1) * gc)
        state = {f"{name}.{kind}": t for name, params in layers.items() for kind, t in params.items()}
        self.run_checkpoint({"params_ema": state}, tmp_path / "RealESRGAN_x4plus_tiny.pth", 4)

    def test_real_esrgan_compact_x2(self, tmp_path: Path) -> None:
        pytest.importorskip("spandrel")
        self.run_checkpoint({"params": compact_state(2)}, tmp_path / "realesr-compact-x2.pth", 2)

    def test_swinir_x2(self, tmp_path: Path) -> None:
        pytest.importorskip("spandrel")
        from spandrel.architectures.SwinIR import SwinIR

        net = SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2], mlp_ratio=2,
                     upsampler="pixelshuffledirect", resi_connection="1conv")
        self.run_checkpoint({"params": net.state_dict()}, tmp_path / "swinir_tiny_x2.pth", 2)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of three 48×48 noise images: enough for the trainer's mechanics (one is held out)."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), random_clip(1, 48, 48)[0])
    return images


def test_srgan_fine_tune_with_user_vgg_weights(tiny_weights: Path, photos: Path, tmp_path: Path) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    vgg = tmp_path / "vgg19.safetensors"  # random values in torchvision's VGG-19 layout
    save_weights(vgg, {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}, {})
    out = tmp_path / "srgan.safetensors"
    result = CliRunner().invoke(train_command, [
        "--images", str(photos), "--scale", "2", "--model", "srgan", "--init", str(tiny_weights), "--vgg", str(vgg),
        "--out", str(out), "--channels", "16", "--blocks", "2", "--batch", "2", "--patch", "16",
        "--holdout-every", "3", "--minutes", "0.01"])
    assert result.exit_code == 0, result.output
    assert load_weights(out)[1]["training"]["content_loss"] == "l1+vgg54+feature-matching"


def test_growing_a_generator_keeps_its_output_exactly(tiny_net: SRResNet) -> None:
    grown = SRResNet(2, channels=24, blocks=4)
    image = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        grow_from(grown, tiny_net.state_dict(), init_blocks=2)
        assert torch.allclose(grown(image), tiny_net(image), atol=1e-5)
        assert grown.head(image)[:, 16:].abs().min() > 0  # the added channels carry signal for training
    other_scale = SRResNet(4, channels=16, blocks=2)  # e.g. a x4 model started from a x2 one
    upsampler = other_scale.upsample.weight.clone()
    grow_from(other_scale, tiny_net.state_dict(), init_blocks=2)
    assert torch.equal(other_scale.upsample.weight, upsampler)
    assert torch.equal(other_scale.head[0].weight, tiny_net.head[0].weight)


@pytest.mark.parametrize("channels", [16, 24])
def test_training_can_grow_a_trained_generator_without_changing_its_output(
        channels: int, tiny_net: SRResNet, tiny_weights: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "grown.safetensors"
    result = CliRunner().invoke(train_command, [
        "--images", str(photos), "--scale", "2", "--init", str(tiny_weights), "--out", str(out),
        "--channels", str(channels), "--blocks", "4", "--batch", "2", "--patch", "16", "--holdout-every", "3",
        "--lr", "1e-12", "--minutes", "0.001", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "2 identity blocks" in result.output and ("8 channels" in result.output) == (channels == 24)
    tensors, meta = load_weights(out)
    grown = SRResNet(2, channels, 4)
    grown.load_state_dict(tensors)
    image = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert meta["blocks"] == 4 and torch.allclose(grown.float()(image), tiny_net(image), atol=2e-2)
    too_few = CliRunner().invoke(train_command, [
        "--images", str(photos), "--scale", "2", "--init", str(out), "--out", str(tmp_path / "x.safetensors"),
        "--channels", "16", "--blocks", "2", "--patch", "16", "--holdout-every", "3"])
    assert too_few.exit_code != 0 and "at least as many --channels and --blocks" in str(too_few.exception)


def test_real_degradation_is_seeded_and_sized() -> None:
    hr = torch.rand(3, 3, 64, 48)
    first = degrade_real(hr, 4, np.random.default_rng(5))
    assert first.shape == (3, 3, 16, 12)
    assert torch.equal(first, degrade_real(hr, 4, np.random.default_rng(5)))
    assert not torch.equal(first, degrade_real(hr, 4, np.random.default_rng(6)))
    assert torch.equal(first, first.mul(255).round().div(255))  # on 8-bit levels, as decoded video
    kernel = gaussian_kernel(np.random.default_rng(0), RealDegradation(blur_sigma=(3.0, 3.0)))
    assert kernel.shape == (19, 19) and abs(kernel.sum() - 1) < 1e-5


def test_jpeg_and_h264_steps_change_the_image() -> None:
    image = cv2.resize((np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8), (32, 32))
    for compressed in (jpeg(image, 30), h264(image[None], 35)[0]):
        assert compressed.shape == image.shape and compressed.dtype == np.uint8
        assert 1 < np.abs(compressed.astype(int) - image).mean() < 40
    clip = np.stack([image, np.roll(image, 2, axis=1)])
    assert h264(clip, 35).shape == clip.shape
    hr = torch.from_numpy(cv2.resize(image, (128, 128))).permute(2, 0, 1)[None].float() / 255
    only = {"blur": 0.0, "noise": 0.0, "jpeg": 0.0, "h264": 0.0}
    clean = degrade_real(hr, 4, np.random.default_rng(0), RealDegradation(**only))
    for step in ("jpeg", "h264"):
        settings = RealDegradation(**{**only, step: 1.0})
        assert not torch.equal(degrade_real(hr, 4, np.random.default_rng(0), settings), clean), step


def test_real_degradation_trains(noise_photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "real.safetensors"
    result = CliRunner().invoke(train_command, [
        "--images", str(noise_photos), "--scale", "4", "--degrade", "real", "--out", str(out), "--channels", "8",
        "--blocks", "1", "--batch", "2", "--patch", "16", "--holdout-every", "5", "--minutes", "0.01"])
    assert result.exit_code == 0, result.output
    metadata = load_weights(out)[1]
    assert metadata["model"] == "real" and metadata["training"]["degradation"] == "real"
    odd = CliRunner().invoke(train_command, ["--images", str(noise_photos), "--degrade", "real", "--patch", "15",
                                             "--out", str(tmp_path / "odd.safetensors")])
    assert odd.exit_code != 0 and "even --patch" in str(odd.exception)


def set_up(processor: SuperResolution, width: int, height: int) -> None:
    processor.setup(ProcessorContext(torch.device("cpu"), torch.float32, VideoMeta(width, height, 25.0)))


def test_bad_input_is_one_line_before_any_frame(tiny_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(VidgenError, match="sr.model=real has no x2 model"):
        SuperResolution(model="real", scale=2)
    other = tmp_path / "denoiser.safetensors"
    save_weights(other, {"head.weight": torch.zeros(8, 3, 3, 3)}, {"frames": 1, "width": 8})
    with pytest.raises(VidgenError, match="another model"):
        set_up(SuperResolution(weights=str(other)), 64, 48)
    with pytest.raises(VidgenError, match="x2 model"):
        set_up(SuperResolution(scale=4, weights=str(tiny_weights)), 64, 48)
    with pytest.raises(VidgenError, match="too small"):
        set_up(SuperResolution(weights=str(tiny_weights)), 64, 6)
    with pytest.raises(VidgenError, match="15360x8640, larger than H.264"):
        set_up(SuperResolution(scale=4), 3840, 2160)
    set_up(SuperResolution(scale=4), 1920, 1080)  # 7680x4320 fits
    with pytest.raises(VidgenError, match="too small"):  # through the API too: the first call sets up
        vidgen.processor("sr", device="cpu", weights=str(tiny_weights))(random_clip(1, 4, 4))


def test_bench_has_peer_rows_and_scores_real_clips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    torch.manual_seed(0)
    peer = tmp_path / "tiny-compact-x4.pth"
    torch.save({"params": compact_state(4)}, peer)
    photo = evaluation_photos()["astronaut"]
    monkeypatch.setattr(bench, "evaluation_photos", lambda: {"a": photo[:64, :64], "b": photo[200:264, 200:264]})
    monkeypatch.setattr(bench, "SPEED_OUTPUT", (64, 32))
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, frame in enumerate(camera_path(photo, 64, 48, 4)):
        cv2.imwrite(str(frames / f"{index:03d}.png"), frame[..., ::-1])
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(bench.bench_command, ["--device", "cpu", "--frames", "2", "--batch", "1", "--peer",
                                                      str(peer), "--clip", str(frames), "--clip-frames", "4",
                                                      "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    label = "peer: RealESRGAN Compact (tiny-compact-x4.pth)"
    quality = next(line for line in lines if line.startswith(f"| {label} | - | - |"))
    assert len(quality.split(" | ")) == 5
    speed = [line for line in lines if line.startswith(f"| {label} x4 | 16x8 |")]
    assert {row.split(" | ")[2] for row in speed} >= {"float32"} and len(speed) in (1, 2)
    clip_rows = [line for line in lines if line.startswith("| frames |")]
    methods = {row.split(" | ")[1] for row in clip_rows}
    assert methods >= {"bicubic (cv2)", "srresnet (per frame)", "srresnet, steady (default)", label}
    assert sheet.is_file()


def panning_clip(frames: int, step: int, size: int = 48) -> torch.Tensor:
    """`(T, 3, size, size)` windows of a smooth random texture moving `step` pixels right per frame."""
    texture = cv2.GaussianBlur(np.random.default_rng(0).random((size, size + frames * step, 3)).astype(np.float32),
                               (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return torch.stack([torch.from_numpy(texture[:, t * step:t * step + size]).permute(2, 0, 1)
                        for t in range(frames)])


def test_steady_removes_flicker_and_follows_motion() -> None:
    """Upscales of a panning clip with fresh 'flicker' per frame: the steadied frames are closer to the clean
    upscales (the flicker is averaged along the motion, the content is not smeared)."""
    lr = panning_clip(8, step=2)
    clean = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    flicker = 0.03 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    steadied = Steadier(0.7, 2)(lr, clean + flicker)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -24))  # away from the edge where content enters
    error_before = (clean + flicker - clean)[inner][4:].abs().mean()
    error_after = (steadied - clean)[inner][4:].abs().mean()
    assert error_after < 0.75 * error_before


def test_steady_keeps_a_cut_and_restarts_after_reset() -> None:
    dark, bright = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    steadier = Steadier(0.7, 2)
    steadier(dark, torch.zeros(1, 3, 64, 64))
    after_cut = torch.full((1, 3, 64, 64), 0.9)
    assert torch.equal(steadier(bright, after_cut.clone()), after_cut)  # nothing of the dark frame leaks in
    steadier.reset()
    first = torch.rand(1, 3, 64, 64)
    assert torch.equal(steadier(dark, first.clone()), first)  # a new stream starts from its own frame


def test_steady_is_checked() -> None:
    with pytest.raises(VidgenError, match="sr.steady must be in"):
        SuperResolution(steady=1.0)
