"""Inference: sample placements and shapes for a scene, reject the implausible, insert the rest.

Per frame and class to insert, one batch through the insertion GAN holds ``augment.candidates`` random
(z_where, z_what) draws (all drawn up front from the frame's seed). The classes take turns in
``augment.per_frame`` order, and each class's batch reads the scene as it is by then: the objects inserted
for the classes before it are in the model's input, as existing objects are, so it can place around them.
Each class's candidates are tried in draw order, and after each accepted one the draws not yet tried
are sampled again (the same latents) on the scene that now holds it; a candidate is rejected when it

- leaves the image (``outside``), or its whole mask is under ``min_area`` pixels (``small``),
- covers existing - or already inserted - persons and cars beyond ``max_overlap`` (``overlap``),
- with ``augment.support``, stands on a label its class does not stand on (``support``: the rules'
  table, or the labels learned from the data with ``rules.learned``),
- is off the ground-plane scale band (``scale``): the frame's camera file, else a ground plane fitted
  to the frame's own persons and cars (``ground_plane.frame_camera``), or with ``rules.learned`` the
  dataset's learned plane (``rules.Yardstick``); no scale rule where none exists,
- has no crop to show it (``no_crop``), would be mostly hidden behind nearer objects, or would hide
  an object inserted before it below the visibility floors (``occluded``),

until ``per_frame[class]`` are in. Accepted candidates get their appearance from the crop bank
(``pipeline.appearance``) and go into the scene through ``label_surgery.insert_object``. Every random
choice comes from the frame's seed: the same frame and seed give the same result on any shard.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from pipeline.appearance import CropBank, context_colour, paste
from pipeline.appearance.paste import harmonized
from pipeline.config import Config
from pipeline.encoding import edges, encode, resize_nearest
from pipeline.errors import ConfigError
from pipeline.label_surgery import insert_object
from pipeline.labels import BY_NAME
from pipeline.masks import encode_rle
from pipeline.models.insertion_gan import InsertionGAN
from pipeline.rules import SUPPORT_BAND, Yardstick, expected_height, overlap_share, support_label
from pipeline.scene import Camera, Scene

REASONS = ("outside", "small", "overlap", "support", "scale", "no_crop", "occluded")


@dataclass
class Candidate:
    """One sampled object at the scene's resolution: its box and its binary mask inside that box."""

    name: str
    label_id: int
    draw: int  # position among the class's candidates (with the frame seed, it reproduces the sample)
    box: tuple[int, int, int, int]  # x, y, w, h in pixels (may extend past the image)
    inside: bool
    mask: np.ndarray  # h x w bool: the generated shape at full resolution
    shape: np.ndarray  # S x S bool: the generated shape at the model's mask size


@dataclass
class FrameInsertions:
    """What one frame got: the inserted objects (by their meta ``insert_id``) and the candidate tallies."""

    inserted: list[dict] = field(default_factory=list)
    drawn: Counter = field(default_factory=Counter)  # candidates examined, per class
    rejected: Counter = field(default_factory=Counter)  # (class, reason) -> count


