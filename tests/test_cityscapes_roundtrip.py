"""Our Cityscapes tree judged by cityscapesscripts: polygons JSON must paint back our label PNGs."""

from pathlib import Path

import numpy as np
import pytest
from official import render_polygons

from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.io import read_single_channel


def check_tree(root: Path, split: str) -> int:
    """Every frame: >= 99.5% labelIds agreement, IoU >= 0.95 for instances >= 100 px, instanceIds
    consistent with labelIds. Returns the number of frames checked."""
    dataset = CityscapesDataset(root, [split])
    for i in range(len(dataset)):
        paths = dataset.paths(i)
        labels = read_single_channel(paths.label_ids, np.uint8)
        instances = read_single_channel(paths.instance_ids, np.uint16).astype(np.int32)
        decoded = np.where(instances >= 1000, instances // 1000, instances)
        assert (decoded == labels).all(), f"{paths.instance_ids} disagrees with the labelIds"
        rendered_labels, rendered_instances = render_polygons(paths.polygons)
        agreement = (rendered_labels == labels).mean()
        assert agreement >= 0.995, f"{paths.polygons}: labelIds agree on {agreement:.4%} only"
        for value in np.unique(instances[instances >= 1000]).tolist():
            ours = instances == value
            if ours.sum() < 100:
                continue
            theirs = rendered_instances == value
            iou = (ours & theirs).sum() / (ours | theirs).sum()
            assert iou >= 0.95, f"{paths.polygons}: instance {value} IoU {iou:.3f}"
    return len(dataset)


@pytest.mark.parametrize("split", ["train", "val"])
def test_synthetic_tree_round_trips_through_cityscapesscripts(synthetic_root, split):
    assert check_tree(synthetic_root, split) > 0


def test_real_frames_round_trip_through_cityscapesscripts(sample_written):
    assert check_tree(sample_written, "train") == 8


def test_real_frames_keep_their_labels_and_images(sample_root, sample_written):
    original = CityscapesDataset(sample_root, ["train"])
    written = CityscapesDataset(sample_written, ["train"])
    assert [f.stem for f in original.frames] == [f.stem for f in written.frames]
    for a, b in zip(original, written, strict=True):
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.image, b.image)
        # Same objects, renumbered at most: each original instance maps onto exactly one written one.
        assert len(a.instances) == len(b.instances)
        for inst in a.instances:
            values = np.unique(b.instance_ids[a.mask(inst)])
            assert values.size == 1 and (values[0] >= 1000) == (inst.value >= 1000)


def test_reader_uses_polygon_order_as_painter_order(synthetic_root):
    scene = CityscapesDataset(synthetic_root, ["train"])[0]
    values = [inst.value for inst in scene.instances if not inst.iscrowd]
    for label_id in {v // 1000 for v in values}:
        ks = [v % 1000 for v in values if v // 1000 == label_id]
        assert ks == sorted(ks), "instances of a class are listed in paint order (k ascending)"
