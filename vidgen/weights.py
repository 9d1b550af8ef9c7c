"""Weight files: atomic safetensors writes with a model card in the metadata, and one loader.

A vidgen weights file is a safetensors file whose metadata key `vidgen` holds JSON: the architecture
config the plugin needs to rebuild its network (e.g. `channels`, `blocks`) plus the model card
(`command`, `fitted_on`, `seed`, `metrics`, `training`) written by `ModelCard.as_metadata()`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidgen.engine import give_default_permissions
from vidgen.errors import VidgenError


@dataclass
class ModelCard:
    """What a trained model is and how it was made, stored beside its tensors.

    `command` is the exact training command with paths relative to where it ran; `fitted_on` the data
    folders (relative too); `metrics` held-out scores; `training` anything else worth keeping (steps,
    minutes, loss weights ...).
    """

    command: str
    fitted_on: list[str]
    seed: int
    metrics: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def relative_path(path: str | os.PathLike) -> str:
    """`path` relative to the current folder (`../data/x` rather than `/home/me/data/x`)."""
    return os.path.relpath(os.path.abspath(path))


def relative_command(argv: list[str] | None = None) -> str:
    """The running command (`vidgen train ...`) with every absolute path argument made relative."""
    argv = list(sys.argv if argv is None else argv)
    launcher = Path(argv[0])
    run_as_vidgen = launcher.name == "vidgen" or launcher.parts[-2:] == ("vidgen", "__main__.py")  # `python -m vidgen`
    words = ["vidgen"] + argv[1:] if run_as_vidgen else argv
    out = []
    for word in words:
        option, equals, value = word.partition("=")
        if equals and option.startswith("--") and os.path.isabs(value):
            out.append(f"{option}={relative_path(value)}")
        else:
            out.append(relative_path(word) if os.path.isabs(word) else word)
    return " ".join(out)


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any],
                 half: bool = True) -> None:
    """Write `tensors` (fp16 by default, to keep shipped files small) and JSON `metadata` to a safetensors
    file atomically: a temporary file in the same folder is renamed over `path`, so a crash or Ctrl-C never
    leaves a truncated file, and readers see the old or the new weights."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu() for k, v in tensors.items()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(temporary), metadata={"vidgen": json.dumps(metadata)})
        give_default_permissions(temporary)  # safetensors writes the file private (0600)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """`torch.save` a training checkpoint atomically (temporary file, then rename)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `vidgen` JSON metadata (architecture config and model card) of a safetensors file, tensors unread."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {}).get("vidgen", "{}"))
    except Exception as exc:
        raise VidgenError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file (no pickle) or a `.pt/.pth` state dict (`weights_only=True`):
    (float32 tensors, metadata; `{}` for a `.pt`)."""
    path = Path(path)
    if not path.is_file():
        raise VidgenError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                meta = json.loads((f.metadata() or {}).get("vidgen", "{}"))
                return {k: f.get_tensor(k).float() for k in f.keys()}, meta
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise VidgenError(f"{path}: cannot read weights ({type(exc).__name__}: {first_line})") from None
    for key in ("params_ema", "params", "state_dict", "model", "generator", "G"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    return {k: v.float() for k, v in state.items() if isinstance(v, torch.Tensor)}, {}


def load_spandrel_image_model(tensors: dict[str, torch.Tensor], path: str | os.PathLike, device: torch.device,
                              not_ours: str) -> Any:
    """A checkpoint of the field (ESRGAN, SwinIR, DnCNN, ...) through the optional `spandrel` library:
    its `ImageModelDescriptor` for an RGB → RGB model, on `device`. `not_ours` starts the error messages
    (e.g. "not a vidgen sr checkpoint")."""
    try:
        from spandrel import ImageModelDescriptor, ModelLoader
    except ImportError:
        raise VidgenError(f"{path}: {not_ours}; other architectures load through spandrel: "
                          "pip install 'vidgen[models]'") from None
    try:
        descriptor = ModelLoader(device).load_from_state_dict(tensors)
    except Exception as exc:
        raise VidgenError(f"{path}: {not_ours}, and spandrel cannot load it ({type(exc).__name__}: {exc})") from None
    if (not isinstance(descriptor, ImageModelDescriptor) or descriptor.input_channels != 3
            or descriptor.output_channels != 3):
        raise VidgenError(f"{path}: {descriptor.architecture.name} is not an RGB image-to-image model")
    return descriptor
