"""Tests of the inpaint plugin: masks, tiling, propagation, overlay detection, schedules, shipped prior."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import vidgen
from vidgen.engine import run
from vidgen.metrics import psnr
from vidgen.plugins import create_processor
from vidgen.synth import camera_path, evaluation_photos
from vidgen_inpaint.burn import panning_texture
from vidgen_inpaint.masks import MaskSource, detect_static_overlay, parse_boxes
from vidgen_inpaint.model import DEFAULT_WEIGHTS, Discriminator, Generator, init_weights, load_gan, save_gan
from vidgen_inpaint.processor import SPECK_PIXELS, plan_tiles, without_specks
from vidgen_inpaint.propagate import StreamPropagator, View, complete_flow, forward_backward_check
from vidgen_inpaint.search import SearchSettings, match_colours, poisson_blend


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    """A randomly initialised, narrow G/D pair: enough for the mechanics."""
    torch.manual_seed(0)
    netG, netD = Generator(width=8), Discriminator(width=8)
    netG.apply(init_weights)
    netD.apply(init_weights)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_gan(path, netG, netD, {"note": "test"})
    return str(path)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """`(8, 64, 96, 3)` uint8 camera-motion clip."""
    return camera_path(evaluation_photos()["astronaut"], 96, 64, 8, seed=1)


def test_parse_boxes_and_errors():
    assert parse_boxes("1,2,3,4;5,6,7,8") == [(1, 2, 3, 4), (5, 6, 7, 8)]
    with pytest.raises(vidgen.VidgenError, match="x,y,w,h"):
        parse_boxes("1,2,3")
    with pytest.raises(vidgen.VidgenError, match="outside"):
        MaskSource(None, [(500, 500, 4, 4)], 96, 64)
    with pytest.raises(vidgen.VidgenError, match="smooth"):
        vidgen.processor("inpaint", device="cpu", box="1,1,4,4", smooth=1.0)


def test_mask_of_wrong_size_is_rejected(tmp_path, clip, tiny_weights):
    cv2.imwrite(str(tmp_path / "mask.png"), np.full((50, 50), 255, np.uint8))
    with pytest.raises(vidgen.VidgenError, match="50x50 but the video is 96x64"):
        vidgen.processor("inpaint", device="cpu", mask=str(tmp_path / "mask.png"), weights=tiny_weights)(clip)


def test_a_mask_over_the_whole_frame_is_rejected_and_an_empty_one_passes_through(clip, tiny_weights):
    whole = np.zeros(clip.shape[:3], bool)
    whole[2] = True
    with pytest.raises(vidgen.VidgenError, match="mask of frame 2 covers the whole 96x64 frame"):
        vidgen.processor("inpaint", device="cpu", mask=whole, weights=tiny_weights)(clip)
    almost = whole[2].copy()
    almost[30, 40] = False  # the one known pixel is covered by the 2-px dilation
    with pytest.raises(vidgen.VidgenError, match="the mask covers the whole"):
        vidgen.processor("inpaint", device="cpu", mask=almost, weights=tiny_weights)(clip)
    empty = vidgen.processor("inpaint", device="cpu", mask=np.zeros(clip.shape[1:3], bool), weights=tiny_weights)
    assert np.array_equal(empty(clip), clip)


def test_mask_folder_and_dilation(tmp_path):
    for i in range(3):
        mask = np.zeros((64, 96), np.uint8)
        mask[10, 10 + i] = 255
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), mask)
    source = MaskSource(str(tmp_path), [], 96, 64, dilate_pixels=2)
    assert source(2)[10, 12] and source(2)[12, 12] and not source(2)[10, 8]
    assert 9 < source(0).sum() < 25  # a radius-2 disc around one pixel
    with pytest.raises(vidgen.VidgenError, match="3 mask images"):
        source(3)


def test_tiles_cover_every_hole_pixel():
    unknown = np.zeros((120, 200), bool)
    unknown[100:110, 5:190] = True  # a long caption: a row of tiles
    unknown[10:50, 10:50] = True  # a big square: one large tile
    unknown[20, 150] = True
    tiles = plan_tiles(unknown, 0)
    covered = np.zeros_like(unknown)
    for tile in tiles:
        x0, y0, x1, y1 = tile.owned
        covered[y0:y1, x0:x1] = True
        assert tile.size >= 64 and tile.x0 <= x0 and x1 <= tile.x0 + tile.size
    assert covered[unknown].all()
    assert sum(tile.size == 64 for tile in tiles) >= 4  # the caption is split, not one huge tile


def test_specks_are_left_to_telea_and_holes_get_the_gan(clip, tiny_weights):
    unknown = np.zeros((1, 64, 96), bool)
    unknown[0, 5:15, 5:15] = True  # 100 px: a speck
    unknown[0, 30:50, 40:60] = True  # 400 px: searched
    unknown[0, 5:15, 70:79], unknown[0, 5:15, 81:90] = True, True  # 90 + 90 px, 2 px apart: one piece
    kept = without_specks(unknown, SPECK_PIXELS)
    assert not kept[0, 5:15, 5:15].any() and kept[0, 30:50, 40:60].all() and not kept[0, 5:15, 70:90].any()
    assert without_specks(unknown, 150)[0, 5:15, 70:90].sum() == 180  # two pieces of 90 group as the tiles do

    def fill(box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        x, y, w, h = box
        out = vidgen.processor("inpaint", device="cpu", box=box, dilate=0, propagate=False,
                               weights=tiny_weights)(clip[:1])[0]
        hole = np.zeros(clip.shape[1:3], np.uint8)
        hole[y:y + h, x:x + w] = 1
        return out[hole > 0], cv2.inpaint(clip[0], hole, 3, cv2.INPAINT_TELEA)[hole > 0]

    speck, telea = fill((40, 30, 8, 8))
    assert np.array_equal(speck, telea)
    hole, telea = fill((40, 24, 20, 20))
    assert np.abs(hole.astype(int) - telea).mean() > 2  # the GAN's half of the mix


def propagate_clip(corrupted: np.ndarray, masks: np.ndarray, propagator: StreamPropagator | None = None
                   ) -> tuple[np.ndarray, np.ndarray, StreamPropagator]:
    """Run the streaming propagator over a whole clip: filled frames `(T, H, W, 3)`, unknown `(T, H, W)`."""
    propagator = propagator or StreamPropagator()
    filled, unknown = [], []
    for t in range(len(corrupted)):
        ahead = [View(s, corrupted[s], masks[s]) for s in range(t + 1, min(len(corrupted), t + 4))]
        result = propagator.fill(View(t, corrupted[t], masks[t]), ahead)
        propagator.commit(result.frame)
        propagator.release()
        filled.append(result.frame)
        unknown.append(result.unknown)
    return np.stack(filled), np.stack(unknown), propagator


def test_propagation_recovers_a_moving_box_on_a_static_scene():
    still = evaluation_photos()["coffee"][::4, ::4][:64, :96].copy()
    frames = np.repeat(still[None], 6, 0)
    masks = np.zeros((6, 64, 96), bool)
    for t in range(6):
        masks[t, 20:36, 10 + 12 * t:26 + 12 * t] = True
    corrupted = frames.copy()
    corrupted[masks] = 0
    filled, remaining, _ = propagate_clip(corrupted, masks)
    assert not remaining.any()
    assert psnr(filled, frames, masks[..., None]) > 35


def test_forward_propagation_carries_content_seen_30_frames_earlier():
    """A pan under a static box: the last frames' hidden content was visible only 20-40 frames earlier (far
    beyond a group and the lookahead); it travels there through the outputs, sharp (one resampling per ring)."""
    photo = evaluation_photos()["coffee"][::2, ::2]
    frames = np.stack([photo[20:84, 2 * t:2 * t + 96] for t in range(48)])  # the camera pans 2 px per frame
    masks = np.zeros((48, 64, 96), bool)
    masks[:, 16:48, 20:60] = True
    corrupted = frames.copy()
    corrupted[masks] = (30, 140, 220)
    filled, unknown, propagator = propagate_clip(corrupted, masks)
    assert unknown[:10].sum() > 0 and not unknown[25:].any()
    assert psnr(filled[30:], frames[30:], masks[30:, ..., None]) > 30
    # bounded state after 48 frames: the ring, at most 4 keyframes and the lookahead's greys
    assert len(propagator.keyframes) == 4 and len(propagator.outputs) <= 10 and propagator.stored_frames() <= 18
    assert len(propagator.flows) <= 2 * 3


def test_consistency_check_rejects_occlusions_and_leaving_the_frame():
    forward = np.zeros((20, 30, 2), np.float32)
    backward = np.zeros((20, 30, 2), np.float32)
    forward[..., 0] = 5  # everything moves 5 px right ...
    backward[..., 0] = -5
    backward[:, 15:20, 0] = 3  # ... except that the region it lands on moved elsewhere (an occlusion)
    where, trusted = forward_backward_check(forward, backward)
    assert trusted[:, :9].all() and not trusted[:, 10:15].any()  # lands on the inconsistent columns 15-19
    assert not trusted[:, 25:].any()  # leaves the frame
    assert np.allclose(where[3, 4], (9, 3))


def test_flow_inside_the_hole_follows_the_camera():
    height, width = 60, 80
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    zoom = np.stack([0.05 * (xs - 40) + 1, 0.05 * (ys - 30)], -1)  # a zoom about (40, 30) plus a 1 px pan
    flow = zoom.copy()
    hole = np.zeros((height, width), bool)
    hole[20:40, 30:50] = True
    flow[hole] = (-7, 4)  # the overlay's own motion
    completed = complete_flow(flow, hole)
    assert np.abs(completed[hole] - zoom[hole]).max() < 0.05
    noise = np.random.default_rng(0).normal(0, 3, flow.shape).astype(np.float32)  # no model fits: a smooth fill
    smooth = complete_flow(zoom + noise, hole)
    assert np.abs(smooth[25:35, 35:45]).max() < 3


def test_image_search_anneals_its_rate_over_a_fixed_budget() -> None:
    first = SearchSettings(max_steps=1000).image_search()
    rates = [first.rate(step) for step in range(1, first.max_steps + 1)]
    assert first.max_steps == 150 and not first.early_stop
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert SearchSettings(max_steps=40).image_search().max_steps == 40  # never more than `iterations`
    assert {SearchSettings().rate(step) for step in (1, 500, 1000)} == {0.03}  # per-frame: constant rate


def test_smoothing_steadies_the_fill_of_a_static_hole(tiny_weights):
    still = np.repeat(evaluation_photos()["rocket"][::6, ::6][:64, :96][None], 8, 0)
    # sensor noise makes every frame's search (and so its fill) differ a little, as in real footage
    frames = np.clip(still + np.random.default_rng(0).normal(0, 4, still.shape), 0, 255).astype(np.uint8)
    common = dict(device="cpu", box="40,20,20,16", dilate=0, weights=tiny_weights, group=4)
    flicker = {}
    for smooth in (0.0, 0.9):
        out = vidgen.processor("inpaint", smooth=smooth, **common)(frames).astype(float)
        flicker[smooth] = np.abs(np.diff(out[:, 20:36, 40:60], axis=0)).mean()
    assert flicker[0.9] < 0.5 * flicker[0.0], flicker


def test_overlay_detection_finds_text_and_refuses_a_still_scene():
    text = panning_texture(24, 96, 64)
    for frame in text:
        cv2.putText(frame, "LOGO", (50, 56), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    mask, boxes = detect_static_overlay(text)
    assert len(boxes) >= 1
    x, y, w, h = boxes[0]
    assert 40 <= x and x + w <= 96 and 40 <= y and mask[45:56, 50:85].mean() > 0.3
    assert mask[:30].sum() == 0  # nothing flagged in the moving scene above the text
    with pytest.raises(vidgen.VidgenError, match="barely moves"):
        detect_static_overlay(np.repeat(text[:1], 12, 0))


def test_known_pixels_are_kept_and_schedules_differ(clip, tiny_weights):
    corrupted = clip.copy()
    corrupted[:, 20:36, 40:60] = (0, 255, 0)
    common = dict(device="cpu", box="40,20,20,16", dilate=0, weights=tiny_weights, group=4)
    video = vidgen.processor("inpaint", propagate=False, **common)
    out = video(corrupted)
    assert out.shape == clip.shape
    outside = np.ones((64, 96), bool)
    outside[20:36, 40:60] = False
    assert np.array_equal(out[:, outside], corrupted[:, outside])
    assert (out[:, 20:36, 40:60, 1] < 250).mean() > 0.9  # the green box is gone
    stats = video.processors[0].stats
    # one pool-initialised search for the new hole, then one joint search per group of 4 frames
    assert len(stats.steps_per_search) == 3 and stats.tiles == 8
    assert stats.steps_per_search[0] == 150  # the first search has a fixed, annealed budget
    assert max(stats.steps_per_search[1:]) > 2
    capped = vidgen.processor("inpaint", propagate=False, refine=2, **common)
    capped(corrupted)
    assert capped.processors[0].stats.steps_per_search[1:] == [2, 2]  # each group's refinement stops at `refine`
    per_frame = vidgen.processor("inpaint", propagate=False, schedule="per-frame", iterations=7, **common)
    per_frame(corrupted)
    assert per_frame.processors[0].stats.steps_per_search == [7] * 8


def test_run_end_to_end_with_detection_and_fit(tmp_path, tiny_weights):
    import av

    source = tmp_path / "in.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv444p"
        stream.options = {"crf": "0"}
        for frame in panning_texture(24, 96, 64):
            cv2.rectangle(frame, (70, 4), (90, 14), (255, 255, 255), -1)
            cv2.rectangle(frame, (72, 6), (88, 12), (0, 0, 0), 1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    messages = []
    processor = create_processor("inpaint", weights=tiny_weights, fit=3)
    run(source, tmp_path / "out.mp4", [processor], device="cpu", log=messages.append)
    assert any("detected 1 static overlay" in m for m in messages)
    assert any("fitted the GAN" in m for m in messages)
    assert vidgen.probe(tmp_path / "out.mp4").frame_count == 24


def test_poisson_blend_matches_the_border():
    generated = torch.full((1, 3, 64, 64), 0.2)
    target = torch.full((1, 3, 64, 64), 0.7)
    known = torch.ones(1, 1, 64, 64)
    known[..., 24:40, 24:40] = 0
    blended = poisson_blend(generated, target, known)
    assert torch.allclose(blended, target, atol=1e-3)  # a constant offset is absorbed entirely
    # a flat fill in a large hole under a colour ramp: the harmonic correction is the ramp itself
    ramp = torch.linspace(0.2, 0.8, 64).expand(1, 3, 64, 64)
    known[..., 12:52, 12:52] = 0
    assert (poisson_blend(generated, ramp, known) - ramp).abs().max() < 5e-3


def test_colour_matching_takes_the_rings_statistics():
    generated = torch.rand(2, 3, 64, 64) * 0.2 + torch.tensor([0.1, 0.7, 0.2])[:, None, None]  # green, low contrast
    target = torch.rand(2, 3, 64, 64) * 0.4 + torch.tensor([0.5, 0.2, 0.1])[:, None, None]  # brown, more contrast
    known = torch.ones(2, 1, 64, 64)
    known[..., 20:44, 20:44] = 0
    matched = match_colours(generated, target, known)
    hole = known[0, 0] == 0
    assert (matched[:, :, hole].mean(-1) - target[:, :, ~hole].mean(-1)).abs().max() < 0.03
    assert (matched[:, :, hole].std(-1) / target[:, :, ~hole].std(-1) - 1).abs().max() < 0.15


def test_fill_of_a_never_seen_hole_takes_the_contexts_colour(tiny_weights):
    """A static box on a static shot (nothing is ever revealed): the fill, whatever G draws, has the colour of
    the surrounding scene, not G's."""
    rng = np.random.default_rng(0)
    scene = np.clip(rng.normal((150, 90, 60), 12, (3, 64, 96, 3)), 0, 255).astype(np.uint8)  # brown, noisy
    corrupted = scene.copy()
    corrupted[:, 20:40, 30:60] = (30, 200, 40)  # a green box
    for unseen in ("gan", "mix"):
        out = vidgen.processor("inpaint", device="cpu", box="30,20,30,20", dilate=0, weights=tiny_weights,
                               unseen=unseen, iterations=20, pool=4)(corrupted)
        mean = out[:, 20:40, 30:60].reshape(-1, 3).mean(0)
        assert np.abs(mean - (150, 90, 60)).max() < 15, (unseen, mean)


def test_shipped_weights_beat_telea_on_a_moving_box():
    """Default mode with the shipped prior: propagation + GAN fill beat OpenCV Telea by a clear margin."""
    netG, _, meta = load_gan(DEFAULT_WEIGHTS)
    assert "command" in meta and netG.z_dim == 100
    frames = camera_path(evaluation_photos()["rocket"], 96, 72, 8, seed=3)
    masks = np.zeros((8, 72, 96), bool)
    for t in range(8):
        masks[t, 26:42, 12 + 8 * t:32 + 8 * t] = True
    corrupted = frames.copy()
    corrupted[masks] = (30, 140, 220)
    out = vidgen.processor("inpaint", device="cpu", mask=masks, dilate=0)(corrupted)
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), 3, cv2.INPAINT_TELEA) for f, m in zip(corrupted, masks)])
    ours, theirs = psnr(out, frames, masks[..., None]), psnr(telea, frames, masks[..., None])
    assert ours > theirs + 3, (ours, theirs)
