"""`vidgen compare`: per-frame and mean PSNR/SSIM, sizes that differ, lengths that differ, contact sheets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from clips import decode, moving_pattern, write_clip

from vidgen.metrics import psnr


def test_scores_match_the_metrics_and_identical_videos_say_so(cli, tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", moving_pattern(5, 64, 48))
    b = write_clip(tmp_path / "b.mp4", moving_pattern(5, 64, 48), options={"crf": "35"})
    code, out, err = cli("compare", a, b, "--json")
    assert code == 0, err
    scores = json.loads(out)
    expected = [psnr(x, y) for x, y in zip(decode(a)[0], decode(b)[0])]
    assert np.allclose([f["psnr"] for f in scores["frames"]], expected, atol=0.05)
    assert abs(scores["mean"]["psnr"] - np.mean(expected)) < 0.05 and 0.5 < scores["mean"]["ssim"] < 1
    assert not scores["scaled"] and scores["frame_count"] == 5
    code, out, _ = cli("compare", a, a)
    assert code == 0 and out.splitlines()[-1].split()[:2] == ["mean", "identical"]


def test_sizes_that_differ_are_named_and_scaled(cli, tmp_path: Path) -> None:
    frames = moving_pattern(3, 128, 96)
    a = write_clip(tmp_path / "a.mp4", np.stack([cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA) for f in frames]))
    b = write_clip(tmp_path / "b.mp4", frames)
    code, out, err = cli("compare", a, b, "--json")
    assert code == 0 and "sizes differ" in err and "scaled to 64x48" in err
    scores = json.loads(out)
    assert scores["scaled"] and scores["size_b"] == [128, 96] and scores["mean"]["psnr"] > 25  # unrelated content scores about 11


def test_lengths_must_match(cli, tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", moving_pattern(5, 64, 48))
    b = write_clip(tmp_path / "b.mp4", moving_pattern(3, 64, 48))
    for args in ((a, b), (b, a)):
        code, _, err = cli("compare", *args, "--sheet", tmp_path / "s.png")
        assert code == 1 and err.startswith("error: ") and "same length" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s.png").exists()


def test_contact_sheet(cli, tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", moving_pattern(6, 64, 48))
    sheet = tmp_path / "sheet.png"
    code, _, err = cli("compare", a, a, "--sheet", sheet, "--frames", "1,4")
    assert code == 0, err
    image = cv2.imread(str(sheet))
    assert image.shape == (2 * (48 + 14), 128, 3)
    assert np.array_equal(image[14:62, :64], image[14:62, 64:])  # A and B side by side
    code, _, err = cli("compare", a, a, "--sheet", sheet)
    assert code == 1 and "--overwrite" in err
    code, _, err = cli("compare", a, a, "--sheet", tmp_path / "x.png", "--frames", "9")
    assert code == 1 and "--frames 9" in err and not (tmp_path / "x.png").exists()
    code, _, err = cli("compare", a, a, "--sheet", sheet, "--overwrite")
    assert code == 0 and cv2.imread(str(sheet)).shape[0] == 4 * (48 + 14)
