"""vidgen inpaint processor: GAN video inpainting with z-search, reused noise priors and group consistency."""

from __future__ import annotations

import vidgen


@vidgen.hookimpl
def vidgen_register_processors(register):
    from vidgen_inpaint.processor import Inpaint

    register(Inpaint)


@vidgen.hookimpl
def vidgen_register_run_options(register):
    register("--mask", "inpaint.mask", "Mask image, mask video or folder of masks")


@vidgen.hookimpl
def vidgen_register_trainers(register):
    from vidgen_inpaint.train import train_command
    from vidgen_inpaint.train_encoder import train_command as train_encoder_command

    register("inpaint", train_command)
    register("inpaint-encoder", train_encoder_command)


@vidgen.hookimpl
def vidgen_register_benchmarks(register):
    from vidgen_inpaint.bench import bench_command
    from vidgen_inpaint.init_bench import bench_command as init_bench_command
    from vidgen_inpaint.mask_bench import bench_command as mask_bench_command

    register("inpaint", bench_command)
    register("inpaint-init", init_bench_command)
    register("mask", mask_bench_command)


@vidgen.hookimpl
def vidgen_register_commands(cli):
    from vidgen_inpaint.mask_cli import mask_command

    cli.add_command(mask_command)
