"""vidgen seg2vid: a semantic label video (CamVid street classes) → a street-scene video, one style per video."""

from __future__ import annotations

from typing import Callable

import click

import vidgen


@vidgen.hookimpl
def vidgen_register_processors(register: Callable) -> None:
    from vidgen_seg2vid.processor import Seg2Vid

    register(Seg2Vid)


@vidgen.hookimpl
def vidgen_register_trainers(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_seg2vid.judge import judge_command
    from vidgen_seg2vid.train import train_command

    register("seg2vid", train_command)
    register("seg2vid-judge", judge_command)


@vidgen.hookimpl
def vidgen_register_benchmarks(register: Callable[[str, click.Command], None]) -> None:
    from vidgen_seg2vid.bench import bench_command

    register("seg2vid", bench_command)
