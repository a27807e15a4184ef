"""The camera over the ground plane and the view it gives: where a ground point or a point above it
projects (see the package docstring for the formulas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.datasets.synthetic.canvas import MIN_OBJECT_PX
from pipeline.scene import Camera

# Cityscapes' own camera (2048 x 1024); focal lengths and u0 scale with the width, v0 with the height.
_CS_WIDTH, _CS_HEIGHT = 2048.0, 1024.0
_CS_FX, _CS_FY, _CS_U0, _CS_V0 = 2262.52, 2265.30, 1096.98, 513.137


# ------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _View:
    """Image size and the ground-plane projection (continuous coordinates, row ``r`` = ``[r, r + 1)``)."""

    W: int
    H: int
    fx: float
    fy: float
    u0: float
    z: float
    vh: float

    def u(self, X: float, D: float) -> float:
        return self.u0 + self.fx * X / D

    def v(self, Y: float, D: float) -> float:
        return self.vh + self.fy * (self.z - Y) / D

    def contact_row(self, D: float) -> int:
        """Row whose bottom edge is nearest to the ground line at distance ``D``."""
        return int(math.floor(self.v(0.0, D) + 0.5)) - 1

    def distance(self, row: int) -> float:
        """Distance of the ground under the bottom edge of ``row`` (``row + 1 > v_h``)."""
        return self.fy * self.z / (row + 1 - self.vh)

    def px_per_m(self, row: int) -> float:
        """Vertical pixels per metre of an upright object standing at ``row``."""
        return (row + 1 - self.vh) / self.z

    def min_row(self, height_m: float) -> int:
        """Smallest contact row at which an object ``height_m`` tall is at least ``MIN_OBJECT_PX`` rows."""
        return int(math.ceil(self.vh - 1 + MIN_OBJECT_PX * self.z / height_m))


def make_camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    """Cityscapes intrinsics scaled to ``width x height``; height 1.2-1.8 m; pitch puts v_h at 36-53% of H."""
    s = width / _CS_WIDTH
    fx, fy, u0 = _CS_FX * s, _CS_FY * s, _CS_U0 * s
    v0 = _CS_V0 * height / _CS_HEIGHT
    z = float(rng.uniform(1.2, 1.8))
    vh = float(rng.uniform(0.36, 0.53)) * height
    pitch = math.atan((v0 - vh) / fy)
    return Camera(fx=fx, fy=fy, u0=u0, v0=v0, height=z, pitch=pitch, roll=0.0, yaw=0.0,
                  x=1.7, y=0.1, baseline=0.22)
