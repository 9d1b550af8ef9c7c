"""Tests of `vidgen mask`: overlays found whole, boxes followed, outputs the inpaint plugin reads, bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import vidgen
from clips import write_clip
from vidgen_inpaint.burn import burn_logo, burn_score_panel, burn_ticker, burn_timestamp, panning_texture
from vidgen_inpaint.masks import MaskSource
from vidgen_inpaint.overlays import _mergeable, find_overlays, overlay_mask
from vidgen_inpaint.tracking import FlowBoxTracker, box_iou, track

WIDTH, HEIGHT = 320, 180


def coverage_and_area(frames: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    truth = np.zeros(frames.shape[1:3], bool)
    for x, y, w, h in boxes:
        truth[y:y + h, x:x + w] = True
    found = overlay_mask(find_overlays(frames), frames.shape[2], frames.shape[1])
    return (found & truth).sum() / truth.sum(), found.sum() / truth.sum()


@pytest.mark.parametrize("burn", [
    lambda f: [burn_score_panel(f, 12, 12)],
    lambda f: [burn_logo(f, 260, 10)],
    lambda f: [burn_ticker(f)],
    lambda f: [burn_timestamp(f, 8, 140)],
    lambda f: [burn_score_panel(f, 12, 12), burn_logo(f, 260, 10), burn_ticker(f)],
], ids=["panel", "semi-transparent logo", "ticker", "timestamp", "all three"])
def test_overlays_are_found_whole(burn):
    frames = panning_texture(32, WIDTH, HEIGHT, step=4)
    boxes = burn(frames)
    coverage, area = coverage_and_area(frames, boxes)
    assert coverage >= 0.9 and area <= 2.0, (coverage, area)


def test_overlay_presence_is_reported_and_a_still_clip_is_refused():
    frames = panning_texture(32, WIDTH, HEIGHT, step=4)
    burn_score_panel(frames, 12, 12)
    (overlay,) = find_overlays(frames)
    assert overlay.presence > 0.9
    with pytest.raises(vidgen.VidgenError, match="barely moves"):
        find_overlays(np.repeat(frames[:1], 16, 0))


def moving_square(frames: int = 30, speed: int = 5) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A reddish square with blotchy shading crossing a panning texture; its true boxes."""
    background = panning_texture(frames, WIDTH, HEIGHT, step=1, seed=1)
    shading = cv2.resize(np.random.default_rng(2).uniform(0.5, 1.0, (5, 5)), (40, 40), interpolation=cv2.INTER_CUBIC)
    patch = np.clip(shading[..., None] * (230, 90, 60), 0, 255).astype(np.uint8)
    boxes = []
    for t in range(frames):
        x, y = 30 + speed * t, 60 + round(30 * np.sin(t / 8))
        background[t, y:y + 40, x:x + 40] = patch
        boxes.append((x, y, 40, 40))
    return background, boxes


@pytest.mark.parametrize("method", ["flow", "motion", "mil"])
def test_trackers_follow_a_moving_square(method):
    frames, truth = moving_square()
    steps = list(track(frames, truth[0], method))
    ious = [box_iou(s.box, t) for s, t in zip(steps, truth)]
    assert np.mean(ious) >= 0.6 and ious[-1] >= 0.4, ious


def test_flow_tracker_beats_a_static_box_and_reports_the_box_at_the_clip_size():
    frames, truth = moving_square()
    static = [box_iou(truth[0], t) for t in truth]
    followed = [box_iou(s.box, t) for s, t in zip(track(frames, truth[0], lambda f, b: FlowBoxTracker(f, b, work_side=90)), truth)]
    assert np.mean(static) < 0.3 and np.mean(followed) >= 0.6, (np.mean(static), followed)


