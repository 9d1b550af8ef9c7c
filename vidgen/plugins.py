"""Plugin discovery: the pluggy manager and the registry of processors it yields."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import click
import pluggy

from vidgen import hookspecs
from vidgen.errors import VidgenError
from vidgen.processor import Processor

ENTRY_POINT_GROUP = "vidgen"
BUILTIN_DISTRIBUTION = "vidgen"
LOAD_PLUGINS_ENV = "VIDGEN_LOAD_PLUGINS"


@dataclass(frozen=True)
class ProcessorInfo:
    """A registered processor class and where it came from."""

    cls: type[Processor]
    plugin: str
    package: str
    version: str


def _external_allowed(entry_point_name: str, distribution: str) -> bool:
    """VIDGEN_LOAD_PLUGINS unset: load all; set: a comma list of entry-point or package names ('' = none)."""
    allowed = os.environ.get(LOAD_PLUGINS_ENV)
    if allowed is None or distribution == BUILTIN_DISTRIBUTION:
        return True
    names = {name.strip() for name in allowed.split(",") if name.strip()}
    return entry_point_name in names or distribution in names


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the package and version each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__("vidgen")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, tuple[str, str]] = {}


def load_entry_points(pm: PluginManager) -> None:
    """Register every module of entry-point group ``vidgen`` that the environment allows."""
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.get_plugin(ep.name) is not None:
                continue
            if not _external_allowed(ep.name, dist.metadata["name"]):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not take vidgen down
                click.echo(f"warning: plugin {ep.name!r} failed to load: {exc}", err=True)
                continue
            pm.register(plugin, name=ep.name)
            pm.sources[ep.name] = (dist.metadata["name"], dist.version)


def new_plugin_manager(load_installed: bool = True) -> PluginManager:
    """A plugin manager with vidgen's hookspecs, and the installed plugins unless told otherwise."""
    pm = PluginManager()
    if load_installed:
        load_entry_points(pm)
    return pm


@lru_cache(maxsize=1)
def default_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (installed plugins loaded once)."""
    return new_plugin_manager()


def _source_of(pm: PluginManager, plugin: object) -> tuple[str, str]:
    name = pm.get_name(plugin) or ""
    return pm.sources.get(name, (getattr(plugin, "__name__", type(plugin).__name__), ""))


def processors(pm: PluginManager | None = None) -> dict[str, ProcessorInfo]:
    """All registered processors by name."""
    pm = pm or default_plugin_manager()
    found: dict[str, ProcessorInfo] = {}
    for plugin in pm.get_plugins():
        impl = getattr(plugin, "vidgen_register_processors", None)
        if impl is None:
            continue
        package, version = _source_of(pm, plugin)

        def register(cls: type[Processor], _package: str = package, _version: str = version) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Processor) and cls.name):
                raise VidgenError(f"plugin {_package}: register() needs a named Processor subclass, got {cls!r}")
            found[cls.name] = ProcessorInfo(cls, pm.get_name(plugin) or "", _package, _version)

        try:
            impl(register=register)
        except VidgenError:
            raise
        except Exception as exc:  # one broken plugin must not hide the others
            click.echo(f"warning: plugin {pm.get_name(plugin)!r} failed to register: {type(exc).__name__}: {exc}", err=True)
    return found


def get_processor_class(name: str, pm: PluginManager | None = None) -> type[Processor]:
    """The processor class called `name`, or a one-line error listing the installed ones."""
    available = processors(pm)
    if name not in available:
        raise VidgenError(f"unknown plugin {name!r} (installed: {', '.join(sorted(available)) or 'none'})")
    return available[name].cls


def create_processor(name: str, pm: PluginManager | None = None, **options: Any) -> Processor:
    """Instantiate processor `name` with `options` (strings are parsed by each option's type)."""
    return get_processor_class(name, pm)(**options)


def registered_commands(hook_name: str, pm: PluginManager | None = None) -> dict[str, click.Command]:
    """Commands registered through `vidgen_register_trainers` or `vidgen_register_benchmarks`."""
    pm = pm or default_plugin_manager()
    commands: dict[str, click.Command] = {}
    getattr(pm.hook, hook_name)(register=lambda name, command: commands.__setitem__(name, command))
    return commands
