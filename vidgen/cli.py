"""The `vidgen` command line: run, plugins, info, train, bench."""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from vidgen.errors import VidgenError
from vidgen.plugins import default_plugin_manager, get_processor_class, processors, registered_commands
from vidgen.video import EncodeSettings, probe

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".flv", ".wmv", ".mpg", ".mpeg"}


def parse_plugin_options(chain: list[str], pairs: tuple[str, ...], mask: str | None) -> list[dict[str, str]]:
    """Map `-p NAME.KEY=VALUE` (or bare `KEY=VALUE` for a one-plugin chain) onto the chain's plugins."""
    options: list[dict[str, str]] = [{} for _ in chain]
    if mask is not None:
        pairs = (f"inpaint.mask={mask}",) + pairs
        if "inpaint" not in chain:
            raise VidgenError("--mask is for the inpaint plugin; add --plugin inpaint")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise VidgenError(f"-p {pair!r}: expected NAME.KEY=VALUE")
        name, dot, option = key.partition(".")
        if not dot:
            if len(chain) != 1:
                raise VidgenError(f"-p {pair!r}: name the plugin (NAME.KEY=VALUE) when the chain has {len(chain)} plugins")
            name, option = chain[0], key
        if name not in chain:
            raise VidgenError(f"-p {pair!r}: plugin {name!r} is not in the chain ({', '.join(chain) or 'empty'})")
        for position, plugin in enumerate(chain):
            if plugin == name:
                options[position][option] = value
    return options


def expand_inputs(inputs: tuple[str, ...]) -> list[Path]:
    """Files as given; folders → the videos inside; glob patterns expanded (sorted)."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise VidgenError(f"{path}: folder holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            paths.extend(found)
        elif any(ch in item for ch in "*?[") and not path.exists():
            matches = sorted(glob.glob(item))
            if not matches:
                raise VidgenError(f"{item}: no file matches")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(path)
    return paths


def encoder_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise VidgenError(f"--encoder-opt {pair!r}: expected KEY=VALUE")
        options[key] = value
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vidgen")
def cli() -> None:
    """Stream videos through generative processors (inpaint, sr, denoise, seg2vid, and plugins)."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Output file (one input) or folder (several inputs).")
@click.option("--plugin", "plugin_names", multiple=True, help="Processor to apply; repeat for a chain, applied in order.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME.KEY=VALUE", help="Processor option.")
@click.option("--mask", help="Shorthand for -p inpaint.mask=PATH.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
@click.option("--group-size", type=click.IntRange(1), help="Frames per group for every processor (default: each processor's own).")
@click.option("--codec", default="libx264", show_default=True)
@click.option("--crf", type=int, default=18, show_default=True)
@click.option("--preset", default="medium", show_default=True)
@click.option("--pix-fmt", default=None, help="Output pixel format (default: the input's when the codec takes it, keeping 10-bit).")
@click.option("--encoder-opt", "encoder_opts", multiple=True, metavar="KEY=VALUE", help="Extra encoder option; repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="ray: spread videos and segments of long videos over a Ray cluster (pip install 'vidgen[ray]').")
@click.option("--ray-address", envvar="RAY_ADDRESS", show_envvar=True,
              help="Ray cluster to join (default: a local Ray started for this run).")
@click.option("--segment-frames", type=click.IntRange(0), default=1500, show_default=True,
              help="With --engine ray: cut videos longer than this at keyframes into segments (0: never).")
@click.option("--workers", type=click.IntRange(1), help="With --engine ray: number of actors (default: one per GPU, else one per CPU).")
def run(inputs: tuple[str, ...], output: str, plugin_names: tuple[str, ...], params: tuple[str, ...],
        mask: str | None, device: str, precision: str, group_size: int | None, codec: str, crf: int,
        preset: str, pix_fmt: str | None, encoder_opts: tuple[str, ...], overwrite: bool, quiet: bool,
        engine: str, ray_address: str | None, segment_frames: int, workers: int | None) -> None:
    """Process INPUTS (files, folders or globs) into OUTPUT."""
    from vidgen.engine import run as run_pipeline

    chain = list(plugin_names)
    options = parse_plugin_options(chain, params, mask)
    for name in chain:
        get_processor_class(name)  # unknown names fail before any work
    settings = EncodeSettings(codec, crf, preset, pix_fmt, encoder_options(encoder_opts))
    sources = expand_inputs(inputs)
    batch = len(sources) > 1 or Path(inputs[0]).is_dir() or any(ch in inputs[0] for ch in "*?[")
    if batch:
        out_dir = Path(output)
        if out_dir.exists() and not out_dir.is_dir():
            raise VidgenError(f"{out_dir}: several inputs need an output folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        targets = [out_dir / (src.stem + ".mp4" if src.suffix.lower() not in VIDEO_SUFFIXES else src.name) for src in sources]
    else:
        targets = [Path(output)]
    progress = not quiet and sys.stderr.isatty()
    log = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))

    def build() -> list:
        procs = [get_processor_class(name)(**opts) for name, opts in zip(chain, options)]
        if group_size:
            for proc in procs:
                proc.group_size = group_size
        return procs

    rows: list[tuple[str, str, str, str]] = []
    failures = 0
    if engine == "ray":
        from vidgen.distributed import ChainSpec, run_batch

        outcomes = run_batch(list(zip(sources, targets)), ChainSpec(tuple(zip(chain, options)), group_size),
                             encode=settings, device=device, precision=precision, overwrite=overwrite,
                             address=ray_address, segment_frames=segment_frames, workers=workers,
                             worker_logs=not quiet, log=log)
        for outcome in outcomes:
            if outcome.error is not None:
                if not batch:
                    raise VidgenError(outcome.error)
                failures += 1
                rows.append((str(outcome.source), "-", "-", f"failed: {outcome.error}"))
                continue
            fps = outcome.frames / outcome.seconds if outcome.seconds else 0.0
            rows.append((str(outcome.source), str(outcome.frames), f"{fps:.1f}", "ok"))
            if not batch and not quiet:
                click.echo(f"{outcome.output}: {outcome.frames} frames in {outcome.seconds:.1f} s ({fps:.1f} fps)", err=True)
    else:
        for src, dst in zip(sources, targets):
            try:
                result = run_pipeline(src, dst, build(), encode=settings, device=device, precision=precision,
                                      overwrite=overwrite, progress=progress, log=log)
                fps = result.frames / result.seconds if result.seconds else 0.0
                rows.append((str(src), str(result.frames), f"{fps:.1f}", "ok"))
                if not batch and not quiet:
                    click.echo(f"{dst}: {result.frames} frames in {result.seconds:.1f} s ({fps:.1f} fps)", err=True)
            except VidgenError as exc:
                if not batch:
                    raise
                failures += 1
                rows.append((str(src), "-", "-", f"failed: {exc}"))
    if batch:
        if not quiet:
            width = max(len(r[0]) for r in rows)
            click.echo(f"{'file':<{width}}  {'frames':>7}  {'fps':>7}  status")
            for file, frames, fps, status in rows:
                click.echo(f"{file:<{width}}  {frames:>7}  {fps:>7}  {status}")
        if failures:
            raise VidgenError(f"{failures} of {len(rows)} file(s) failed")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_plugins(as_json: bool) -> None:
    """List installed processors with their source package and options."""
    entries = []
    for name, info in sorted(processors().items()):
        entries.append({
            "name": name,
            "description": info.cls.description,
            "package": info.package,
            "version": info.version,
            "options": [
                {"name": o.name, "type": o.type_name, "default": _jsonable(o.default), "help": o.help,
                 **({"choices": list(o.choices)} if o.choices else {})}
                for o in info.cls.options
            ],
        })
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry['name']} ({entry['package']} {entry['version']}): {entry['description']}")
        for option in entry["options"]:
            choices = f" [{'|'.join(option['choices'])}]" if "choices" in option else ""
            setting = f"{entry['name']}.{option['name']}={'' if option['default'] is None else option['default']}"
            click.echo(f"    {setting:<28} {option['type']}{choices}: {option['help']}")


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None), list)) else str(value)


