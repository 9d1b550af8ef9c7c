"""Temporal propagation: copy hidden pixels from the frames of the group where optical flow shows them."""

from __future__ import annotations

import numpy as np

from vidgen_inpaint.masks import dilate


def _prefilled_gray(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey `(H, W)` uint8 frame with its hole roughly filled (Telea), so the hole does not drag the flow."""
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if not mask.any():
        return gray
    return cv2.inpaint(gray, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def _flow_in_hole(flow: np.ndarray, hole: np.ndarray, ring_width: int = 12) -> np.ndarray:
    """Replace the flow inside `hole` by an affine motion fitted (RANSAC) to the flow on a ring around it.

    Flow inside a hole follows the hole's own content (a static logo, a moving box), not the scene behind
    it; camera pan and zoom are affine, so the motion around the hole predicts the scene's motion inside.
    """
    import cv2

    if not hole.any():
        return flow
    ring = dilate(hole, ring_width) & ~hole
    ys, xs = np.nonzero(ring)
    if len(xs) < 6:
        return flow
    if len(xs) > 2000:
        pick = np.linspace(0, len(xs) - 1, 2000).astype(int)
        ys, xs = ys[pick], xs[pick]
    source = np.stack([xs, ys], 1).astype(np.float32)
    matrix, _ = cv2.estimateAffine2D(source, source + flow[ys, xs], method=cv2.RANSAC, ransacReprojThreshold=1.0)
    out = flow.copy()
    hy, hx = np.nonzero(hole)
    if matrix is None:
        out[hy, hx] = np.median(flow[ys, xs], 0)
        return out
    points = np.stack([hx, hy, np.ones_like(hx)], 1).astype(np.float32)
    out[hy, hx] = points @ matrix.T.astype(np.float32) - points[:, :2]
    return out


def _landing_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel lands when it follows `flow` `(H, W, 2)`: points `(H, W, 2)` float32, and whether
    each lies inside the frame `(H, W)` bool."""
    height, width = flow.shape[:2]
    where = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32) + flow
    inside = (where[..., 0] >= 0) & (where[..., 0] <= width - 1) & (where[..., 1] >= 0) & (where[..., 1] <= height - 1)
    return where, inside


def propagate(frames: np.ndarray, masks: np.ndarray, targets: list[int], max_sources: int = 6
              ) -> tuple[np.ndarray, np.ndarray]:
    """Fill the masked pixels of `frames[targets]` from the other frames of the group via DIS optical flow.

    `frames` `(T, H, W, 3)` uint8, `masks` `(T, H, W)` bool (True = to fill). For each target frame the
    nearest frames in time are tried first; a pixel is copied from a source frame when the flow (inside the
    hole: the affine motion around it) lands on a known pixel there. Returns the filled target frames
    `(N, H, W, 3)` uint8 and what is still unknown `(N, H, W)` bool.
    """
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [_prefilled_gray(frame, mask) for frame, mask in zip(frames, masks)]
    filled, remaining = [], []
    for t in targets:
        out, hole = frames[t].copy(), masks[t].copy()
        sources = sorted((s for s in range(len(frames)) if s != t), key=lambda s: (abs(s - t), s))
        for s in sources[:max_sources]:
            if not hole.any():
                break
            where, inside = _landing_points(_flow_in_hole(dis.calc(grays[t], grays[s], None), dilate(masks[t], 3)))
            source_hole = cv2.remap(dilate(masks[s], 1).astype(np.float32), where[..., 0], where[..., 1],
                                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
            usable = hole & inside & (source_hole == 0)
            if not usable.any():
                continue
            warped = cv2.remap(frames[s], where[..., 0], where[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            out[usable] = warped[usable]
            hole &= ~usable
        filled.append(out)
        remaining.append(hole)
    return np.stack(filled), np.stack(remaining)


def carry_previous_fill(frame: np.ndarray, filled: np.ndarray, mask: np.ndarray, previous: np.ndarray,
                        weight: float) -> np.ndarray:
    """Move the `filled` pixels `(H, W)` bool of `frame` `(H, W, 3)` uint8 toward the previous output frame
    `previous` seen along the scene's motion: `weight · previous + (1 − weight) · frame` there.

    Inside the whole hole `mask` the flow is the affine motion around it (the fill's own content must not
    steer it), so a fill travels with the scene instead of being re-drawn in every frame.
    """
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray, previous_gray = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (frame, previous))
    where, inside = _landing_points(_flow_in_hole(dis.calc(gray, previous_gray, None), dilate(mask, 3)))
    use = filled & inside
    warped = cv2.remap(previous, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = frame.copy()
    out[use] = np.round(weight * warped[use] + (1 - weight) * frame[use].astype(np.float32)).astype(np.uint8)
    return out
