"""The placement baselines: ours' very objects at other positions.

Each object the augment stage inserted into a frame (its manifest line: the whole mask, its box, the crop
and whether it was mirrored) is inserted again into the original frame - the same shape, the same size, the
same crop, harmonised to the light around its new position and blended as the augment stage blends - at a
uniformly random position inside the frame (``copy_paste``: copy-paste without a placement model), or at a
random position that passes the placement rules (``rules``: support, and the augment stage's overlap and
scale rules; what a user could do with the rules and no learned model). The same label surgery as the
model's insertions (depth by contact row, carving, ``min_visible``) puts it in. So an arm built this way
differs from ours only in where the objects stand.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.appearance import CropBank, context_colour, paste
from pipeline.appearance.paste import harmonized
from pipeline.config import Config
from pipeline.label_surgery import insert_object
from pipeline.labels import BY_NAME
from pipeline.rules import SUPPORT_BAND, Yardstick
from pipeline.scene import Scene

# Random positions the copy-paste arm tries per object before giving up (it may be mostly hidden everywhere);
# the rules arm tries evaluate.downstream.rules_tries.
TRIES_PER_OBJECT = 20


def footprint(local: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """What ``Relocate.plausible`` reads of an object's local mask: the mask with ``max(SUPPORT_BAND)``
    empty rows below it, and its first and last non-empty row."""
    padded = np.concatenate([local, np.zeros((max(SUPPORT_BAND), local.shape[1]), bool)])
    filled = np.flatnonzero(local.any(axis=1))
    return padded, (int(filled[0]), int(filled[-1]))


class Relocate:
    def __init__(self, bank: CropBank, cfg: Config, rules: bool = False):
        self.bank = bank
        self.cfg = cfg
        self.rules = dataclasses.replace(Yardstick.of(cfg), max_overlap=cfg.augment.max_overlap,
                                         scale_band=tuple(cfg.augment.scale_band)) if rules else None

    def plausible(self, labels: np.ndarray, padded: np.ndarray, rows: tuple[int, int], nx: int, ny: int,
                  label_id: int, camera) -> bool:
        """``self.rules.verdicts(labels, whole, label_id, camera)["plausible"]`` for an object put at ``(nx, ny)``,
        read on a window around it instead of a whole-frame mask (a try costs 3 ms at 2048x1024, and the rules
        arm makes up to ``rules_tries`` an object): support reads the labels at most ``max(SUPPORT_BAND)`` rows
        below the contact pixels and overlap the object's own pixels, both inside the window; the scale rule
        reads only the object's top and bottom rows. ``padded`` is the object's local mask with
        ``max(SUPPORT_BAND)`` empty rows below it, ``rows`` its first and last non-empty local row."""
        h, w = padded.shape[0] - max(SUPPORT_BAND), padded.shape[1]
        bottom = min(labels.shape[0], ny + h + max(SUPPORT_BAND))
        if not self.rules.verdicts(labels[ny:bottom, nx : nx + w], padded[: bottom - ny], label_id,
                                   None)["plausible"]:
            return False
        return camera is None or self.rules.scale_fits(ny + rows[0], ny + rows[1], label_id, camera)

    def position(self, scene: Scene, m: dict, w: int, h: int, rng: np.random.Generator) -> tuple[int, int]:
        """Where one try puts the top-left corner of manifest object ``m``'s ``w`` x ``h`` box: uniformly inside
        the frame (the placement rules, for the rules arm, judge it afterwards)."""
        height, width = scene.size
        return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))

    def insert(self, scene: Scene, objects: list[dict], seed: int) -> int:
        """Insert the manifest's ``objects`` (in their order) into ``scene`` at new positions (in place);
        returns how many went in."""
        a = self.cfg.augment
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        camera = self.rules.camera(scene) if self.rules else None  # the frame as it was, as augment fits it
        tries = self.cfg.evaluate.downstream.rules_tries if self.rules else TRIES_PER_OBJECT
        inserted = 0
        for m in objects:
            x, y, w, h = m["whole_box"]
            local = mask_utils.decode(m["whole_mask"]).astype(bool)[y : y + h, x : x + w]
            crop = self.bank.crop(m["crop"], m["crop_flipped"])
            rgba = self.bank.rgba(crop)
            label_id = BY_NAME[m["class"]].id
            padded, rows = footprint(local)
            for _ in range(tries):
                nx, ny = self.position(scene, m, w, h, rng)
                if self.rules is not None and not self.plausible(scene.labels, padded, rows, nx, ny, label_id,
                                                                 camera):
                    continue
                whole = np.zeros(scene.size, bool)
                whole[ny : ny + h, nx : nx + w] = local
                target_context = context_colour(scene.image, scene.instance_ids, (nx, ny, w, h))
                protect = {i.value for i in scene.instances if "insert_id" in i.meta}
                done = insert_object(scene, whole, label_id, min_visible=a.min_visible,
                                     keep_min_pixels=a.keep_min_pixels, keep_min_share=a.keep_min_share,
                                     meta={"insert_id": inserted}, protect=protect)
                if done is None:
                    continue
                rgb = harmonized(rgba[..., :3], np.array(crop.context_rgb), target_context, a.appearance.harmonize)
                scene.image = paste(scene.image, rgb, (nx, ny, w, h), done.visible, a.appearance.blend,
                                    a.appearance.feather)
                inserted += 1
                break
        return inserted