@cli.command()
@click.argument("video")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(video: str, as_json: bool) -> None:
    """Describe VIDEO: streams, codec, size, fps, frames (counted), duration, colour, rotation."""
    described = probe(video)
    if as_json:
        click.echo(json.dumps(described.as_dict(), indent=2))
        return
    d = described
    duration = f"{d.duration:.3f} s" if d.duration is not None else "unknown"
    click.echo(f"{d.path}: {d.container}, {duration}")
    click.echo(f"  video: {d.codec} {d.width}x{d.height} {d.pix_fmt} ({d.bit_depth}-bit), {d.fps:.3f} fps, "
               f"{d.frame_count} frames, rotation {d.rotation}")
    click.echo("  colour: " + ", ".join(f"{k} {v}" for k, v in d.colour.items()))
    for stream in d.streams:
        extra = ", ".join(f"{k} {v}" for k, v in stream.items() if k not in ("index", "type", "codec"))
        click.echo(f"  #{stream['index']} {stream['type']}: {stream['codec']}" + (f" ({extra})" if extra else ""))


class PluginCommands(click.Group):
    """A group whose subcommands come from a plugin hook (`vidgen train NAME`, `vidgen bench NAME`)."""

    def __init__(self, *args: Any, hook: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook = hook

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(registered_commands(self.hook)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or registered_commands(self.hook).get(name)


@cli.group(cls=PluginCommands, hook="vidgen_register_trainers")
def train() -> None:
    """Train a processor's model on your own data (see `vidgen train NAME --help`)."""


@cli.group(cls=PluginCommands, hook="vidgen_register_benchmarks")
def bench() -> None:
    """Side-by-side measurements (`io` for the pipeline itself; plugins add their own)."""


@bench.command("io")
@click.option("--seconds", default=20.0, show_default=True, help="Length of the generated test clip.")
@click.option("--size", default="640x360", show_default=True)
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1), help="Runs of each command (median reported).")
def bench_io(seconds: float, size: str, repeats: int) -> None:
    """vidgen's frame path vs the ffmpeg CLI, and peak memory for a clip vs one 8x longer."""
    from vidgen.benchmarks import io_benchmark

    width, height = (int(v) for v in size.split("x"))
    io_benchmark(seconds, width, height, repeats)


def main() -> None:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    debug = bool(os.environ.get("VIDGEN_DEBUG"))
    try:
        default_plugin_manager().hook.vidgen_register_commands(cli=cli)
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except VidgenError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; no output written", err=True)
        sys.exit(130)
    except Exception as exc:  # last resort: still one line, with VIDGEN_DEBUG=1 for the traceback
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (set VIDGEN_DEBUG=1 for details)", err=True)
        sys.exit(1)
