"""The `vidgen` command line: run, plugins, info, train, bench."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import av
import click
from click.core import ParameterSource

from vidgen.allocator import keep_freed_memory
from vidgen.bench import FrameSize
from vidgen.errors import VidgenError
from vidgen.engine import INTERRUPT_REQUESTED
from vidgen.mediaio import VIDEO_FILES, MediaIO
from vidgen.plugins import (RunOption, default_plugin_manager, get_processor_class, processors, registered_commands,
                            run_options)
from vidgen.sequences import SequenceOutput, is_frame_folder, is_pattern, sequence_input
from vidgen.trim import Trim, parse_time
from vidgen.video import EncodeSettings, probe

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".flv", ".wmv", ".mpg", ".mpeg"}


def parse_plugin_options(chain: list[str], pairs: tuple[str, ...], shorthands: list[tuple[RunOption, str]] = ()
                         ) -> list[dict[str, str]]:
    """Map `-p NAME.KEY=VALUE` (or bare `KEY=VALUE` for a one-plugin chain), and plugins' shorthand options
    (`--mask PATH` → `-p inpaint.mask=PATH`), onto the chain's plugins."""
    options: list[dict[str, str]] = [{} for _ in chain]
    for shorthand, value in shorthands:
        plugin = shorthand.target.partition(".")[0]
        if plugin not in chain:
            raise VidgenError(f"{shorthand.flag} is for the {plugin} plugin; add --plugin {plugin}")
        pairs = (f"{shorthand.target}={value}",) + pairs
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
    """Files as given; folders → the videos inside (a folder of images only: itself, an image sequence);
    glob patterns expanded (sorted); printf patterns (`frames/%05d.png`) as given."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found and not is_frame_folder(path):
                raise VidgenError(f"{path}: folder holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) "
                                  "or images")
            paths.extend(found or [path])
        elif any(ch in item for ch in "*?[") and not path.exists():
            matches = sorted(glob.glob(item))
            if not matches:
                raise VidgenError(f"{item}: no file matches")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(path)
    return paths


def batch_targets(sources: list[Path], out_dir: Path) -> list[Path]:
    """The output path in `out_dir` of each source (its name; .mp4 for other suffixes); one-line error
    when two sources would share one."""
    targets: dict[Path, Path] = {}
    for src in sources:
        stem = src.parent.name if is_pattern(src) else src.stem
        target = out_dir / (src.name if src.suffix.lower() in VIDEO_SUFFIXES else stem + ".mp4")
        if target in targets:
            raise VidgenError(f"{targets[target]} and {src} would both be written to {target}; "
                              "rename one or process them separately")
        targets[target] = src
    return list(targets)


def quality_options(codec: str, given: dict[str, object], log: Callable[[str], None]) -> dict[str, str]:
    """Encoder options for the `--crf`/`--preset` values the user gave (`given`): passed on when `codec`
    has such an option, a warning otherwise (they would be ignored)."""
    try:
        known = {option.name for option in av.CodecContext.create(codec, "w").supported_options.private}
    except (ValueError, av.FFmpegError):
        return {}  # an unknown encoder is reported when the writer opens it
    passed = {}
    for name, value in given.items():
        if name in known:
            passed[name] = str(value)
        else:
            log(f"warning: encoder {codec} has no {name} option: --{name} is ignored (see --encoder-opt)")
    return passed


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


SHORTHANDS = "vidgen.run_shorthands"


class RunCommand(click.Command):
    """`vidgen run`, plus the shorthand options plugins register (`--mask PATH` → `-p inpaint.mask=PATH`)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        *params, help_option = super().get_params(ctx)
        taken = {opt for param in params for opt in param.opts}
        for shorthand in run_options().values():
            if shorthand.flag in taken:
                continue
            params.append(click.Option([shorthand.flag], expose_value=False,
                                       help=f"{shorthand.help} (-p {shorthand.target}=VALUE)",
                                       callback=_shorthand_callback(shorthand)))
        return [*params, help_option]


def _shorthand_callback(shorthand: RunOption) -> Callable[[click.Context, click.Parameter, Any], None]:
    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.meta.setdefault(SHORTHANDS, []).append((shorthand, value))

    return remember


@cli.command(cls=RunCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True,
              help="Output file (one input), folder (several inputs) or image pattern ('out/%05d.png').")
