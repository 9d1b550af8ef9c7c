"""The z-encoder of the inpaint prior: `vidgen train inpaint-encoder` and the processor's `init` option."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vidgen
from vidgen import VidgenError
from vidgen.synth import synthetic_photo
from vidgen.weights import read_metadata
from vidgen_inpaint.model import Discriminator, Generator, encoder_path, init_weights, load_encoder, load_gan, save_gan
from vidgen_inpaint.processor import FIRST_SEARCH
from vidgen_inpaint.train_encoder import random_holes, train_command


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_prior(path: Path, seed: int) -> str:
    torch.manual_seed(seed)
    netG, netD = Generator(width=8), Discriminator(width=8)
    netG.apply(init_weights)
    netD.apply(init_weights)
    save_gan(path, netG, netD, {"note": "test"})
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, str]:
    """(prior, encoder): a tiny random prior and an encoder trained for it by a short `vidgen train` run."""
    folder = tmp_path_factory.mktemp("encoder")
    (folder / "photos").mkdir()
    for index in range(10):
        cv2.imwrite(str(folder / "photos" / f"{index}.png"), synthetic_photo(80, 80, seed=index))
    prior = tiny_prior(folder / "tiny.safetensors", seed=0)
    out = encoder_path(prior)
    result = CliRunner().invoke(train_command, ["--prior", prior, "--images", str(folder / "photos"), "--out", str(out),
                                                "--minutes", "0.01", "--batch", "4", "--width", "4",
                                                "--validation-steps", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "validation hole PSNR" in result.output and "reference: pool initialisation" in result.output
    return prior, str(out)


def test_train_inpaint_encoder_writes_a_card_tied_to_its_prior(trained):
    prior, encoder_file = trained
    card = read_metadata(encoder_file)
    assert card["seed"] == 5 and card["e_width"] == 4 and card["training"]["steps"] >= 1
    assert {"encoder_hole_psnr", "encoder_2_steps_hole_psnr", "pool_2_steps_hole_psnr"} <= set(card["metrics"])
    netG, _, _ = load_gan(prior)
    encoder = load_encoder(encoder_file, netG)
    known = random_holes(6, np.random.default_rng(0))
    assert known.shape == (6, 1, 64, 64) and 0 < (known == 0).float().mean() < 0.7
    z = encoder(torch.rand(6, 3, 64, 64), known)
    assert z.shape == (6, 100) and z.abs().max() <= 1
    other_g, _, _ = load_gan(tiny_prior(Path(prior).with_name("other.safetensors"), seed=1))
    with pytest.raises(VidgenError, match="another prior"):
        load_encoder(encoder_file, other_g)


def test_encoder_init_fills_with_fewer_search_steps(trained, tmp_path):
    prior, _ = trained
    frames = np.stack([synthetic_photo(96, 64, seed=3)] * 4)
    corrupted = frames.copy()
    corrupted[:, 20:40, 30:60] = (0, 255, 0)
    common = dict(device="cpu", box="30,20,30,20", dilate=0, weights=prior, group=4, propagate=False, iterations=40)
    first_steps = {init: min(steps, 40) for init, (steps, _) in FIRST_SEARCH.items()}  # iterations caps a search
    filled = {}
    for init in ("encoder", "pool", "auto"):
        ready = vidgen.processor("inpaint", init=init, **common)
        filled[init] = ready(corrupted)
        steps = ready.processors[0].stats.steps_per_search
        assert steps[0] == first_steps["pool" if init == "pool" else "encoder"]
    assert first_steps["encoder"] < first_steps["pool"]
    out = filled["encoder"]
    assert out.shape == frames.shape and (out[:, 20:40, 30:60, 1] < 250).mean() > 0.9
    assert np.array_equal(out[:, :20], corrupted[:, :20]) and not np.array_equal(out, filled["pool"])
    alone = shutil.copy(prior, tmp_path / "alone.safetensors")  # a prior without an encoder beside it
    auto = vidgen.processor("inpaint", **dict(common, weights=str(alone)))
    auto(corrupted)
    assert auto.processors[0].stats.steps_per_search[0] == first_steps["pool"]
    with pytest.raises(VidgenError, match="init=encoder needs"):
        vidgen.processor("inpaint", **dict(common, weights=str(alone), init="encoder"))(corrupted)
