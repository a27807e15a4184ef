"""Boxes as affine sampling matrices, and warping a square patch into an image.

``theta`` is the matrix ``F.affine_grid`` uses: it maps output (image) coordinates in [-1, 1] to source
coordinates, where the source is a unit square patch spanning [-1, 1]. With rotation and shear fixed at
zero, ``theta = [[ax, 0, tx], [0, ay, ty]]``: image point u samples the patch at ``a * u + t``. The patch
edge s = +-1 lands at u = (+-1 - t) / a, so a box with centre c and half size h (both in [-1, 1] image
coordinates) has ``a = 1 / h`` and ``t = -c / h``. Boxes outside this module are (x0, y0, x1, y1) in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_to_theta(boxes: torch.Tensor) -> torch.Tensor:
    """[B, 4] boxes (x0, y0, x1, y1) in [0, 1] -> [B, 2, 3] sampling matrices."""
    x0, y0, x1, y1 = boxes.float().unbind(1)
    hx, hy = x1 - x0, y1 - y0  # half sizes in [-1, 1] coordinates (= full sizes in [0, 1])
    cx, cy = x0 + x1 - 1, y0 + y1 - 1  # centres in [-1, 1]
    zero = torch.zeros_like(hx)
    return torch.stack([1 / hx, zero, -cx / hx, zero, 1 / hy, -cy / hy], 1).view(-1, 2, 3)


def theta_to_box(theta: torch.Tensor) -> torch.Tensor:
    """[B, 2, 3] sampling matrices -> [B, 4] boxes (x0, y0, x1, y1) in [0, 1] (rotation/shear ignored).

    A flipped matrix (negative scale) gives x1 < x0; the model's theta loss keeps scales positive."""
    theta = theta.float()
    hx, hy = 1 / theta[:, 0, 0], 1 / theta[:, 1, 1]
    cx, cy = -theta[:, 0, 2] * hx, -theta[:, 1, 2] * hy
    return torch.stack([(cx - hx + 1) / 2, (cy - hy + 1) / 2, (cx + hx + 1) / 2, (cy + hy + 1) / 2], 1)


def make_theta(ax: torch.Tensor, tx: torch.Tensor, ay: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Assemble [B, 2, 3] from the four free numbers; rotation/shear entries are structurally zero."""
    zero = torch.zeros_like(ax)
    return torch.stack([ax, zero, tx, zero, ay, ty], 1).view(-1, 2, 3)


def free_params(theta: torch.Tensor) -> torch.Tensor:
    """[B, 2, 3] -> [B, 4] (ax, tx, ay, ty): the numbers the model predicts."""
    return torch.stack([theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2]], 1)


def box_features(theta: torch.Tensor) -> torch.Tensor:
    """[B, 2, 3] -> [B, 4] (log ax, cx, log ay, cy): the free numbers as log scale and box centre.

    The same information as theta for positive scales, but of order 1 (raw scales run from 1 to
    1 / min_scale, shifts to about as much): what the small affine MLPs read and predict."""
    theta = theta.float()
    ax, ay = theta[:, 0, 0].clamp_min(1e-6), theta[:, 1, 1].clamp_min(1e-6)
    return torch.stack([ax.log(), -theta[:, 0, 2] / ax, ay.log(), -theta[:, 1, 2] / ay], 1)


def theta_from_features(f: torch.Tensor) -> torch.Tensor:
    """Inverse of ``box_features``: [B, 4] (log ax, cx, log ay, cy) -> [B, 2, 3]; scales are positive."""
    ax, ay = f[:, 0].exp(), f[:, 2].exp()
    return make_theta(ax, -f[:, 1] * ax, ay, -f[:, 3] * ay)


def warp(source: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Place a square patch [B, C, S, S] into an image of ``size`` = (H, W) by ``theta`` -> [B, C, H, W].

    Bilinear, zeros outside the patch, align_corners=False: warping all-ones gives the box (0.5 on its exact
    edge), warping a mask places the shape. Differentiable in both the patch and theta. Runs in float32:
    grid coordinates in bf16 would be off by pixels.
    """
    with torch.autocast(source.device.type, enabled=False):
        theta = theta.float()
        grid = F.affine_grid(theta, [theta.shape[0], source.shape[1], *size], align_corners=False)
        return F.grid_sample(source.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def box_mask(theta: torch.Tensor, size: tuple[int, int], patch: int = 32) -> torch.Tensor:
    """[B, 1, H, W] soft box mask: an all-ones ``patch`` x ``patch`` square warped by theta.

    The soft edge is (box width) / patch pixels wide, so 32 is sharp at the sizes used here; the gradient
    with respect to theta lives on that edge."""
    ones = torch.ones(1, 1, patch, patch, device=theta.device).expand(theta.shape[0], -1, -1, -1)
    return warp(ones, theta, size)


def paint(scene: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Paste ``mask`` [B, 1, H, W] into ``scene`` [B, C, H, W] as the channel one-hot ``target`` [B, C]:
    every channel is multiplied by (1 - m) (edges included: no edges inside the object), the target
    channel gets + m."""
    # lerp is the same formula in one fused pass (these are the largest tensors of a step).
    return torch.lerp(scene, target[:, :, None, None].to(scene.dtype), mask.to(scene.dtype))