@click.option("--plugin", "plugin_names", multiple=True, help="Processor to apply; repeat for a chain, applied in order.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME.KEY=VALUE", help="Processor option.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
@click.option("--group-size", type=click.IntRange(1), help="Frames per group for every processor (default: each processor's own).")
@click.option("--codec", default="libx264", show_default=True)
@click.option("--crf", type=int, default=18, show_default=True)
@click.option("--preset", default="medium", show_default=True)
@click.option("--pix-fmt", default=None, help="Output pixel format (default: the input's when the codec takes it, keeping 10-bit).")
@click.option("--encoder-opt", "encoder_opts", multiple=True, metavar="KEY=VALUE", help="Extra encoder option; repeatable.")
@click.option("--fps", "sequence_fps", type=float, help="Frame rate of image-sequence inputs ('frames/%05d.png' or a folder of images).")
@click.option("--start", metavar="T", help="Start at T (seconds, or [H:]M:S) instead of the beginning.")
@click.option("--duration", metavar="T", help="Process T (seconds, or [H:]M:S) of video only.")
@click.option("--frames", "max_frames", type=click.IntRange(1), help="Process at most this many frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--strict", is_flag=True, help="Fail on damaged input instead of decoding what can be decoded.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="ray: spread videos and segments of long videos over a Ray cluster (pip install 'vidgen[ray]').")
@click.option("--ray-address", envvar="RAY_ADDRESS", show_envvar=True,
              help="Ray cluster to join (default: a local Ray started for this run).")
@click.option("--segment-frames", type=click.IntRange(0), default=1500, show_default=True,
              help="With --engine ray: cut videos longer than this at keyframes into segments (0: never). "
                   "With --resume on the local engine: frames per kept segment (default: a minute of work each).")
@click.option("--workers", type=click.IntRange(1), help="With --engine ray: number of actors (default: one per GPU, else one per CPU).")
@click.option("--resume", is_flag=True,
              help="Keep finished work in OUTPUT.vidgen-work/ and continue an interrupted run there (docs/resume.md).")
def run(inputs: tuple[str, ...], output: str, plugin_names: tuple[str, ...], params: tuple[str, ...],
        device: str, precision: str, group_size: int | None, codec: str, crf: int,
        preset: str, pix_fmt: str | None, encoder_opts: tuple[str, ...], sequence_fps: float | None, start: str | None,
        duration: str | None, max_frames: int | None, overwrite: bool, strict: bool, quiet: bool,
        engine: str, ray_address: str | None, segment_frames: int, workers: int | None, resume: bool) -> None:
    """Process INPUTS (files, folders or globs) into OUTPUT."""
    from vidgen.engine import run as run_pipeline
    from vidgen.resume import run_manifest, run_resumable, work_folder

    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    ray_only = {"workers", "ray_address"} if resume else {"workers", "segment_frames", "ray_address"}
    if engine == "local" and given & ray_only:
        flag = "--" + sorted(given & ray_only)[0].replace("_", "-")
        also = " (or --resume)" if flag == "--segment-frames" else ""
        raise VidgenError(f"{flag} is for --engine ray{also}; the local engine runs one process")
    trim = None
    if start is not None or duration is not None or max_frames is not None:
        if engine == "ray":
            raise VidgenError("--start/--duration/--frames work with the local engine only")
        if resume:
            raise VidgenError("--resume continues whole videos; it does not work with --start/--duration/--frames")
        trim = Trim(parse_time(start or "0"), parse_time(duration) if duration else None, max_frames)
    sequence_out = SequenceOutput(Path(output), overwrite) if is_pattern(output) else None
    chain = list(plugin_names)
    options = parse_plugin_options(chain, params, ctx.meta.get(SHORTHANDS, []))
    for name in chain:
        get_processor_class(name)  # unknown names fail before any work
    log = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    quality = quality_options(codec, {k: v for k, v in (("crf", crf), ("preset", preset)) if k in given}, log)
    settings = EncodeSettings(codec, crf, preset, pix_fmt, {**quality, **encoder_options(encoder_opts)})
    sources = expand_inputs(inputs)
    batch = len(sources) > 1 or sources[0] != Path(inputs[0]) or any(ch in inputs[0] for ch in "*?[")
    sequences = [src for src in sources if is_pattern(src) or src.is_dir()]
    if (sequences or sequence_out) and engine == "ray":
        raise VidgenError("image sequences work with the local engine only")
    if sequences and sequence_fps is None:
        raise VidgenError(f"{sequences[0]}: an image-sequence input needs --fps")
    if sequence_fps is not None and not sequences:
        raise VidgenError("--fps is for image-sequence inputs (videos have their own frame rate)")
    if sequence_out and batch:
        raise VidgenError(f"{output}: an image-sequence output takes one input")
    if resume and sequences:
        raise VidgenError("--resume works on video inputs; image-sequence inputs cannot resume yet")

    def media(src: Path) -> MediaIO:
        io = sequence_input(VIDEO_FILES, sequence_fps) if src in sequences else VIDEO_FILES
        io = sequence_out.apply(io) if sequence_out else io
        return trim.apply(io) if trim else io

    if batch:
        out_dir = Path(output)
        if out_dir.exists() and not out_dir.is_dir():
            raise VidgenError(f"{out_dir}: several inputs need an output folder")
        targets = batch_targets(sources, out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        targets = [Path(output)]
    progress = not quiet and sys.stderr.isatty()
    noted: set[str] = set()

    def build() -> list:
        procs = [get_processor_class(name)(**opts) for name, opts in zip(chain, options)]
        if group_size:
            for proc in procs:
                if proc.group_size != group_size and proc.name not in noted:
                    noted.add(proc.name)
                    log(f"note: --group-size {group_size} replaces {proc.name}'s own group size {proc.group_size} "
                        f"(from its options)")
                proc.group_size = group_size
        return procs

    rows: list[tuple[str, str, str, str]] = []
    failures = 0
    result_options = {"codec": codec, "crf": crf, "preset": preset, "pix_fmt": pix_fmt,
                      "encoder_options": settings.options, "device": device, "precision": precision,
                      "group_size": group_size, "strict": strict}

    def manifest(src: Path) -> dict[str, Any]:
        return run_manifest(src, list(zip(chain, options)), result_options)

    if resume:
        pending = []
        for src, dst in zip(sources, targets):
            if dst.exists() and not work_folder(dst).is_dir() and not overwrite:
                rows.append((str(src), "-", "-", "finished earlier"))
                log(f"{dst}: already finished; skipped (--resume)")
            else:
                pending.append((src, dst))
    else:
        pending = list(zip(sources, targets))
        for _, dst in pending:
            work = work_folder(dst)
            if work.is_dir() and overwrite:
                shutil.rmtree(work)
            elif work.is_dir():
                raise VidgenError(f"{dst}: {work} holds the finished part of an interrupted run; add --resume to "
                                  "continue it, or --overwrite to start over")
    if engine == "ray":
        from vidgen.distributed import ChainSpec, run_batch

        try:
            outcomes = run_batch(pending, ChainSpec(tuple(zip(chain, options)), group_size),
                                 encode=settings, device=device, precision=precision, overwrite=overwrite,
                                 address=ray_address, segment_frames=segment_frames, workers=workers,
                                 worker_logs=not quiet, strict=strict, log=log,
                                 manifests={src: manifest(src) for src, _ in pending} if resume else None)
        except KeyboardInterrupt:
            if resume:
                raise KeyboardInterrupt("the finished segments are kept in each OUTPUT.vidgen-work folder: run the "
                                        "same command again with --resume to continue") from None
            raise
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
        for src, dst in pending:
            try:
                if resume:
                    result = run_resumable(src, dst, build(), manifest(src), encode=settings, device=device,
                                           precision=precision, overwrite=overwrite, progress=progress,
                                           strict=strict, log=log, images=sequence_out,
                                           segment_frames=segment_frames if "segment_frames" in given else None)
                else:
                    result = run_pipeline(src, dst, build(), encode=settings, device=device, precision=precision,
                                          overwrite=overwrite, progress=progress, strict=strict, log=log,
                                          io=media(src))
                fps = result.frames / result.seconds if result.seconds else 0.0
                rows.append((str(src), str(result.frames), f"{fps:.1f}", "ok"))
                if not batch and not quiet:
                    click.echo(f"{dst}: {result.frames} frames in {result.seconds:.1f} s ({fps:.1f} fps)", err=True)
            except VidgenError as exc:
                if not batch:
                    raise
                failures += 1
                rows.append((str(src), "-", "-", f"failed: {exc}"))
            except KeyboardInterrupt:
                if resume and work_folder(dst).is_dir():
                    raise KeyboardInterrupt(f"the finished segments are kept in {work_folder(dst)}: run the same "
                                            "command again with --resume to continue") from None
                raise
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
    flags = {shorthand.target: flag for flag, shorthand in run_options().items()}
    entries = []
    for name, info in sorted(processors().items()):
        options = []
        for o in info.cls.options:
            entry = {"name": o.name, "type": o.type_name, "default": _jsonable(o.default), "help": o.help}
            if o.choices:
                entry["choices"] = [_jsonable(c) for c in o.choices]
            if f"{name}.{o.name}" in flags:
                entry["run_option"] = flags[f"{name}.{o.name}"]
            options.append(entry)
        entries.append({"name": name, "description": info.cls.description, "package": info.package,
                        "version": info.version, "options": options})
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry['name']} ({entry['package']} {entry['version']}): {entry['description']}")
        for option in entry["options"]:
            choices = f" [{'|'.join(map(str, option['choices']))}]" if "choices" in option else ""
            setting = f"{entry['name']}.{option['name']}={'' if option['default'] is None else option['default']}"
            shorthand = f" (vidgen run {option['run_option']})" if "run_option" in option else ""
            click.echo(f"    {setting:<28} {option['type']}{choices}: {option['help']}{shorthand}")


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


@cli.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a contact sheet PNG: chosen frames of A and B side by side.")
@click.option("--frames", "sheet_frames", metavar="N,N,...", help="Frames on the sheet (default: 4 spread evenly).")
@click.option("--overwrite", is_flag=True, help="Replace an existing sheet.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (PSNR null: identical frames).")
def compare_videos(a: str, b: str, sheet: Path | None, sheet_frames: str | None, overwrite: bool, as_json: bool) -> None:
    """Per-frame and mean PSNR/SSIM of B against A (same length; B scaled to A's size if they differ)."""
    from vidgen.compare import compare, contact_sheet, sheet_indices, write_png

    if sheet is not None and sheet.exists() and not overwrite:
        raise VidgenError(f"{sheet}: already exists (use --overwrite to replace it)")
    chosen = set(sheet_indices(probe(a).frame_count, sheet_frames)) if sheet is not None else set()
    result, kept = compare(a, b, chosen, log=lambda message: click.echo(message, err=True))
    if sheet is not None:
        write_png(sheet, contact_sheet(kept, result), overwrite)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(f"{'frame':>6}  {'PSNR dB':>9}  {'SSIM':>7}")
    for index, (value, similarity) in enumerate(zip(result.psnr, result.ssim)):
        click.echo(f"{index:>6}  {'identical' if value is None else f'{value:.3f}':>9}  {similarity:>7.4f}")
    mean = result.mean_psnr
    click.echo(f"{'mean':>6}  {'identical' if mean is None else f'{mean:.3f}':>9}  {result.mean_ssim:>7.4f}")


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
@click.option("--seconds", default=20.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Length of the generated test clip.")
@click.option("--size", default="640x360", show_default=True, type=FrameSize())
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1), help="Runs of each command (median reported).")
def bench_io(seconds: float, size: tuple[int, int], repeats: int) -> None:
    """vidgen's frame path vs the ffmpeg CLI, and peak memory for a clip vs one 8x longer."""
    from vidgen.benchmarks import io_benchmark

    io_benchmark(seconds, *size, repeats)


class EchoHandler(logging.Handler):
    """Shows the `vidgen` logger's records on stderr (the stream current at each message)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: Python's KeyboardInterrupt, remembered for the engine in case Python drops it."""
    INTERRUPT_REQUESTED.set()
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    logger = logging.getLogger("vidgen")
    if not any(isinstance(handler, EchoHandler) for handler in logger.handlers):
        logger.addHandler(EchoHandler(logging.WARNING))
    # Decode, compute and encode share the cores: torch's OpenMP threads must sleep, not spin, while they
    # wait, or they starve the encoder's threads (measured: 2x slower no-plugin runs with spinning).
    # Set before torch is first imported (plugins load lazily); set OMP_WAIT_POLICY yourself to override.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_memory()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when Ctrl-C is ignored
        signal.signal(signal.SIGINT, _interrupt)
    debug = bool(os.environ.get("VIDGEN_DEBUG"))
    try:
        default_plugin_manager().hook.vidgen_register_commands(cli=cli)
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's form of Ctrl-C; a resumable run says what it kept
        kept = str(exc.__cause__ or "")
        click.echo(f"interrupted; {kept}" if kept else "interrupted", err=True)
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
