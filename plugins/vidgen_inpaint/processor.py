"""The `inpaint` processor: temporal propagation, then a GAN latent search for what no frame shows."""

from __future__ import annotations

import copy
import math
import numbers
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vidgen import FrameGroup, Option, Processor, ProcessorContext, VidgenError, frames_to_uint8, uint8_to_frames
from vidgen_inpaint.masks import MaskSource, detect_static_overlay, dilate, parse_boxes, sample_video_frames
from vidgen_inpaint.model import TILE, Encoder, encoder_path, load_encoder, load_gan
from vidgen_inpaint.propagate import Propagated, StreamPropagator, View
from vidgen_inpaint.search import (SearchSettings, consistency_pairs, match_colours, nearest_latents,
                                   poisson_blend, random_latents, search_latents)

HOLE_SHARE = 40 / TILE  # a hole spans at most this share of its tile; the rest is context
SPECK_PIXELS = 256  # unseen=mix: pieces of fewer unknown pixels (16×16) are left to Telea alone
# the first search of a new hole, by initialisation: (steps, starting learning rate), annealed to a tenth
FIRST_SEARCH = {"pool": (150, 0.1), "encoder": (10, 0.01)}


@dataclass
class Tile:
    """A square region of one core frame, searched as one 64×64 tile; it fills the hole pixels it owns.

    `x0, y0, size`: the region in frame pixels (may reach outside the frame); `owned`: (x0, y0, x1, y1).
    """

    frame: int
    x0: int
    y0: int
    size: int
    owned: tuple[int, int, int, int]
    track: int = -1

    @property
    def centre(self) -> tuple[float, float]:
        return self.x0 + self.size / 2, self.y0 + self.size / 2


@dataclass
class TrackEnd:
    """The last tile of a track and its converged latent, carried to the next group."""

    tile: Tile
    z: torch.Tensor


@dataclass
class InpaintStats:
    """Counters of one stream (read by the benchmark)."""

    frames: int = 0
    tiles: int = 0
    search_steps: int = 0  # optimiser steps summed over searches (each step updates a whole batch)
    hole_pixels: int = 0
    propagated_pixels: int = 0
    fit_seconds: float = 0.0
    steps_per_search: list[int] = field(default_factory=list)


