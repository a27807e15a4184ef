"""The built-in dataset: procedural street scenes in Cityscapes format (docs/synthetic-scenes.md).

``generate_scene(cfg, seed, frame)`` builds one frame from ``(seed, frame.split, frame.seq)`` alone:

1. a pinhole camera (Cityscapes intrinsics scaled to the image) over a flat ground plane, with a random
   height and pitch, so the horizon row ``v_h`` varies per scene;
2. the stuff layout in label ids: a road towards the vanishing point, per side a band of sidewalk /
   terrain / parking strips, building facades (vertical planes parallel to the road, with set-backs,
   gaps and hedges), an optional cross street, crosswalk and end-of-street building, sky above;
3. objects standing on the ground, each drawn in its own small canvas: street lamps, traffic signs and
   lights, trees, cars (rear / front / side views) and persons (articulated, front / rear / side views,
   several poses), composited far to near (painter's order by contact row) so nearer ones occlude;
4. look-alikes (``decoys.py``): posters of persons and cars, shop-window mannequins and statues on the
   facades, labelled building (Cityscapes' policy), in the image only;
5. instance ids (``label * 1000 + k``, ``k`` gapless per class in painter's order over the objects that
   stay visible), a part map (``labels.PARTS``) and the RGB image rendered from all of it.

The package: ``geometry.py`` (camera and view), ``layout.py`` (the stuff layout), ``canvas.py`` (the codes
objects are drawn with and the fixed-point drawing primitives), ``sprites.py`` (persons, cars and their
colours), ``builder.py`` (the scene under construction: free space, placement, compositing, instance
numbering), ``decoys.py`` (the look-alikes), ``render.py`` (the RGB image).

Geometry: a ground point at lateral offset ``X`` and distance ``D`` projects to ``u = u0 + fx X / D``,
``v = v_h + fy z / D`` (``z`` = camera height); a point at height ``Y`` above it to
``v_h + fy (z - Y) / D``. Image row ``r`` covers ``[r, r + 1)``: an object whose lowest mask row is ``r``
stands at the bottom edge ``r + 1`` of that row, so its distance is ``fy z / (r + 1 - v_h)`` and it is
exactly ``round(Hm (r + 1 - v_h) / z)`` rows tall (head top to foot bottom, roof to tyre) - the
convention of ``pipeline.rules``.

Each person/car ``Instance.meta`` holds ``height_m`` (the real height it was drawn with),
``visible_fraction`` (visible pixels / pixels it would have inside the image with nothing in front),
``view`` (``front`` | ``side`` | ``rear``), ``pose`` (persons: ``standing``, ``walking``, ``striding``,
``phone``, ``hands-on-hips``, ``carrying``; cars: ``driving``, ``parked``, ``parked-perpendicular``,
``crossing``), and also ``distance_m`` (ground distance of its contact row) and ``truncated`` (part of it
lies outside the image, left or right). Persons and cars are at least ``MIN_OBJECT_PX`` rows tall, have
their contact row inside the image (at most ``H - 3``, so the support band below them is visible) and
their head / roof inside it too.

Determinism: every random number comes from one ``np.random.Generator`` seeded with
``SeedSequence([seed, crc32(split), seq])`` (a non-negative ``seed``); per-pixel work uses only elementwise
IEEE arithmetic (no transcendental numpy functions), integer cv2 drawing at fixed-point coordinates and
OpenCV's bit-exact 8-bit resize and Gaussian blur, so the arrays do not depend on threads or CPU; the polygon
writer (``pipeline.polygons``) breaks ties among equal distances by position, not by numpy's CPU-dispatched
partition, so the written files do not either (``tests/test_synthetic.py`` checks one against numpy's optional
dispatch switched off). (Scalar geometry uses Python's ``math``, i.e. the platform libm; its results agree to the
last bit on the usual platforms.)
"""

from __future__ import annotations

import zlib

import numpy as np

from pipeline.config import SyntheticConfig
from pipeline.datasets.synthetic.builder import Builder
from pipeline.datasets.synthetic.decoys import add_decoys, decoy_count
from pipeline.datasets.synthetic.render import render_image
from pipeline.scene import FrameId, Scene

FRAME_NUMBER = 19  # the annotated frame of a Cityscapes snippet


# --------------------------------------------------------------------------------------------- frames


def frame_ids(cfg: SyntheticConfig) -> list[FrameId]:
    """Every frame of the dataset: per split (in ``cfg.splits`` order) indices ``0..n-1``, cities in turn."""
    return [FrameId(split, cfg.cities[i % len(cfg.cities)], i, FRAME_NUMBER)
            for split, n in cfg.splits.items() for i in range(n)]


def scene_rng(seed: int, split: str, seq: int, stream: int = 0) -> np.random.Generator:
    """The generator of one frame: a function of ``(seed, split, seq)`` only (never Python's ``hash``).
    ``stream`` 1 is the look-alikes' own (``decoys.py``): drawing them leaves stream 0's numbers alone."""
    key = [int(seed), zlib.crc32(split.encode()), int(seq)] + ([int(stream)] if stream else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def generate_scene(cfg: SyntheticConfig, seed: int, frame: FrameId) -> Scene:
    return build_scene(cfg, seed, frame)[0]


def build_scene(cfg: SyntheticConfig, seed: int, frame: FrameId) -> tuple[Scene, Builder]:
    """One synthetic frame, a function of ``(seed, frame.split, frame.seq)`` and the config only.

    Uses ``cfg.width`` x ``cfg.height``, ``cfg.persons_per_frame`` / ``cfg.cars_per_frame`` (inclusive
    ``[min, max]`` of objects *attempted*: one is skipped when no free, valid spot is found) and
    ``cfg.crosswalk_prob``, ``cfg.decoys_per_frame`` (look-alikes tried, ``decoys.py``). The returned
    ``Scene`` has its ``instances`` in painter's order (far to near) with the ``meta`` described in the
    module docstring; ``build_scene`` also returns the builder (its ``decoys``: the look-alikes drawn).
    """
    rng = scene_rng(seed, frame.split, frame.seq)
    b = Builder(cfg, rng)
    b.layout()
    b.furniture()
    lo, hi = cfg.cars_per_frame
    b.cars(int(rng.integers(lo, hi + 1)))
    lo, hi = cfg.persons_per_frame
    b.persons(int(rng.integers(lo, hi + 1)))
    b.composite()
    inst, order, metas = b.instances()
    decoy_rng = scene_rng(seed, frame.split, frame.seq, stream=1)
    b.decoys = add_decoys(b, decoy_rng, decoy_count(decoy_rng, cfg.decoys_per_frame))
    image = render_image(b)
    scene = Scene(frame=frame, image=image, labels=b.lab, instance_ids=inst, camera=b.camera, parts=b.parts)
    scene.index(order)
    for instance in scene.instances:
        instance.meta = metas[instance.value]
    return scene, b