def test_flow_tracker_box_grows_with_an_approaching_object():
    """A shaded square growing from 30 to 66 px while it drifts over a panning texture."""
    frames = panning_texture(25, WIDTH, HEIGHT, step=1, seed=1)
    shading = np.random.default_rng(2).uniform(0.5, 1.0, (5, 5))
    truth = []
    for t in range(len(frames)):
        side, x, y = 30 + round(1.5 * t), 100 + 2 * t, 90 - round(0.75 * t)
        patch = cv2.resize(shading, (side, side), interpolation=cv2.INTER_CUBIC)
        frames[t, y - side // 2:y - side // 2 + side, x:x + side] = np.clip(patch[..., None] * (230, 90, 60), 0, 255)
        truth.append((x, y - side // 2, side, side))
    steps = list(track(frames, truth[0]))
    assert all(s.held for s in steps)
    assert box_iou(steps[-1].box, truth[-1]) >= 0.85 and steps[-1].box[2] * steps[-1].box[3] > 3 * 30 * 30, steps[-1]


def test_flow_tracker_says_when_the_object_is_gone(cli, tmp_path):
    frames, truth = moving_square()
    background = panning_texture(len(frames), WIDTH, HEIGHT, step=1, seed=1)
    frames[15:] = background[15:]  # the square vanishes (hidden) from frame 15 on
    held = [s.held for s in track(frames, truth[0])]
    assert all(held[:15]) and not any(held[17:]), held
    source = write_clip(tmp_path / "gone.mp4", frames, options={"crf": "12"})
    code, _, err = cli("mask", source, "-o", tmp_path / "masks", "--box", ",".join(map(str, truth[0])), "--track")
    assert code == 0 and f"lost the object at frame {held.index(False)}" in err and "until frame 29" in err, err


@pytest.fixture
def square_clip(tmp_path: Path) -> tuple[Path, list]:
    frames, truth = moving_square()
    return write_clip(tmp_path / "square.mp4", frames, options={"crf": "12"}), truth


def test_mask_track_writes_masks_the_inpaint_plugin_reads(cli, tmp_path, square_clip):
    source, truth = square_clip
    code, out, err = cli("mask", source, "-o", tmp_path / "masks", "--box", "30,60,40,40", "--track",
                         "--preview", tmp_path / "sheet.png")
    assert code == 0, err
    assert "30 frames" in out
    masks = MaskSource(str(tmp_path / "masks"), [], WIDTH, HEIGHT)
    x, y, w, h = truth[-1]
    assert masks(29)[y:y + h, x:x + w].mean() > 0.6 and masks(29).sum() < 2 * w * h
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None
    code, _, err = cli("mask", source, "-o", tmp_path / "masks.mp4", "--point", "50,80", "--track", "--dilate", "2")
    assert code == 0, err
    assert MaskSource(str(tmp_path / "masks.mp4"), [], WIDTH, HEIGHT)(29).any()


def test_mask_overlays_cli(cli, tmp_path):
    frames = panning_texture(32, WIDTH, HEIGHT, step=4)
    x, y, w, h = burn_score_panel(frames, 12, 12)
    source = write_clip(tmp_path / "panel.mp4", frames, options={"crf": "18"})
    code, out, err = cli("mask", source, "-o", tmp_path / "mask.png", "--overlays")
    assert code == 0, err
    assert "1 static overlay region" in out and "present in" in out
    mask = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert mask[y:y + h, x:x + w].mean() > 0.9 and mask.sum() < 2 * w * h


def test_mask_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, square_clip):
    source, _ = square_clip
    still = write_clip(tmp_path / "still.mp4", np.repeat(panning_texture(1, WIDTH, HEIGHT), 20, 0))
    (tmp_path / "exists.png").write_bytes(b"x")
    cases = [
        (["--box", "400,300,20,20", "--track", "-o", tmp_path / "a"], "outside"),
        (["--track", "-o", tmp_path / "b"], "--track needs"),
        (["--overlays", "-o", tmp_path / "exists.png"], "--overwrite"),
        ([],  "say what to mask"),
    ]
    for args, message in cases:
        code, _, err = cli("mask", source, *args) if args else cli("mask", source, "-o", tmp_path / "c.png")
        assert code != 0 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = cli("mask", still, "--overlays", "-o", tmp_path / "d.png")
    assert code != 0 and "barely moves" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.png", "square.mp4", "still.mp4"]


def test_a_ticker_whose_text_fills_its_middle_rows_is_found_whole():
    """The scrolling text of a ticker is neither steady nor a static edge: the bar above and below it are one
    overlay (OpenCV 5.1 draws the ticker's text so that nothing bridges the text rows)."""
    frames = panning_texture(32, WIDTH, HEIGHT, step=4)
    rng = np.random.default_rng(3)
    glyphs = np.repeat(rng.random((1, 400)) < 0.5, 3, 1) * 230.0  # blocky 'text', 3 px per glyph column
    before = frames.copy()
    for t, frame in enumerate(frames):
        bar = np.full((16, WIDTH, 3), (15, 15, 40), np.float32)
        bar[4:12] += glyphs[:, 4 * t:4 * t + WIDTH, None]  # 8 text rows scrolling 4 px per frame
        frame[156:172] = np.clip(0.1 * frame[156:172] + 0.9 * bar, 0, 255).astype(np.uint8)
    assert (before != frames).any(axis=(0, 3))[156:172].all()
    coverage, area = coverage_and_area(frames, [(0, 156, WIDTH, 16)])
    assert coverage >= 0.9 and area <= 2.0, (coverage, area)


def test_only_bands_of_the_same_columns_close_together_merge_across_a_gap():
    """The band rule joins a ticker's bar above and below its text and nothing else: a narrower box (a logo
    over a full-width band, as on DAVIS camel) or a band further away than the thinner band's height stays apart
    (a first, looser rule marked 10x a ticker's area on DAVIS goat and lost the logo on camel)."""
    top, bottom = (0, 161, 320, 166), (0, 171, 320, 177)  # OpenCV 5.1's ticker: bar rows above and below the text
    assert _mergeable(top, bottom, 8, 4)
    assert not _mergeable((260, 120, 290, 150), bottom, 8, 4)  # a logo box 21 rows above the band: far, narrower
    assert not _mergeable((0, 100, 300, 155), bottom, 8, 4)  # a tall region 16 rows above: further than 6 rows
    assert not _mergeable((0, 161, 200, 166), bottom, 8, 4)  # other columns