def scene_inputs(scene: Scene, cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene as the GAN's inputs [1, 30, H, W] at the where and what resolutions (as in training)."""
    out = []
    for size in (cfg.prepare.where_size, cfg.prepare.what_size):
        labels = torch.from_numpy(resize_nearest(scene.labels, tuple(size)))[None]
        ids = torch.from_numpy(resize_nearest(scene.instance_ids, tuple(size)).astype(np.int32))[None]
        out.append(encode(labels, edges(ids)).to(device).contiguous(memory_format=torch.channels_last))
    return out[0], out[1]


class Inserter:
    """A trained insertion GAN plus the crop bank: ``insert(scene, seed)`` augments one scene in place."""

    def __init__(self, gan: InsertionGAN, bank: CropBank | None, cfg: Config, device: torch.device | str = "cpu",
                 look=None):
        """``bank``: the crop bank (``augment.appearance.mode: paste``); ``look``: a ``LearnedAppearance``
        (gan modes)."""
        self.gan = gan.eval()
        self.bank = bank
        self.look = look
        if (bank is None) == (look is None):
            raise ValueError("give exactly one appearance: a crop bank (paste) or a learned renderer (gan)")
        self.cfg = cfg
        self.device = torch.device(device)
        self.protect_existing = False  # True: refuse insertions that would remove any existing object
        self.yardstick = Yardstick.of(cfg)  # the ground plane a frame's candidates are scaled by
        unknown = [n for n in cfg.augment.per_frame if cfg.augment.per_frame[n] and n not in cfg.prepare.classes]
        if unknown:
            raise ConfigError(f"augment.per_frame: the model was trained for {cfg.prepare.classes}, not {unknown}")

    # -------------------------------------------------------------------------------- sampling
    def _draws(self, seed: int) -> list[tuple[int, str, torch.Tensor, torch.Tensor]]:
        """(model class index, name, z_where, z_what) of every class to insert, in ``augment.per_frame`` order,
        ``augment.candidates`` latents each: drawn on the CPU from the frame's seed (every class's z_where,
        then every class's z_what), so the same numbers whatever the device."""
        a = self.cfg.augment
        classes = [(self.cfg.prepare.classes.index(name), name) for name, n in a.per_frame.items() if n > 0]
        if not classes:
            return []
        gen = torch.Generator().manual_seed(seed)
        n = a.candidates
        z_where = torch.randn(n * len(classes), self.gan.z_where, generator=gen).split(n)
        z_what = torch.randn(n * len(classes), self.gan.z_what, generator=gen).split(n)
        return [(c, name, zw, zt) for (c, name), zw, zt in zip(classes, z_where, z_what, strict=True)]

    def _sample(self, scene: Scene, inputs: tuple[torch.Tensor, torch.Tensor], c: int, name: str,
                z_where: torch.Tensor, z_what: torch.Tensor, first: int = 0) -> list[Candidate]:
        """One class's candidates for ``scene``, whose network inputs are ``inputs`` (``scene_inputs``), in
        draw order, from one batched forward pass; ``first``: the draw number of the first latent."""
        n = z_where.shape[0]
        cls = torch.full((n,), c, dtype=torch.long, device=self.device)
        x_where, x_what = inputs
        with torch.no_grad():
            out = self.gan.sample(x_where.expand(n, -1, -1, -1), x_what.expand(n, -1, -1, -1), cls,
                                  z_where.to(self.device), z_what.to(self.device))
        boxes = out["box"].float().cpu().numpy().astype(np.float64)
        shapes = out["shape"].float().cpu().numpy()[:, 0]
        height, width = scene.size
        return [_candidate(name, first + i, boxes[i], shapes[i], width, height) for i in range(n)]

    def propose(self, scene: Scene, seed: int) -> dict[str, list[Candidate]]:
        """Every class's candidates for ``scene`` as given (nothing inserted in between), in draw order."""
        inputs = scene_inputs(scene, self.cfg, self.device)  # encoded once: the scene does not change
        return {name: self._sample(scene, inputs, c, name, z_where, z_what)
                for c, name, z_where, z_what in self._draws(seed)}

    # ------------------------------------------------------------------------------- insertion
    def insert(self, scene: Scene, seed: int, exclude_frame: str | None = None) -> FrameInsertions:
        """Insert ``augment.per_frame`` objects per class into ``scene`` (in place: maps, image, instances).

        Each inserted instance carries ``meta["insert_id"]`` (its index in the frame) and the facts the
        manifest records; ``exclude_frame`` keeps crops of that frame out of retrieval."""
        a = self.cfg.augment
        report = FrameInsertions()
        camera = self.yardstick.camera(scene)  # from the frame as it was: inserted objects do not bend its fit
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        for c, name, z_where, z_what in self._draws(seed):
            # Sampled after the objects before it are in: the model sees them as it sees existing objects.
            candidates = self._sample(scene, scene_inputs(scene, self.cfg, self.device), c, name, z_where, z_what)
            wanted, kept, n = a.per_frame[name], 0, len(candidates)
            for draw in range(n):
                if kept == wanted:
                    break
                report.drawn[name] += 1
                reason = self._try(scene, candidates[draw], camera, rng, exclude_frame, report)
                if reason is not None:
                    report.rejected[(name, reason)] += 1
                    continue
                kept += 1
                if kept < wanted and draw + 1 < n:
                    # The scene changed: the draws still untried are sampled again on it (the same latents),
                    # so the next object is placed around this one instead of on top of it.
                    candidates[draw + 1 :] = self._sample(scene, scene_inputs(scene, self.cfg, self.device), c,
                                                          name, z_where[draw + 1 :], z_what[draw + 1 :],
                                                          first=draw + 1)
        if self.look is not None:  # one render of the final label map for every inserted object
            values = [i.value for i in scene.instances if "insert_id" in i.meta]
            self.look.apply(scene, values, rng)
        return report

    def _protected(self, scene: Scene) -> set[int]:
        """Objects an insertion must not remove: those inserted before it (and all, if asked)."""
        return {i.value for i in scene.instances if self.protect_existing or "insert_id" in i.meta}

    def _rule(self, scene: Scene, cand: Candidate, mask: np.ndarray, camera: Camera | None) -> str | None:
        """The overlap, support (``augment.support``) and scale rules for ``mask`` (inside the candidate's box)."""
        a = self.cfg.augment
        x, y, w, h = cand.box
        if overlap_share(mask, scene.labels[y : y + h, x : x + w]) >= a.max_overlap:
            return "overlap"
        if a.support:
            # The box and the rows under it that the support band reads (rules.SUPPORT_BAND).
            below = scene.labels[y : y + h + SUPPORT_BAND[-1], x : x + w]
            padded = np.zeros(below.shape, bool)
            padded[:h] = mask
            if support_label(below, padded) not in self.yardstick.support[cand.label_id]:
                return "support"
        if camera is not None and not _in_scale_band(mask, cand, self.yardstick.class_camera(camera, cand.label_id),
                                                      a.scale_band):
            return "scale"
        return None

    def _try(self, scene: Scene, cand: Candidate, camera: Camera | None, rng: np.random.Generator,
             exclude_frame: str | None, report: FrameInsertions) -> str | None:
        """Insert ``cand`` if it passes the rules; the reason it was rejected otherwise."""
        a, app = self.cfg.augment, self.cfg.augment.appearance
        if not cand.inside:
            return "outside"
        area = int(cand.mask.sum())
        if area < a.min_area:
            return "small"
        x, y, w, h = cand.box
        reason = self._rule(scene, cand, cand.mask, camera)
        if reason:
            return reason
        if self.look is not None:  # learned appearance: the label is the generated shape; drawn later
            return self._insert(scene, cand, cand.mask, None, None, report)
        target_context = context_colour(scene.image, scene.instance_ids, cand.box)
        crop = self.bank.select(cand.name, cand.shape, (w, h), target_context, rng, exclude_frame)
        if crop is None:
            return "no_crop"
        rgba = self.bank.rgba(crop)
        crop_mask = cv2.resize(np.ascontiguousarray(rgba[..., 3]), (w, h), interpolation=cv2.INTER_LINEAR) >= 128
        local = cand.mask & crop_mask if app.label_mask == "intersect" else crop_mask
        if int(local.sum()) < a.min_area:
            return "small"
        reason = self._rule(scene, cand, local, camera)  # the object is now the shape cut to the crop
        if reason:
            return reason
        rgb = harmonized(rgba[..., :3], np.array(crop.context_rgb), target_context, app.harmonize)
        return self._insert(scene, cand, local, crop, rgb, report)

    def _insert(self, scene: Scene, cand: Candidate, local: np.ndarray, crop, rgb: np.ndarray | None,
                report: FrameInsertions) -> str | None:
        """Label surgery for ``local`` (the object's mask in its box), the crop's pixels pasted when given."""
        a, app = self.cfg.augment, self.cfg.augment.appearance
        x, y, w, h = cand.box
        whole = np.zeros(scene.size, bool)
        whole[y : y + h, x : x + w] = local
        insert_id = len(report.inserted)
        done = insert_object(scene, whole, cand.label_id, min_visible=a.min_visible,
                             keep_min_pixels=a.keep_min_pixels, keep_min_share=a.keep_min_share,
                             meta={"insert_id": insert_id}, protect=self._protected(scene))
        if done is None:
            return "occluded"
        if rgb is not None:
            scene.image = paste(scene.image, rgb, cand.box, done.visible, app.blend, app.feather)
        appearance = ({"crop": crop.file, "crop_flipped": crop.flipped, "crop_iou": round(crop.iou, 4)}
                      if crop is not None else {"crop": None, "render": self.cfg.augment.appearance.mode})
        report.inserted.append({
            "insert_id": insert_id, "class": cand.name, "draw": cand.draw, "whole_box": list(cand.box),
            "whole_area": int(local.sum()), "visible_area": int(done.visible.sum()),
            "whole_mask": encode_rle(whole), **appearance,
            "occluded_by": len(done.occluders), "carved": len(done.carved), "dropped": len(done.dropped),
        })
        return None


def _candidate(name: str, draw: int, box: np.ndarray, shape: np.ndarray, width: int, height: int) -> Candidate:
    """A sampled box [0, 1] and shape probabilities as pixels: the shape resized into the box, >= 0.5."""
    x0, y0, x1, y1 = box * [width, height, width, height]
    finite = bool(np.isfinite([x0, y0, x1, y1]).all())
    if not finite:
        x0 = y0 = x1 = y1 = 0.0
    xi, yi = int(math.floor(x0 + 0.5)), int(math.floor(y0 + 0.5))
    w, h = max(1, int(math.floor(x1 + 0.5)) - xi), max(1, int(math.floor(y1 + 0.5)) - yi)
    # Half a pixel of slack: a box that touches the border is inside.
    inside = finite and x0 >= -0.5 and y0 >= -0.5 and x1 <= width + 0.5 and y1 <= height + 0.5
    xi, yi = max(0, xi), max(0, yi)
    w, h = min(w, width - xi), min(h, height - yi)
    inside = inside and w > 0 and h > 0
    if inside:
        mask = cv2.resize(shape.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    else:
        mask = np.zeros((max(h, 1), max(w, 1)), bool)
    return Candidate(name, BY_NAME[name].id, draw, (xi, yi, max(w, 1), max(h, 1)), inside, mask, shape >= 0.5)


def _in_scale_band(mask: np.ndarray, cand: Candidate, camera: Camera, band: list[float]) -> bool:
    """The ground-plane scale rule of ``rules`` on a whole mask inside the candidate's box."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return False
    v_b = cand.box[1] + int(rows[-1])
    if v_b <= camera.horizon_row:
        return False
    ratio = (rows[-1] - rows[0] + 1) / expected_height(camera, cand.label_id, v_b)
    return band[0] <= ratio <= band[1]
