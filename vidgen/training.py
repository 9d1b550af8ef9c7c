"""The training toolkit of `vidgen train NAME`: data, shared options, a time-budgeted loop with resume.

A plugin's trainer is a click command decorated with `train_options(...)`; it builds its networks and
optimisers, hands them to a `TrainingRun`, and writes its weights with `TrainingRun.save_weights`:

    for step in run.steps():
        set_learning_rate(optimizer, cosine_rate(base, run.progress))
        with run.autocast():
            loss = ...
        run.optimise(loss, optimizer)
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import numpy as np
import torch

from vidgen.compute import resolve_device
from vidgen.errors import VidgenError
from vidgen.sequences import IMAGE_SUFFIXES
from vidgen.weights import ModelCard, load_weights, relative_command, relative_path, save_state, save_weights

__all__ = ["IMAGE_SUFFIXES", "TrainOptions", "TrainingRun", "cosine_rate", "load_images", "load_weights",
           "random_crops", "save_weights", "set_learning_rate", "split_holdout", "train_options"]


def load_images(folder: str | os.PathLike, min_size: int = 0) -> list[np.ndarray]:
    """All images under `folder` (recursively) as `(H, W, 3)` uint8 RGB arrays, sorted by path."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise VidgenError(f"{folder}: image folder not found")
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < min_size:
            continue
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not images:
        raise VidgenError(f"{folder}: no readable images (of at least {min_size} px)")
    return images


def split_holdout(images: list, every: int = 10) -> tuple[list, list]:
    """Deterministic train/validation split: every `every`-th item is held out."""
    held = [im for i, im in enumerate(images) if i % every == every - 1]
    kept = [im for i, im in enumerate(images) if i % every != every - 1]
    return kept, held


def random_crops(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator,
                 scale_range: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """`(count, 3, size, size)` float crops in [0, 1], randomly rescaled, flipped and rotated."""
    import cv2

    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        image = images[rng.integers(len(images))]
        scale = rng.uniform(*scale_range)
        if scale != 1.0:
            h, w = image.shape[:2]
            scale = max(scale, (size + 1) / min(h, w))
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
        crop = image[y:y + size, x:x + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = np.rot90(crop, rng.integers(4))
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def cosine_rate(base: float, progress: float, floor: float = 0.0) -> float:
    """Learning rate at `progress` in [0, 1] of the budget: cosine decay from `base` to `floor` × `base`."""
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate


@dataclass(frozen=True)
class TrainOptions:
    """The options every `vidgen train NAME` shares (see `train_options`)."""

    out: Path
    minutes: float
    seed: int
    device: torch.device
    threads: int
    resume: bool
    overwrite: bool

    @property
    def checkpoint(self) -> Path:
        """The resumable training state beside the weights: `OUT.ckpt.pt` for `OUT.safetensors`."""
        return self.out.with_suffix(".ckpt.pt")


def package_folders(module: str | None) -> list[Path]:
    """The installed folders a trainer must not write into: vidgen's and the plugin package of `module`."""
    import vidgen

    folders = [Path(vidgen.__file__).parent]
    package = sys.modules.get((module or "").partition(".")[0])
    if package is not None and getattr(package, "__file__", None):
        folders.append(Path(package.__file__).parent)
    return [folder.resolve() for folder in folders]


def check_output(options: TrainOptions, protected: list[Path]) -> None:
    """Refuse an `--out` inside an installed package, or an existing one without --overwrite / --resume."""
    out = options.out
    for folder in protected:
        if out.resolve().is_relative_to(folder):
            raise VidgenError(f"--out {out}: inside the installed package ({folder}); write your model elsewhere "
                              "and use it with -p NAME.weights=PATH")
    if out.exists() and not (options.overwrite or options.resume):
        raise VidgenError(f"--out {out}: already exists; pass --overwrite to replace it or --resume to continue "
                          "its training")
    if options.resume and not options.checkpoint.is_file():
        raise VidgenError(f"{options.checkpoint}: no checkpoint to resume from")


def train_options(default_out: str, default_minutes: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for a `vidgen train NAME` click command: adds `--out --minutes --seed --device --threads
    --resume --overwrite`, checks them (no writing into the installed package, no silent overwrite), seeds
    torch with --seed (so the networks the command builds start the same every time) and passes them to the
    command as one `options: TrainOptions` argument."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(out: str, minutes: float, seed: int, device: str, threads: int, resume: bool, overwrite: bool,
                    **kwargs: Any) -> None:
            options = TrainOptions(Path(out), minutes, seed, resolve_device(device), threads, resume, overwrite)
            check_output(options, package_folders(command.__module__))
            if threads:
                torch.set_num_threads(threads)
            torch.manual_seed(seed)
            command(options=options, **kwargs)

        for option in reversed([
            click.option("--out", default=default_out, show_default=True, type=click.Path(dir_okay=False),
                         help="Weights file to write (.safetensors); its checkpoint is OUT.ckpt.pt."),
            click.option("--minutes", type=click.FloatRange(0), default=default_minutes, show_default=True,
                         help="Wall-clock training budget, including the time of resumed runs."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])),
            click.option("--threads", type=click.IntRange(0), default=0, show_default=True,
                         help="CPU threads for torch (0: torch's default; 1 is faster on a busy shared CPU)."),
            click.option("--resume", is_flag=True, help="Continue from OUT.ckpt.pt (model, optimiser and RNG state)."),
            click.option("--overwrite", is_flag=True, help="Replace an existing --out."),
        ]):
            wrapper = option(wrapper)
        return wrapper

    return decorate


