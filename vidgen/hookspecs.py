"""The hooks a vidgen plugin implements (pluggy project name ``vidgen``)."""

from __future__ import annotations

from typing import Callable

import click
import pluggy

from vidgen.processor import Processor

hookspec = pluggy.HookspecMarker("vidgen")
hookimpl = pluggy.HookimplMarker("vidgen")


@hookspec
def vidgen_register_processors(register: Callable[[type[Processor]], None]) -> None:
    """Register processor classes by calling ``register(ProcessorClass)``."""


@hookspec
def vidgen_register_trainers(register: Callable[[str, click.Command], None]) -> None:
    """Register ``vidgen train NAME`` commands by calling ``register(name, click_command)``."""


@hookspec
def vidgen_register_benchmarks(register: Callable[[str, click.Command], None]) -> None:
    """Register ``vidgen bench NAME`` commands by calling ``register(name, click_command)``."""


@hookspec
def vidgen_register_run_options(register: Callable[[str, str, str], None]) -> None:
    """Add ``vidgen run`` shorthands by calling ``register("--flag", "NAME.KEY", help)``: ``--flag V`` = ``-p NAME.KEY=V``."""


@hookspec
def vidgen_register_commands(cli: click.Group) -> None:
    """Add top-level commands to the `vidgen` CLI (``cli.add_command(command)``)."""
