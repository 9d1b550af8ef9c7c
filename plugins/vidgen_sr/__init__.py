"""vidgen sr processor: per-frame super-resolution (compact SRResNet / SRGAN, or field checkpoints)."""

from __future__ import annotations

from typing import Callable

import click

import vidgen


@vidgen.hookimpl
def vidgen_register_processors(register: Callable[[type[vidgen.Processor]], None]) -> None:
    from vidgen_sr.processor import SuperResolution

    register(SuperResolution)


@vidgen.hookimpl
def vidgen_register_trainers(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_sr.train import train_command

    register("sr", train_command)


@vidgen.hookimpl
def vidgen_register_benchmarks(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_sr.bench import bench_command

    register("sr", bench_command)