class TrainingRun:
    """One time-budgeted training run: the step loop, mixed precision, checkpoints and resume.

    `parts` names everything whose state a checkpoint keeps: modules and optimisers. `rng` is the run's numpy
    generator, seeded with `options.seed` (torch is seeded by `train_options`). Checkpoints
    (`options.checkpoint`, written atomically every `checkpoint_every` seconds and at the end) also hold the
    step, the elapsed time, the gradient scaler and the numpy / torch / CUDA random states, so a resumed run
    continues as the uninterrupted one would. Under CUDA fp16, losses are scaled (`torch.amp.GradScaler`).
    """

    def __init__(self, options: TrainOptions, parts: dict[str, Any], dtype: torch.dtype,
                 checkpoint_every: float = 60.0) -> None:
        self.options, self.parts, self.dtype = options, parts, dtype
        self.device = options.device
        self.checkpoint_every = checkpoint_every
        self.rng = np.random.default_rng(options.seed)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and dtype == torch.float16)
        self.step, self.elapsed_before = 0, 0.0
        self.seed = options.seed  # on --resume, the seed the training started with
        self._started: float | None = None
        options.out.parent.mkdir(parents=True, exist_ok=True)
        if options.resume:
            self._restore()

    @property
    def budget(self) -> float:
        return self.options.minutes * 60

    @property
    def elapsed(self) -> float:
        """Seconds trained, resumed runs included."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.elapsed_before + running

    @property
    def progress(self) -> float:
        """Share of the budget spent, in [0, 1] (for learning-rate schedules)."""
        return min(self.elapsed / self.budget, 1.0) if self.budget else 1.0

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the run's dtype on its device (nothing under float32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def optimise(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Zero the gradients, back-propagate `loss` (scaled under fp16) and step `optimizer`."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def steps(self) -> Iterator[int]:
        """Yield step numbers until the budget is spent (at least one step per run), checkpointing as it goes
        and once at the end. `self.step` counts the steps done, resumed ones included."""
        self._started = time.perf_counter()
        last_checkpoint = self._started
        while True:
            yield self.step
            self.step += 1
            self.scaler.update()
            if self.elapsed >= self.budget:
                break
            if time.perf_counter() - last_checkpoint >= self.checkpoint_every:
                self.save_checkpoint()
                last_checkpoint = time.perf_counter()
        self.save_checkpoint()
        self.elapsed_before, self._started = self.elapsed, None

    def save_checkpoint(self) -> None:
        """Write `options.checkpoint` atomically: every part's state, the step, time, seed, scaler and RNGs."""
        state = {name: part.state_dict() for name, part in self.parts.items()}
        state["run"] = {"step": self.step, "elapsed": self.elapsed, "seed": self.seed,
                        "scaler": self.scaler.state_dict(), "numpy_rng": self.rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["run"]["cuda_rng"] = torch.cuda.get_rng_state_all()
        save_state(self.options.checkpoint, state)

    def _restore(self) -> None:
        path = self.options.checkpoint
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            for name, part in self.parts.items():
                part.load_state_dict(state[name])
            run = state["run"]
        except (KeyError, RuntimeError, ValueError) as exc:
            raise VidgenError(f"{path}: not a checkpoint of this model ({type(exc).__name__}: {exc})") from None
        self.step, self.elapsed_before, self.seed = int(run["step"]), float(run["elapsed"]), int(run["seed"])
        if run["scaler"] and self.scaler.is_enabled():  # empty when saved without scaling (e.g. a CPU run)
            self.scaler.load_state_dict(run["scaler"])
        self.rng.bit_generator.state = run["numpy_rng"]
        torch.set_rng_state(run["torch_rng"].cpu())
        if "cuda_rng" in run and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in run["cuda_rng"]])
        click.echo(f"resumed at step {self.step} ({self.elapsed_before / 60:.1f} min trained) from {path}")

    def model_card(self, fitted_on: list[str | os.PathLike], metrics: dict[str, Any], **training: Any) -> ModelCard:
        """The card of the model trained so far: this command (relative paths), data folders, the seed the training
        started with, metrics."""
        training = {"steps": self.step, "train_minutes": round(self.elapsed / 60, 2), **training}
        return ModelCard(relative_command(), [relative_path(folder) for folder in fitted_on], self.seed, metrics,
                         training)

    def save_weights(self, tensors: dict[str, torch.Tensor], config: dict[str, Any], card: ModelCard) -> None:
        """Write the weights (fp16 safetensors) with `config` (what the plugin needs to rebuild the network)
        and the model card in the metadata, to `options.out`."""
        save_weights(self.options.out, tensors, {**config, **card.as_metadata()})
