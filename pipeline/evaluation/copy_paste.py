"""The baselines users would otherwise pick: random copy-paste (Simple Copy-Paste style), and random
copy-paste behind the placement rules.

A real crop of the class, chosen uniformly from the crop bank, is pasted at its own size at a uniformly
random position inside the frame - no placement model. With ``rules=True`` a position is kept only when
the object passes the support rule and the augment stage's overlap and scale rules (``augment.max_overlap``,
``augment.scale_band``; the scale rule where the frame has a camera or a fitted ground plane): what a user
could do without a learned model. Either way it goes through the same label surgery and the same blend
as the model's insertions (depth order by contact row, carving, ``min_visible``), so the arms differ only
in where objects go and what shape they have.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.appearance import CropBank, paste
from pipeline.config import Config
from pipeline.label_surgery import insert_object
from pipeline.labels import BY_NAME
from pipeline.rules import Yardstick
from pipeline.scene import Scene

# Random positions tried per wanted object before giving up (a crop may be mostly hidden everywhere);
# behind the rules most random positions fail them, so that baseline tries ten times as many.
TRIES_PER_OBJECT = 20
TRIES_PER_OBJECT_RULES = 200


class CopyPaste:
    def __init__(self, bank: CropBank, cfg: Config, rules: bool = False):
        self.bank = bank
        self.cfg = cfg
        self.rules = dataclasses.replace(Yardstick.of(cfg), max_overlap=cfg.augment.max_overlap,
                                         scale_band=tuple(cfg.augment.scale_band)) if rules else None

    def insert(self, scene: Scene, counts: dict[str, int], seed: int, exclude_frame: str | None = None) -> int:
        """Paste ``counts[class]`` random crops into ``scene`` (in place); returns how many went in."""
        a = self.cfg.augment
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        height, width = scene.size
        camera = self.rules.camera(scene) if self.rules else None  # the frame as it was, as the augment stage fits it
        tries = TRIES_PER_OBJECT_RULES if self.rules else TRIES_PER_OBJECT
        inserted = 0
        for name, wanted in sorted(counts.items()):
            kept = 0
            for _ in range(tries * wanted):
                if kept == wanted:
                    break
                crop = self.bank.pick_random(name, rng, exclude_frame)
                if crop is None:
                    break
                rgba = self.bank.rgba(crop)
                h, w = rgba.shape[:2]
                if h > height or w > width:
                    continue
                x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
                whole = np.zeros(scene.size, bool)
                whole[y : y + h, x : x + w] = rgba[..., 3] >= 128
                if self.rules is not None and not (whole.any() and self.rules.verdicts(
                        scene.labels, whole, BY_NAME[name].id, camera)["plausible"]):
                    continue
                protect = {i.value for i in scene.instances if "insert_id" in i.meta}
                done = insert_object(scene, whole, BY_NAME[name].id, min_visible=a.min_visible,
                                     keep_min_pixels=a.keep_min_pixels, keep_min_share=a.keep_min_share,
                                     meta={"insert_id": inserted}, protect=protect)
                if done is None:
                    continue
                scene.image = paste(scene.image, rgba[..., :3], (x, y, w, h), done.visible,
                                    a.appearance.blend, a.appearance.feather)
                kept += 1
                inserted += 1
        return inserted