def plan_tiles(unknown: np.ndarray, frame: int, merge: int = 4) -> list[Tile]:
    """Cover the unknown pixels `(H, W)` bool of a frame with square tiles.

    Nearby pieces (within `merge` px) share tiles. A tile is at least 64 px and big enough that the hole's
    short side spans at most 40/64 of it; long holes get a row (or column) of tiles, each owning a slice.
    """
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(dilate(unknown, merge).astype(np.uint8), connectivity=8)
    tiles = []
    for x, y, w, h, _ in stats[1:count]:
        size = max(TILE, math.ceil(min(w, h) / HOLE_SHARE))
        span = size * HOLE_SHARE
        nx, ny = math.ceil(w / span), math.ceil(h / span)
        for j in range(ny):
            for i in range(nx):
                ox0, ox1 = x + (w * i) // nx, x + (w * (i + 1)) // nx
                oy0, oy1 = y + (h * j) // ny, y + (h * (j + 1)) // ny
                cx, cy = (ox0 + ox1) // 2, (oy0 + oy1) // 2
                tiles.append(Tile(frame, cx - size // 2, cy - size // 2, size, (ox0, oy0, ox1, oy1)))
    return tiles


def without_specks(unknown: np.ndarray, least: int, merge: int = 4) -> np.ndarray:
    """`unknown` `(N, H, W)` bool without the pieces (grouped as `plan_tiles` groups them) of fewer than `least`
    pixels: specks that Telea fills as well as a 64×64 GAN tile would, at a fraction of the cost."""
    import cv2

    kept = unknown.copy()
    for frame in kept:
        count, labels = cv2.connectedComponents(dilate(frame, merge).astype(np.uint8), connectivity=8)
        sizes = np.bincount(labels[frame], minlength=count)
        frame[sizes[labels] < least] = False
    return kept


def match_track(tile: Tile, previous: list[Tile]) -> Tile | None:
    """The tile of the previous frame that covers the same hole (close centre, similar size), if any."""
    best, best_distance = None, float("inf")
    for other in previous:
        distance = math.dist(tile.centre, other.centre)
        if distance < 0.5 * tile.size and 0.67 < other.size / tile.size < 1.5 and distance < best_distance:
            best, best_distance = other, distance
    return best


def mask_source(value: object) -> str | np.ndarray:
    """The `mask` option: a path (str or os.PathLike), or from Python an `(H, W)` / `(T, H, W)` array."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise TypeError(f"expected a path or an (H, W) / (T, H, W) array, got {type(value).__name__}")


def boxes(value: object) -> list[tuple[int, int, int, int]]:
    """The `box` option: 'x,y,w,h' (several separated by ';'), or from Python `(x, y, w, h)` or a list of them."""
    if isinstance(value, str):
        return parse_boxes(value)
    items = list(value) if isinstance(value, (tuple, list)) else None
    if items and all(isinstance(v, numbers.Integral) for v in items):
        items = [items]
    if not items or not all(isinstance(box, (tuple, list)) for box in items):
        raise TypeError(f"expected (x, y, w, h), a list of them or 'x,y,w,h', got {value!r}")
    return parse_boxes(";".join(",".join(str(v) for v in box) for box in items))


class Inpaint(Processor):
    name = "inpaint"
    description = "Fill masked regions (or detected static overlays) with a GAN prior; temporally consistent."
    options = (
        Option("mask", mask_source, None, "mask image, mask video or folder of per-frame masks (white = fill); "
               "from Python also an (H, W) or (T, H, W) array; none: detect static overlays"),
        Option("box", boxes, None, "region(s) to fill as x,y,w,h (several separated by ';'); "
               "from Python also (x, y, w, h) or a list of them"),
        Option("dilate", int, 2, "grow the mask by this many pixels"),
        Option("schedule", str, "video", "video: reuse z across frames + group consistency + early stop; "
               "per-frame: Yeh baseline (fresh random z, fixed iterations)", choices=("video", "per-frame")),
        Option("propagate", bool, True, "copy hidden pixels from the previous output, the next frames or keyframes "
               "that show them (optical flow) first"),
        Option("lookahead", int, 3, "with propagation: input frames after each frame searched for its hidden pixels"),
        Option("smooth", float, 0.9, "with propagation and schedule=video: weight of the previous output frame, "
               "moved along the scene's motion, in GAN-filled pixels (0 = off)"),
        Option("iterations", int, 1000, "per-frame: iterations per frame; video: most iterations per search"),
        Option("refine", int, 5, "video: most steps of each group's joint refinement of the carried latents"),
        Option("window", int, 4, "frames in the group-consistency window W"),
        Option("consistency", float, 0.05, "weight of the group-consistency loss |z_i - z_j|"),
        Option("perceptual", float, 0.01, "weight of the perceptual (discriminator) loss"),
        Option("pool", int, 64, "latents sampled for the nearest-neighbour initialisation"),
        Option("init", str, "auto", "start of a new hole's latent: encoder (the z-encoder beside the weights, "
               "X.encoder.safetensors), pool (Lahiri's pool search) or auto (encoder where there is one)",
               choices=("auto", "encoder", "pool")),
        Option("blend", str, "poisson", "how G's fill meets the context: poisson (gradient-domain), match (the "
               "context ring's mean/std per channel, then poisson) or none", choices=("poisson", "match", "none")),
        Option("unseen", str, "mix", "what fills pixels no frame shows: gan, telea (OpenCV's fast marching) or mix "
               "(the mean of both; pieces under 256 px Telea alone)", choices=("gan", "telea", "mix")),
        Option("fit", int, 0, "fine-tune the GAN for this many steps on the video's visible content first"),
        Option("weights", str, None, "G/D weights file (safetensors from `vidgen train inpaint`)"),
        Option("group", int, 8, "frames per group (searched together)"),
        Option("seed", int, 0, "random seed of the latent search"),
    )

    def __init__(self, **options) -> None:
        super().__init__(**options)
        s = self.settings
        if min(s.group, s.window, s.iterations, s.refine, s.pool) < 1 or s.dilate < 0 or s.fit < 0:
            raise VidgenError("inpaint: group, window, iterations, refine and pool must be >= 1; dilate and fit >= 0")
        if s.lookahead < 0:
            raise VidgenError(f"inpaint: lookahead must be >= 0, got {s.lookahead}")
        if not 0 <= s.smooth < 1:
            raise VidgenError(f"inpaint: smooth must be in [0, 1), got {s.smooth}")
        self.boxes = s.box or []
        self.group_size = s.group
        self.context = (0, s.lookahead) if s.propagate else (0, 0)
        self.warmup_frames = s.group  # the converged z of earlier frames seeds the next search
        self.first_search = dict(FIRST_SEARCH)

    def setup(self, context: ProcessorContext) -> None:
        super().setup(context)
        s = self.settings
        self.netG, self.netD, self.weights_meta = load_gan(s.weights)
        self.encoder = self._load_encoder()
        self._prepare_networks()
        self._start_stream()

    def reset(self) -> None:
        if self.settings.fit:  # the previous stream fine-tuned the GAN: start again from the weights file
            self.setup(self.ctx)
        else:
            self.masks.close()
            self._start_stream()

    def abort(self) -> None:
        self.masks.close()

    def _start_stream(self) -> None:
        """The per-stream state: masks, overlay detection, latent tracks, random generator, counters."""
        s, video = self.settings, self.ctx.video
        self.masks = MaskSource(s.mask, self.boxes, video.width, video.height, s.dilate)
        self.overlay_pending = not self.masks.given
        if self.masks.empty:
            self.ctx.log("inpaint: the mask marks no pixel (white = fill): frames pass through unchanged")
        if self.overlay_pending and video.path is not None:
            self._detect_overlay(sample_video_frames(video.path))
        self.rng = torch.Generator(self.device).manual_seed(s.seed)
        self.tracks: list[TrackEnd] = []
        self.next_track = 0
        self.fit_pending = s.fit > 0
        self.stats = InpaintStats()
        self.propagator = StreamPropagator(lookahead=s.lookahead)

    def _load_encoder(self) -> Encoder | None:
        """The z-encoder of the weights (None for init=pool, or for init=auto when the weights have none)."""
        path = encoder_path(self.settings.weights)
        if self.settings.init == "pool" or (self.settings.init == "auto" and not path.is_file()):
            return None
        if not path.is_file():
            raise VidgenError(f"inpaint: init=encoder needs {path} (train it with `vidgen train inpaint-encoder "
                              f"--prior {self.settings.weights or 'PRIOR'} --out {path.name}`)")
        return load_encoder(path, self.netG)

    def _prepare_networks(self) -> None:
        for net in (self.netG, self.netD, *([self.encoder] if self.encoder is not None else [])):
            net.to(self.device).eval()
            for parameter in net.parameters():
                parameter.requires_grad_(False)

    def _detect_overlay(self, frames: np.ndarray) -> None:
        mask, boxes = detect_static_overlay(frames)
        listed = ", ".join(f"{w}x{h} at ({x},{y})" for x, y, w, h in boxes)
        self.ctx.log(f"inpaint: no mask given; detected {len(boxes)} static overlay region(s): {listed}")
        self.masks.set_static(mask)
        self.overlay_pending = False

    def search_settings(self, per_frame: bool) -> SearchSettings:
        s = self.settings
        return SearchSettings(max_steps=s.iterations, perceptual_weight=s.perceptual,
                              consistency_weight=0.0 if per_frame else s.consistency, early_stop=not per_frame)

    def process(self, group: FrameGroup) -> FrameGroup:
        frames = group.frames.float()
        as_uint8 = frames_to_uint8(frames)
        if self.overlay_pending:
            self._detect_overlay(as_uint8)
        masks = np.stack([self.masks(i) for i in group.indices])
        core = list(range(len(group.indices)))[group.core]
        self.stats.frames += len(core)
        if not masks[core].any():
            return group.with_frames(frames[group.core])
        if self.settings.propagate:
            propagated = self._propagate(as_uint8, masks, group.indices, core)
            filled = np.stack([result.frame for result in propagated])
            unknown = np.stack([result.unknown for result in propagated])
            out = uint8_to_frames(filled, self.device)
            out = torch.where(torch.from_numpy(masks[core]).to(self.device)[:, None], out, frames[group.core])
        else:
            out, unknown = frames[group.core].clone(), masks[core]
        self.stats.hole_pixels += int(masks[core].sum())
        self.stats.propagated_pixels += int(masks[core].sum() - unknown.sum())
        if unknown.any():
            unseen = self.settings.unseen
            searched = self._searched(unknown)
            gan = None
            if searched is not None and searched.any():
                if self.fit_pending:
                    self._fit_to_video(out, unknown)
                gan = self._fill(out, searched)
            out = gan if unseen == "gan" else self._telea(out, unknown, gan, searched)
        if self.settings.propagate:
            out = self._carry_fill(out, unknown, propagated)
            self.propagator.release()
        return group.with_frames(out)

    def _searched(self, unknown: np.ndarray) -> np.ndarray | None:
        """The `unknown` `(N, H, W)` pixels the GAN fills: all (`unseen=gan`), all but specks (`mix`) or none."""
        if self.settings.unseen == "telea":
            return None
        return unknown if self.settings.unseen == "gan" else without_specks(unknown, SPECK_PIXELS)

    def _telea(self, frames: torch.Tensor, unknown: np.ndarray, gan: torch.Tensor | None,
               searched: np.ndarray | None) -> torch.Tensor:
        """Fill `unknown` `(N, H, W)` pixels of `frames` `(N, 3, H, W)` with OpenCV's Telea inpainting (from the
        known and propagated pixels around them); where the GAN filled (`searched` `(N, H, W)`, fill `gan`),
        with the mean of both."""
        import cv2

        as_uint8 = frames_to_uint8(frames)
        filled = np.stack([cv2.inpaint(frame, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
                           for frame, hole in zip(as_uint8, unknown)])
        fill = uint8_to_frames(filled, self.device)
        if gan is not None:
            fill = torch.where(torch.from_numpy(searched).to(self.device)[:, None], 0.5 * (fill + gan), fill)
        return torch.where(torch.from_numpy(unknown).to(self.device)[:, None], fill, frames)

    def _propagate(self, frames: np.ndarray, masks: np.ndarray, indices: list[int], core: list[int]
                   ) -> list[Propagated]:
        """Fill the core frames' holes from the previous output, the lookahead and keyframes, in order.

        `frames` `(T, H, W, 3)` uint8 and `masks` `(T, H, W)` bool of the group (core + lookahead context)."""
        results = []
        for f in core:
            ahead = [View(indices[g], frames[g], masks[g]) for g in range(f + 1, len(indices))]
            result = self.propagator.fill(View(indices[f], frames[f], masks[f]), ahead)
            self.propagator.commit(result.frame)
            results.append(result)
        return results

    def _carry_fill(self, frames: torch.Tensor, filled: np.ndarray, propagated: list[Propagated]) -> torch.Tensor:
        """Blend the GAN-filled pixels `filled` `(N, H, W)` of the core `frames` `(N, 3, H, W)` with the
        previous output carried along the motion (`smooth`, with `schedule=video`), frame after frame (so
        across groups too), and hand the final pixels to the propagator. Only the `filled` pixels pass
        through 8 bits (optical flow needs them); the rest keep the input's depth."""
        if not filled.any():
            return frames
        as_uint8 = frames_to_uint8(frames)
        weight = self.settings.smooth if self.settings.schedule == "video" else 0.0
        for f, result in enumerate(propagated):
            if weight > 0 and filled[f].any():
                carried, reached = self.propagator.carried(result)
                use = filled[f] & reached
                blended = weight * carried[use] + (1 - weight) * as_uint8[f][use].astype(np.float32)
                as_uint8[f][use] = np.round(blended).astype(np.uint8)
            self.propagator.update(result.index, as_uint8[f])
        smoothed = torch.from_numpy(filled).to(self.device)[:, None]
        return torch.where(smoothed, uint8_to_frames(as_uint8, self.device), frames)

    def _fill(self, frames: torch.Tensor, unknown: np.ndarray) -> torch.Tensor:
        """GAN-fill `unknown` `(N, H, W)` pixels of `frames` `(N, 3, H, W)`."""
        tiles = [tile for f in range(len(frames)) for tile in plan_tiles(unknown[f], f)]
        if not tiles:
            return frames
        pad = max(tile.size for tile in tiles)
        padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
        hole = F.pad(torch.from_numpy(unknown).to(self.device, torch.float32)[:, None], (pad, pad, pad, pad), value=1.0)
        targets, known = self._crop_tiles(padded, hole, tiles, pad)
        if self.settings.schedule == "per-frame":
            images = torch.empty_like(targets)
            for f in range(len(frames)):
                chosen = [k for k, tile in enumerate(tiles) if tile.frame == f]
                if chosen:
                    images[chosen] = self._search_per_frame(targets[chosen], known[chosen])
        else:
            images = self._search_video(tiles, targets, known)
        if self.settings.blend == "match":
            images = match_colours(images, targets, known)
        if self.settings.blend in ("poisson", "match"):
            images = poisson_blend(images, targets, known)
        self.stats.tiles += len(tiles)
        return self._paste(padded, hole, tiles, images, pad)

    def _crop_tiles(self, padded: torch.Tensor, hole: torch.Tensor, tiles: list[Tile], pad: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """64×64 tiles `(K, 3, 64, 64)` of the frames and their known-pixel masks `(K, 1, 64, 64)`."""
        targets, known = [], []
        for tile in tiles:
            y, x = tile.y0 + pad, tile.x0 + pad
            region = padded[tile.frame:tile.frame + 1, :, y:y + tile.size, x:x + tile.size]
            region_hole = hole[tile.frame:tile.frame + 1, :, y:y + tile.size, x:x + tile.size]
            targets.append(F.interpolate(region, size=(TILE, TILE), mode="area"))
            known.append((F.interpolate(region_hole, size=(TILE, TILE), mode="area") < 0.01).float())
        return torch.cat(targets), torch.cat(known)

    def _paste(self, padded: torch.Tensor, hole: torch.Tensor, tiles: list[Tile], images: torch.Tensor,
               pad: int) -> torch.Tensor:
        """Write each tile's image back (resized to its region) into the hole pixels it owns."""
        for tile, image in zip(tiles, images):
            region = F.interpolate(image[None], size=(tile.size, tile.size), mode="bilinear", align_corners=False)[0]
            ox0, oy0, ox1, oy1 = tile.owned
            sub = region[:, oy0 - tile.y0:oy1 - tile.y0, ox0 - tile.x0:ox1 - tile.x0]
            view = padded[tile.frame, :, oy0 + pad:oy1 + pad, ox0 + pad:ox1 + pad]
            fill = hole[tile.frame, :, oy0 + pad:oy1 + pad, ox0 + pad:ox1 + pad] > 0
            view.copy_(torch.where(fill, sub, view))
        return padded[:, :, pad:-pad, pad:-pad].contiguous()

    def _search_per_frame(self, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Yeh's baseline: fresh random latents and a fixed number of iterations."""
        z0 = random_latents(len(targets), self.netG.z_dim, self.device, self.rng)
        result = search_latents(self.netG, self.netD, targets, known, z0, self.search_settings(per_frame=True),
                                autocast=self.ctx.autocast())
        self._count(result.steps)
        return result.images

    def _search_video(self, tiles: list[Tile], targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Lahiri's video search: tracks carry z between frames; new tracks start from a pool search."""
        settings = self.search_settings(per_frame=False)
        z_init = torch.empty(len(tiles), self.netG.z_dim, device=self.device)
        ends = {end.tile.track: end for end in self.tracks}
        previous: list[Tile] = [end.tile for end in self.tracks]
        for f in range(max(tile.frame for tile in tiles) + 1):
            current = [tile for tile in tiles if tile.frame == f]
            for tile in current:
                match = match_track(tile, previous)
                if match is None:
                    tile.track, self.next_track = self.next_track, self.next_track + 1
                else:
                    tile.track = match.track
            previous = current or previous
        first_of_track: dict[int, int] = {}
        for k, tile in enumerate(tiles):
            first_of_track.setdefault(tile.track, k)
        fresh = [k for track, k in first_of_track.items() if track not in ends]
        if fresh:  # a new hole: image search (encoder or pool init) on its first tile, then shared by its track
            if self.encoder is not None:
                with torch.no_grad(), self.ctx.autocast():
                    z0 = self.encoder(targets[fresh], known[fresh]).float()
            else:
                z0 = nearest_latents(self.netG, targets[fresh], known[fresh], self.settings.pool,
                                     generator=self.rng, autocast=self.ctx.autocast())
            steps, lr = self.first_search["pool" if self.encoder is None else "encoder"]
            first = search_latents(self.netG, self.netD, targets[fresh], known[fresh], z0,
                                   settings.image_search(steps, lr), autocast=self.ctx.autocast())
            self._count(first.steps)
            for k, z in zip(fresh, first.z):
                ends[tiles[k].track] = TrackEnd(tiles[k], z)
        for k, tile in enumerate(tiles):
            z_init[k] = ends[tile.track].z
        pairs = consistency_pairs([t.track for t in tiles], [t.frame for t in tiles], self.settings.window,
                                  self.device)
        result = search_latents(self.netG, self.netD, targets, known, z_init,
                                settings.refining(self.settings.refine), pairs, autocast=self.ctx.autocast())
        self._count(result.steps)
        last = max(tile.frame for tile in tiles)
        self.tracks = [TrackEnd(tile, z) for tile, z in zip(tiles, result.z) if tile.frame == last]
        return result.images

    def _count(self, steps: int) -> None:
        self.stats.search_steps += steps
        self.stats.steps_per_search.append(steps)

    def _fit_to_video(self, frames: torch.Tensor, unknown: np.ndarray, batch: int = 16) -> None:
        """Fine-tune G and D on 64×64 crops of the visible content (regions the size of the first tiles)."""
        from vidgen_inpaint.train import gan_step, recalibrate_batch_norm

        start = time.perf_counter()
        self.fit_pending = False
        sizes = [tile.size for tile in plan_tiles(unknown[0], 0)] or [TILE]
        size = min(max(sizes), min(frames.shape[-2:]))
        rng = np.random.default_rng(self.settings.seed)
        crops = []
        for _ in range(400):
            f = rng.integers(len(frames))
            y, x = rng.integers(frames.shape[-2] - size + 1), rng.integers(frames.shape[-1] - size + 1)
            if not unknown[f, y:y + size, x:x + size].any():
                crops.append(frames[f:f + 1, :, y:y + size, x:x + size])
        if len(crops) < batch:
            self.ctx.log("inpaint: fit skipped (too little visible content around the holes)")
            return
        data = F.interpolate(torch.cat(crops), size=(TILE, TILE), mode="area")
        netG, netD = copy.deepcopy(self.netG).train(), copy.deepcopy(self.netD).train()
        for net in (netG, netD):
            for parameter in net.parameters():
                parameter.requires_grad_(True)
        optG = torch.optim.Adam(netG.parameters(), lr=1e-4, betas=(0.5, 0.999))
        optD = torch.optim.Adam(netD.parameters(), lr=1e-4, betas=(0.5, 0.999))
        with torch.enable_grad():
            for _ in range(self.settings.fit):
                real = data[torch.from_numpy(rng.integers(len(data), size=batch)).to(self.device)]
                flips = torch.rand(batch, device=self.device) < 0.5
                real = torch.where(flips[:, None, None, None], real.flip(-1), real)
                gan_step(netG, netD, optG, optD, real, self.ctx.autocast())
            recalibrate_batch_norm(netG)
        self.netG, self.netD = netG, netD
        self._prepare_networks()
        self.stats.fit_seconds = time.perf_counter() - start
        self.ctx.log(f"inpaint: fitted the GAN to {len(crops)} visible crops, {self.settings.fit} steps, "
                     f"{self.stats.fit_seconds:.1f} s")

    def finish(self) -> None:
        self.masks.close()
        return None
