"""The DCGAN prior of the inpaint plugin: generator G (z → 64×64 RGB) and discriminator D."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidgen.errors import VidgenError
from vidgen.weights import load_weights, save_weights

TILE = 64
Z_DIM = 100
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "dcgan64.safetensors"
ENCODER_SUFFIX = ".encoder.safetensors"  # the encoder of prior `X.safetensors` is `X.encoder.safetensors`


class Generator(nn.Module):
    """DCGAN generator: `(N, z_dim)` in [-1, 1] → `(N, 3, 64, 64)` images in [0, 1]."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 32) -> None:
        super().__init__()
        self.z_dim, self.width = z_dim, width

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, width * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 8), nn.ReLU(True),
            *up(width * 8, width * 4), *up(width * 4, width * 2), *up(width * 2, width),
            nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1)).float() * 0.5 + 0.5


class Discriminator(nn.Module):
    """DCGAN discriminator: `(N, 3, 64, 64)` images in [0, 1] → `(N,)` real/fake logits."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]

        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
            *down(width, width * 2), *down(width * 2, width * 4), *down(width * 4, width * 8),
            nn.Conv2d(width * 8, 1, 4, 1, 0),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1).float().flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def save_gan(path: str | os.PathLike, generator: Generator, discriminator: Discriminator,
             metadata: dict[str, Any]) -> None:
    """One safetensors file holding `G.*` and `D.*` tensors, fp16, with architecture sizes in the metadata."""
    tensors = {f"G.{k}": v for k, v in generator.state_dict().items()}
    tensors.update({f"D.{k}": v for k, v in discriminator.state_dict().items()})
    meta = dict(metadata, z_dim=generator.z_dim, g_width=generator.width, d_width=discriminator.width)
    save_weights(path, tensors, meta)


def load_gan(path: str | os.PathLike | None = None) -> tuple[Generator, Discriminator, dict[str, Any]]:
    """Load G and D (eval mode) from a file written by `save_gan` (safetensors, or a weights-only .pt)."""
    tensors, meta = load_weights(path or DEFAULT_WEIGHTS)
    g_state = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    d_state = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")}
    if not g_state or not d_state:
        raise VidgenError(f"{path}: expected G.* and D.* tensors (a file written by `vidgen train inpaint`)")
    z_dim = int(meta.get("z_dim", g_state["net.0.weight"].shape[0]))
    g_width = int(meta.get("g_width", g_state["net.0.weight"].shape[1] // 8))
    d_width = int(meta.get("d_width", d_state["net.0.weight"].shape[0]))
    generator, discriminator = Generator(z_dim, g_width), Discriminator(d_width)
    try:
        generator.load_state_dict(g_state)
        discriminator.load_state_dict(d_state)
    except RuntimeError as exc:
        raise VidgenError(f"{path}: weights do not fit the DCGAN architecture ({str(exc).splitlines()[0]})") from None
    return generator.eval(), discriminator.eval(), meta


class Encoder(nn.Module):
    """z-encoder (IcGAN): a masked tile `(N, 3, 64, 64)` in [0, 1] and its known-pixel mask `(N, 1, 64, 64)`
    → the latent `(N, z_dim)` in [-1, 1] whose G(z) matches the tile, hole included."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 16) -> None:
        super().__init__()
        self.z_dim, self.width = z_dim, width

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]

        self.net = nn.Sequential(
            nn.Conv2d(4, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
            *down(width, width * 2), *down(width * 2, width * 4), *down(width * 4, width * 8),
            nn.Conv2d(width * 8, z_dim, 4, 1, 0), nn.Tanh(),
        )

    def forward(self, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([(target * 2 - 1) * known, known], 1)).float().flatten(1)


def encoder_path(prior: str | os.PathLike | None) -> Path:
    """Where the encoder of the prior file `prior` (None: the shipped one) lives: `X.encoder.safetensors`."""
    prior = Path(prior or DEFAULT_WEIGHTS)
    return prior.with_name(prior.name.removesuffix(".safetensors") + ENCODER_SUFFIX)


def generator_fingerprint(generator: Generator) -> str:
    """A short hash of G's weights as stored (fp16), so an encoder refuses a prior it was not trained for."""
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_encoder(path: str | os.PathLike, generator: Generator) -> Encoder:
    """Load an encoder (eval mode) written by `vidgen train inpaint-encoder` for the prior whose G is `generator`."""
    tensors, meta = load_weights(path)
    state = {k[2:]: v for k, v in tensors.items() if k.startswith("E.")}
    if not state:
        raise VidgenError(f"{path}: expected E.* tensors (a file written by `vidgen train inpaint-encoder`)")
    if meta.get("prior_fingerprint") != generator_fingerprint(generator):
        raise VidgenError(f"{path}: this encoder was trained for another prior ({meta.get('prior', 'unknown')}); "
                          "train one for yours with `vidgen train inpaint-encoder --prior PRIOR`")
    encoder = Encoder(int(meta.get("z_dim", generator.z_dim)), int(meta.get("e_width", 16)))
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise VidgenError(f"{path}: weights do not fit the encoder architecture ({str(exc).splitlines()[0]})") from None
    return encoder.eval()
