"""Write a ``Scene`` as a complete frame of the official Cityscapes tree.

Files: ``leftImg8bit`` image, ``gtFine`` labelIds (8-bit), instanceIds (16-bit), color (RGBA, the
official palette), polygons JSON (painter's order, see ``pipeline.polygons``), partIds when the scene
has parts, and the camera JSON when it has a camera. Instances are renumbered so that ``k`` is each
object's position among the polygons of its class - the numbering the official tools derive from
the JSON - and the returned scene carries that numbering, for the COCO writer to use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.datasets.cityscapes import FramePaths, frame_paths
from pipeline.io import atomic_write_bytes, dumps_json, encode_png
from pipeline.labels import color_lut
from pipeline.polygons import painter_polygons
from pipeline.scene import Scene

# A frame's files in the order they are written or copied: the image last, so a frame whose image exists
# is complete (readers list frames by their images).
FILE_KEYS = ("label_ids", "instance_ids", "color", "polygons", "parts", "camera", "image")
_COLOR_LUT = np.concatenate([color_lut(), np.full((256, 1), 255, np.uint8)], axis=1)


def canonical_scene(scene: Scene) -> tuple[Scene, dict]:
    """The scene with instances renumbered in paint order, and its polygons JSON document."""
    order = [inst.value for inst in scene.instances]
    result = painter_polygons(scene.labels, scene.instance_ids, order)
    objects, renumber = result.objects, result.renumber
    instance_ids = scene.instance_ids
    if any(old != new for old, new in renumber.items()):
        lut_keys = np.array(sorted(renumber), dtype=np.int64)
        lut_vals = np.array([renumber[k] for k in lut_keys.tolist()], dtype=np.int64)
        pos = np.searchsorted(lut_keys, instance_ids)
        instance_ids = lut_vals[pos].astype(np.int32)
    meta = {renumber.get(inst.value, inst.value): inst.meta for inst in scene.instances}
    new = Scene(scene.frame, scene.image, scene.labels, instance_ids, scene.camera, scene.parts)
    new.instances = []
    new_order = [renumber[o.value] for o in objects if o.value in renumber]
    new.index(new_order)
    for inst in new.instances:
        inst.meta = dict(meta.get(inst.value, {}))
    height, width = scene.size
    document = {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [{"label": o.label, "polygon": o.polygon} for o in objects],
    }
    return new, document


def frame_files(scene: Scene, document: dict) -> dict[str, bytes]:
    """The encoded files of one frame, keyed by ``FramePaths`` field name."""
    files = {
        "image": encode_png(scene.image, rgb=True),
        "label_ids": encode_png(scene.labels.astype(np.uint8)),
        "instance_ids": encode_png(scene.instance_ids.astype(np.uint16)),
        "color": encode_png(_COLOR_LUT[scene.labels], rgb=True),
        "polygons": dumps_json(document),
    }
    if scene.parts is not None:
        files["parts"] = encode_png(scene.parts.astype(np.uint8))
    if scene.camera is not None:
        files["camera"] = dumps_json(scene.camera.to_json(), indent=2)
    return files


def write_scene(root: str | Path, scene: Scene) -> Scene:
    """Write every file of ``scene`` under ``root``; returns the renumbered scene.

    Each file is written atomically; the image is written last, so a frame whose image exists is
    complete (readers list frames by their images).
    """
    scene, document = canonical_scene(scene)
    paths = frame_paths(Path(root), scene.frame)
    files = frame_files(scene, document)
    for key in sorted(files, key=FILE_KEYS.index):
        atomic_write_bytes(_path(paths, key), files[key])
    return scene


def copy_frame(src: FramePaths, dst: FramePaths) -> None:
    """Copy every file of one frame, byte for byte, from where ``src`` says to where ``dst`` says - the
    colour visualisation too; a file the source lacks (parts, camera) is left out. The image goes last, as
    ``write_scene`` writes it: a frame whose image exists is complete."""
    for key in FILE_KEYS:
        if _path(src, key).is_file():
            atomic_write_bytes(_path(dst, key), _path(src, key).read_bytes())


def _path(paths: FramePaths, key: str) -> Path:
    if key == "color":
        return paths.label_ids.with_name(paths.label_ids.name.replace("_labelIds", "_color"))
    return getattr(paths, key)

