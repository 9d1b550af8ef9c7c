"""vidgen denoise processor: temporal RED-Net video denoising (see docs/denoise.md)."""

from __future__ import annotations

from typing import Callable

import click

import vidgen


@vidgen.hookimpl
def vidgen_register_processors(register: Callable[[type[vidgen.Processor]], None]) -> None:
    from vidgen_denoise.processor import Denoise

    register(Denoise)


@vidgen.hookimpl
def vidgen_register_trainers(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_denoise.train import train_command

    register("denoise", train_command)


@vidgen.hookimpl
def vidgen_register_benchmarks(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_denoise.bench import bench_command

    register("denoise", bench_command)
