"""Discovery the pluggy way: entry points, who registered what, name clashes, plugin run options."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

import vidgen
from vidgen import FrameGroup, Option, Processor
from vidgen.plugins import default_plugin_manager, plugin_source, processors


class Tint(Processor):
    name = "tint"
    options = (Option("level", float, 0.0, "grey level to paint every frame"),)

    def process(self, group: FrameGroup) -> FrameGroup:
        return group.with_frames(group.core_frames * 0 + self.settings.level)


class TintPlugin:
    @vidgen.hookimpl
    def vidgen_register_processors(self, register) -> None:
        register(Tint)

    @vidgen.hookimpl
    def vidgen_register_run_options(self, register) -> None:
        register("--level", "tint.level", "Grey level")


class ImpostorPlugin:
    @vidgen.hookimpl
    def vidgen_register_processors(self, register) -> None:
        register(type("OtherSr", (Tint,), {"name": "sr"}))


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_builtins_come_from_entry_points_with_their_package() -> None:
    pm = default_plugin_manager()
    found = processors()
    assert {"inpaint", "sr", "denoise", "seg2vid"} <= set(found)
    assert (found["sr"].package, found["sr"].plugin) == ("vidgen", "sr")
    assert found["sr"].version == vidgen.__version__
    assert plugin_source(pm, pm.get_plugin("sr")) == ("vidgen", vidgen.__version__)
    registered = {impl.plugin_name for impl in pm.hook.vidgen_register_processors.get_hookimpls()}
    assert {"inpaint", "sr", "denoise", "seg2vid"} <= registered


def test_a_name_registered_twice_is_one_warning_naming_both(cli, register) -> None:
    register(ImpostorPlugin(), "impostor")
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "'sr'" in line]
    assert len(warnings) == 1 and "vidgen" in warnings[0] and "impostor" in warnings[0], err
    assert {e["name"]: e for e in json.loads(out)}["sr"]["package"] == "impostor"
    code, _, err = cli("plugins")
    assert code == 0 and "'sr'" not in err  # discovered once: the warning is not repeated


def test_plugins_contribute_run_options(cli, clip: Path, tmp_path: Path, register) -> None:
    register(TintPlugin(), "tint-plugin")
    code, out, _ = cli("run", "--help")
    assert code == 0 and "--level" in out and "--mask" in out
    code, _, err = cli("run", clip, "--plugin", "tint", "--level", "0.5", "-o", tmp_path / "grey.mp4", "-q")
    assert code == 0, err
    assert abs(float(first_frame(tmp_path / "grey.mp4").mean()) - 127.5) < 3
    code, out, _ = cli("plugins", "--json")
    options = {o["name"]: o for o in {e["name"]: e for e in json.loads(out)}["tint"]["options"]}
    assert code == 0 and options["level"]["run_option"] == "--level"
    code, _, err = cli("run", clip, "--level", "0.5", "-o", tmp_path / "x.mp4")
    assert code == 1 and err.strip() == "error: --level is for the tint plugin; add --plugin tint"


def test_mask_shorthand_of_inpaint(cli, clip: Path, tmp_path: Path) -> None:
    import cv2

    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 10:30] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    code, _, err = cli("run", clip, "--plugin", "inpaint", "--mask", tmp_path / "mask.png", "-p", "inpaint.iterations=2",
                       "-p", "inpaint.pool=2", "-o", tmp_path / "out.mp4", "-q")
    assert code == 0, err
    assert vidgen.probe(tmp_path / "out.mp4").frame_count == 12
    code, _, err = cli("run", clip, "--mask", tmp_path / "mask.png", "-o", tmp_path / "o.mp4")
    assert code == 1 and "--mask is for the inpaint plugin" in err
