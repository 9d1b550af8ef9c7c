"""Plugin discovery: the pluggy manager and the registries its hooks fill (processors, run options)."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import click
import pluggy

from vidgen import hookspecs
from vidgen.errors import VidgenError
from vidgen.processor import Processor, log_message

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


@dataclass(frozen=True)
class RunOption:
    """A `vidgen run` shorthand a plugin contributes: `flag VALUE` means `-p target=VALUE`."""

    flag: str
    target: str
    help: str
    package: str


def _external_allowed(entry_point_name: str, distribution: str) -> bool:
    """VIDGEN_LOAD_PLUGINS unset: load all; set: a comma list of entry-point or package names ('' = none)."""
    allowed = os.environ.get(LOAD_PLUGINS_ENV)
    if allowed is None or distribution == BUILTIN_DISTRIBUTION:
        return True
    names = {name.strip() for name in allowed.split(",") if name.strip()}
    return entry_point_name in names or distribution in names


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``vidgen``, remembering what its hooks registered."""

    def __init__(self) -> None:
        super().__init__("vidgen")
        self.add_hookspecs(hookspecs)
        self.discovered: dict[str, tuple[frozenset[tuple[str, int]], Any]] = {}


def load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load the plugins of entry-point group ``vidgen`` that VIDGEN_LOAD_PLUGINS allows, one at a time
    through `pm.load_setuptools_entrypoints`, so a broken third-party plugin only costs a warning."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = ep.dist.metadata["name"] if ep.dist is not None else ""
        if not _external_allowed(ep.name, distribution):
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not take vidgen down
            log_message(f"warning: plugin {ep.name!r} ({distribution}) failed to load: {type(exc).__name__}: {exc}")


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


def plugin_source(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    """(package, version) of an entry-point plugin; (plugin name, '') for one registered in code."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return dist.project_name, dist.version
    return pm.get_name(plugin) or repr(plugin), ""


def _collect(pm: pluggy.PluginManager, hook_name: str, make_register: Callable[[object, str], Callable]) -> None:
    """Call each implementation of `hook_name` with its own `register` (so each registration is known to
    come from its plugin); a plugin whose hook raises is skipped with a warning."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        package = plugin_source(pm, impl.plugin)[0]
        try:
            impl.function(register=make_register(impl.plugin, package))
        except VidgenError:
            raise
        except Exception as exc:  # one broken plugin must not hide the others
            log_message(f"warning: plugin {impl.plugin_name!r} ({package}) failed in {hook_name}: "
                        f"{type(exc).__name__}: {exc}")


def _discover_processors(pm: PluginManager) -> dict[str, ProcessorInfo]:
    found: dict[str, ProcessorInfo] = {}

    def make_register(plugin: object, package: str) -> Callable[[type[Processor]], None]:
        version = plugin_source(pm, plugin)[1]

        def register(cls: type[Processor]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Processor) and cls.name):
                raise VidgenError(f"plugin {package}: register() needs a named Processor subclass, got {cls!r}")
            if cls.name in found and found[cls.name].cls is not cls:
                log_message(f"warning: processor {cls.name!r} is registered by both {found[cls.name].package} "
                            f"and {package}; using the one from {package}")
            found[cls.name] = ProcessorInfo(cls, pm.get_name(plugin) or "", package, version)

        return register

    _collect(pm, "vidgen_register_processors", make_register)
    return found


def _discover_run_options(pm: PluginManager) -> dict[str, RunOption]:
    found: dict[str, RunOption] = {}

    def make_register(plugin: object, package: str) -> Callable[[str, str, str], None]:
        def register(flag: str, target: str, help: str) -> None:
            if not flag.startswith("--") or "." not in target:
                raise VidgenError(f"plugin {package}: run option needs a '--flag' and a 'NAME.KEY' target, "
                                  f"got {flag!r} → {target!r}")
            if flag in found:
                log_message(f"warning: run option {flag} is registered by both {found[flag].package} and "
                            f"{package}; using the one from {package}")
            found[flag] = RunOption(flag, target, help, package)

        return register

    _collect(pm, "vidgen_register_run_options", make_register)
    return found


def _once(pm: PluginManager, what: str, discover: Callable[[PluginManager], Any]) -> Any:
    """`discover(pm)`, computed once per set of registered plugins (so warnings show once per run)."""
    plugins = frozenset((name, id(plugin)) for name, plugin in pm.list_name_plugin())
    cached = pm.discovered.get(what)
    if cached is None or cached[0] != plugins:
        cached = pm.discovered[what] = (plugins, discover(pm))
    return cached[1]


def processors(pm: PluginManager | None = None) -> dict[str, ProcessorInfo]:
    """All registered processors by name."""
    return _once(pm or default_plugin_manager(), "processors", _discover_processors)


def run_options(pm: PluginManager | None = None) -> dict[str, RunOption]:
    """`vidgen run` shorthands registered by plugins, by flag."""
    return _once(pm or default_plugin_manager(), "run_options", _discover_run_options)


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
