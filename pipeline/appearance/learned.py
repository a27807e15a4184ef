"""Learned appearance: the trained renderer draws the inserted objects (``augment.appearance.mode: gan | gan+parts``).

After label surgery, the whole new label map is rendered once per frame at the renderer's size; only
the inserted objects' visible pixels are taken from it (feathered at their edge, upsampled to the frame),
every other pixel keeps the original image. One render of the whole frame, although the renderer trains
on windows: measured, it drew inserted objects better than a render of each object's own window.
Styles (with the feature encoder, ``renderer.feature_channels`` > 0): existing objects keep the code the
encoder reads from the original image; each inserted object takes one of its class's k-means styles,
chosen by the frame's random generator. With ``gan+parts`` the part network gives each inserted object a part map
from its shape; it conditions the renderer and is written into the frame's part map (partIds).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from pipeline.encoding import resize_nearest
from pipeline.labels import INSTANCE_FACTOR
from pipeline.models.part_net import PartNet, infer_parts
from pipeline.models.renderer import label_input
from pipeline.scene import Scene
from pipeline.trained_renderer import Renderer

MODES = ("paste", "gan", "gan+parts")


class LearnedAppearance:
    def __init__(self, renderer: Renderer, part_net: PartNet | None, size: tuple[int, int], mode: str,
                 part_size: int = 64, feather: float = 1.0, device: torch.device | str = "cpu"):
        if mode not in MODES[1:]:
            raise ValueError(f"render mode must be gan or gan+parts, got {mode!r}")
        if mode == "gan+parts" and part_net is None:
            raise ValueError("render mode gan+parts needs the part network")
        self.renderer, self.part_net, self.size, self.mode = renderer, part_net, tuple(size), mode
        self.part_size, self.feather = part_size, feather
        self.device = torch.device(device)

    def parts_for(self, mask: np.ndarray, label_id: int) -> np.ndarray:
        """Part ids for an object of class ``label_id`` with full-resolution ``mask``."""
        return infer_parts(self.part_net, mask, label_id, self.part_size)

    @torch.no_grad()
    def apply(self, scene: Scene, inserted: list[int], rng: np.random.Generator) -> None:
        """Render the inserted objects (instance values ``inserted``) into ``scene.image``, in place."""
        if not inserted:
            return
        height, width = scene.size
        with_parts = self.mode == "gan+parts"
        if with_parts:
            if scene.parts is None:
                scene.parts = np.zeros(scene.size, np.uint8)
            for value in inserted:
                mask = scene.instance_ids == value
                if mask.any():
                    scene.parts[mask] = self.parts_for(mask, value // INSTANCE_FACTOR)[mask]
        labels = torch.from_numpy(resize_nearest(scene.labels, self.size))[None].to(self.device)
        ids_np = resize_nearest(scene.instance_ids, self.size).astype(np.int32)
        ids = torch.from_numpy(ids_np)[None].to(self.device)
        parts_np = resize_nearest(scene.parts, self.size) if scene.parts is not None else np.zeros_like(ids_np)
        parts = torch.from_numpy(parts_np.astype(np.uint8))[None].to(self.device)
        cond = label_input(labels, ids, parts, torch.tensor([with_parts], device=self.device))
        image = cv2.resize(scene.image, self.size, interpolation=cv2.INTER_AREA)
        real = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.device) / 127.5 - 1
        inputs = [cond]
        g, e = self.renderer.generator, self.renderer.encoder
        if e is not None:
            feats = e(real, ids)
            for value in inserted:
                styles = self.renderer.styles.get(value // INSTANCE_FACTOR)
                region = ids[0] == value
                if styles is not None and len(styles) and region.any():
                    code = torch.from_numpy(styles[int(rng.integers(len(styles)))]).to(self.device)
                    feats[0][:, region] = code[:, None]
            inputs.append(feats)
        fake = g(torch.cat(inputs, 1))[0]
        rendered = ((fake.permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        rendered = cv2.resize(rendered, (width, height), interpolation=cv2.INTER_LINEAR)
        visible = np.isin(scene.instance_ids, inserted)
        alpha = visible.astype(np.float32)
        if self.feather > 0:
            alpha = cv2.GaussianBlur(alpha, (0, 0), self.feather) * visible  # feathered inward only
        mixed = alpha[..., None] * rendered + (1 - alpha[..., None]) * scene.image
        out = scene.image.copy()
        out[visible] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)[visible]
        scene.image = out
