"""Shared fixtures: small clips, a CLI runner that returns (exit code, stdout, stderr), plugin registration."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clips import moving_pattern, write_clip  # noqa: E402

from vidgen.plugins import default_plugin_manager  # noqa: E402


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 12-frame 64x48 H.264 clip with an AAC track."""
    return write_clip(tmp_path / "in.mp4", moving_pattern(12, 64, 48), audio=True)


@pytest.fixture
def noise_photos(tmp_path: Path) -> Path:
    """A folder `photos` of ten 80×80 smooth-noise images: enough for every trainer's mechanics."""
    import cv2
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(10):
        noise = (rng.random((10, 10, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"), cv2.resize(noise, (80, 80), interpolation=cv2.INTER_CUBIC))
    return folder


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run `vidgen ARGS...` in-process through `main()`; returns (exit code, stdout, stderr)."""
    from vidgen.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["vidgen", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


@pytest.fixture
def register() -> Iterator[Callable[[object, str], None]]:
    """Register plugin objects on the process-wide manager for one test (`pm.register`)."""
    pm = default_plugin_manager()
    added: list[object] = []

    def add(plugin: object, name: str) -> None:
        pm.register(plugin, name=name)
        added.append(plugin)

    yield add
    for plugin in added:
        pm.unregister(plugin)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest single-threaded (and do not fight the other tests for the cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_denoise_weights(tmp_path: Path) -> Path:
    """A randomly initialised 5-frame denoise RED-Net (8 channels), saved like the shipped weights."""
    import torch

    from vidgen.weights import save_weights
    from vidgen_denoise.model import TemporalREDNet

    torch.manual_seed(0)
    model = TemporalREDNet(frames=5, width=8, body_layers=1)
    path = tmp_path / "tiny.safetensors"
    save_weights(path, model.state_dict(), model.config())
    return path
