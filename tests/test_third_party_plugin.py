"""A third-party plugin package (samples/vidgen-grayscale) installed with pip and used through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

PACKAGE = Path(__file__).parents[1] / "samples" / "vidgen-grayscale"


def vidgen_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidgen", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def installed_grayscale(tmp_path_factory: pytest.TempPathFactory):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = tmp_path_factory.mktemp("build")
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(PACKAGE)],
                   check=True, cwd=build, timeout=300)
    yield
    subprocess.run([*pip, "uninstall", "-y", "vidgen-grayscale"], check=True, timeout=120)


def test_installed_plugin_is_listed_and_runs(installed_grayscale, clip: Path, tmp_path: Path) -> None:
    listing = vidgen_cli("plugins", "--json")
    entries = {e["name"]: e for e in json.loads(listing.stdout)}
    assert entries["grayscale"]["package"] == "vidgen-grayscale"
    assert entries["grayscale"]["version"] == "1.0.0"

    done = vidgen_cli("run", clip, "--plugin", "grayscale", "-p", "strength=1", "-o", tmp_path / "grey.mp4", "-q")
    assert done.returncode == 0, done.stderr
    with av.open(str(tmp_path / "grey.mp4")) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 4  # grey: channels (nearly) equal after 4:2:0 coding


def test_environment_variable_disables_external_plugins(installed_grayscale) -> None:
    listing = vidgen_cli("plugins", "--json", env={"VIDGEN_LOAD_PLUGINS": ""})
    names = {e["name"] for e in json.loads(listing.stdout)}
    assert "grayscale" not in names
    only = vidgen_cli("plugins", "--json", env={"VIDGEN_LOAD_PLUGINS": "grayscale"})
    assert "grayscale" in {e["name"] for e in json.loads(only.stdout)}
