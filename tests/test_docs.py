"""The Python examples of docs/library.md and docs/plugin-authoring.md run as written (on tiny inputs)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from clips import moving_pattern, write_clip

from vidgen.plugins import default_plugin_manager

DOCS = Path(__file__).parents[1] / "docs"


def python_blocks(name: str) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.S)
    assert blocks, name
    return blocks


def test_library_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "in.mp4", moving_pattern(6, 64, 48), audio=True)
    for block in python_blocks("library.md"):
        exec(compile(block, "docs/library.md", "exec"), {"__name__": "library_example"})
    assert (tmp_path / "out.mp4").exists()


def test_plugin_authoring_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("my_grayscale")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        for block in python_blocks("plugin-authoring.md"):
            exec(compile(block, "docs/plugin-authoring.md", "exec"), module.__dict__)
        grey = module.grey
        assert grey.shape == (4, 48, 64, 3) and np.array_equal(grey, module.same)
    finally:
        pm = default_plugin_manager()
        if pm.is_registered(module):
            pm.unregister(module)
