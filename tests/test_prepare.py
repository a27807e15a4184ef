"""The prepare stage: training examples, object removal, crop bank."""

import json

import numpy as np
import pytest

from pipeline.config import Config, DataConfig, PrepareConfig
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.label_surgery import remove_object
from pipeline.labels import VALID_IDS
from pipeline.prepare import instance_filter, prepare


def test_remove_object_fills_from_stuff_not_from_neighbours():
    labels = np.full((20, 30), 8, np.uint8)  # sidewalk
    labels[:5] = 11  # building above
    instances = labels.astype(np.int32)
    instances[8:16, 5:10] = 24000  # the person to remove
    instances[8:16, 10:14] = 26000  # a car touching it
    labels[instances >= 1000] = (instances[instances >= 1000] // 1000).astype(np.uint8)
    new_labels, new_instances = remove_object(labels, instances, 24000)
    assert (new_labels[8:16, 5:10] == 8).all(), "filled from the sidewalk around it"
    assert (new_instances[8:16, 5:10] == 8).all()
    assert (new_instances[8:16, 10:14] == 26000).all(), "the neighbouring car is untouched"
    assert (labels[8:16, 5:10] == 24).all(), "the input is not modified"
    untouched = instances != 24000
    assert np.array_equal(new_labels[untouched], labels[untouched])


def whole_frame_removal(labels, instances, value):
    """remove_object's definition, computed on the whole frame: each object pixel takes the label of the
    nearest pixel of no object (``distance_transform_edt``'s choice among equally near ones)."""
    from scipy import ndimage

    mask = instances == value
    stuff = (instances < 1000) & ~mask
    out = labels.copy()
    _, (iy, ix) = ndimage.distance_transform_edt(~stuff, return_indices=True)
    out[mask] = labels[iy[mask], ix[mask]]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_remove_object_on_a_window_gives_the_whole_frame_labels(seed):
    """The windowed transform against the whole frame's, on random maps: stuff of a few labels in
    blocks (many equally near pixels: ties), a large object (stuff far from the objects on it: windows
    grow), objects of every size up to the frame, at its borders too."""
    rng = np.random.default_rng(seed)
    height, width = rng.integers(20, 120, size=2)
    blocks = rng.choice([7, 8, 11, 21, 23], size=(height // 4 + 1, width // 4 + 1))
    labels = np.kron(blocks, np.ones((4, 4), int))[:height, :width].astype(np.uint8)
    instances = labels.astype(np.int32)
    h, w = rng.integers(height // 2, height + 1), rng.integers(width // 2, width + 1)
    y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
    instances[y : y + h, x : x + w] = 26000  # a large object: the stuff nearest to objects on it is far
    for k in range(int(rng.integers(1, 6))):
        h, w = rng.integers(1, height + 1), rng.integers(1, width + 1)
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        blob = rng.random((h, w)) < rng.uniform(0.3, 1.0)
        instances[y : y + h, x : x + w][blob] = 24000 + k
    labels[instances >= 1000] = 24
    for value in np.unique(instances[instances >= 1000]):
        new_labels, new_instances = remove_object(labels, instances, int(value))
        assert np.array_equal(new_labels, whole_frame_removal(labels, instances, value)), value
        mask = instances == value
        assert np.array_equal(new_instances[mask], new_labels[mask])
        assert np.array_equal(new_instances[~mask], instances[~mask])


def test_instance_filter_reasons(synthetic_root):
    scene = CityscapesDataset(synthetic_root, ["train"])[0]
    cfg = PrepareConfig()
    reasons = {instance_filter(inst, cfg, [24, 26]) for inst in scene.instances}
    assert None in reasons
    strict = PrepareConfig(min_area=10**9)
    assert {instance_filter(inst, strict, [24, 26]) for inst in scene.instances} <= {"area", "crowd"}
    assert {instance_filter(inst, cfg, [26]) for inst in scene.instances if inst.label_id == 24} == {"class"}


@pytest.fixture(scope="module")
def prepared(synthetic_root, tmp_path_factory):
    cfg = Config(data=DataConfig(root=str(synthetic_root)))
    out = tmp_path_factory.mktemp("prepared") / "p"
    summary = prepare(cfg, out=out, workers=1, progress=False)
    return cfg, out, summary


def test_prepared_arrays(prepared):
    cfg, out, summary = prepared
    p = cfg.prepare
    with np.load(out / "train.npz") as z:
        f, n = len(z["frames"]), len(z["inst_frame"])
        assert f == summary["splits"]["train"]["frames"] == 10
        assert n == sum(summary["splits"]["train"]["instances"].values()) > 0
        assert z["labels_where"].shape == (f, p.where_size[1], p.where_size[0])
        assert z["labels_what"].shape == (f, p.what_size[1], p.what_size[0])
        assert z["inst_mask"].shape == (n, p.mask_size, p.mask_size)
        assert set(np.unique(z["labels_what"])) <= set(VALID_IDS.tolist()), "nearest resizing only"
        assert set(np.unique(z["inst_mask"])) <= {0, 1}
        box = z["inst_box"]
        assert ((box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3])).all() and ((box >= 0) & (box <= 1)).all()
        # x+ differs from its frame only where the object was, and no longer shows it there.
        instances, labels, xp = z["instances_what"], z["labels_what"], z["xp_what"]
        for i in range(n):
            frame = z["inst_frame"][i]
            here = instances[frame] == z["inst_value"][i]
            changed = xp[i] != labels[frame]
            assert not (changed & ~here).any()
            assert not (xp[i][here] == z["inst_value"][i] // 1000).any()


def test_crop_bank(prepared):
    _, out, summary = prepared
    entries = [json.loads(line) for line in (out / "crops" / "train" / "index.jsonl").read_text().splitlines()]
    assert len(entries) == sum(summary["splits"]["train"]["instances"].values())
    import cv2

    for entry in entries[:10]:
        crop = cv2.imread(str(out / "crops" / "train" / entry["file"]), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (entry["box"][3], entry["box"][2], 4)
        assert (crop[..., 3] > 0).sum() == entry["area"]
