"""The built-in dataset's look-alikes (pipeline/datasets/synthetic/decoys.py): posters, mannequins and
statues that look like persons or cars, drawn in the image only and labelled as the facade they are on."""

from collections import Counter

import cv2
import numpy as np
import pytest

from pipeline import labels as lb
from pipeline.config import SyntheticConfig
from pipeline.datasets.synthetic import build_scene, frame_ids
from pipeline.datasets.synthetic.decoys import KINDS

CFG = SyntheticConfig(splits={"val": 40})
NONE = SyntheticConfig(splits={"val": 40}, decoys_per_frame=[0, 0])
BUILDING = lb.BY_NAME["building"].id


@pytest.fixture(scope="module")
def pairs():
    """(scene with look-alikes, its builder, the same frame without any) for 40 frames."""
    return [(*build_scene(CFG, 3, f), build_scene(NONE, 3, f)[0]) for f in frame_ids(CFG)]


def test_look_alikes_change_the_image_only(pairs):
    """Labels, instances and parts are bit-identical with and without look-alikes; the image differs only
    on a look-alike's pixels and their 3x3 blur neighbourhood."""
    drawn = 0
    for scene, builder, plain in pairs:
        assert np.array_equal(scene.labels, plain.labels)
        assert np.array_equal(scene.instance_ids, plain.instance_ids)
        assert np.array_equal(scene.parts, plain.parts)
        assert [i.value for i in scene.instances] == [i.value for i in plain.instances]
        near = cv2.dilate(builder.decoy_mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        changed = (scene.image != plain.image).any(-1)
        assert not (changed & ~near).any()
        drawn += int(builder.decoy_mask.sum())
        if builder.decoys:
            assert changed[builder.decoy_mask].mean() > 0.5  # painted, not a no-op
    assert drawn > 0


def test_look_alikes_lie_on_free_facade_pixels(pairs):
    """Every look-alike pixel is labelled building with no person or car instance on it (Cityscapes'
    policy for posters, mannequins and statues), and lies inside its recorded box."""
    for scene, builder, _ in pairs:
        mask = builder.decoy_mask
        assert (scene.labels[mask] == BUILDING).all()
        assert (scene.instance_ids[mask] < lb.INSTANCE_FACTOR).all()
        inside = np.zeros_like(mask)
        for d in builder.decoys:
            x0, y0, x1, y1 = d.box
            inside[y0:y1, x0:x1] = True
        assert not (mask & ~inside).any()


def test_every_kind_appears_at_person_like_sizes(pairs):
    kinds = Counter((d.kind, d.shows) for _, b, _ in pairs for d in b.decoys)
    assert {k for k, _ in kinds} == set(KINDS)
    assert kinds[("poster", "person")] and kinds[("poster", "car")]
    heights = [d.box[3] - d.box[1] for _, b, _ in pairs for d in b.decoys if d.kind != "poster"]
    assert np.median(heights) >= 15  # life-size figures, not specks


def test_the_count_follows_the_config():
    few = SyntheticConfig(splits={"val": 10}, decoys_per_frame=[1, 1])
    for f in frame_ids(few):
        assert len(build_scene(few, 0, f)[1].decoys) <= 1
    for f in frame_ids(NONE)[:10]:
        _, b = build_scene(NONE, 0, f)
        assert b.decoys == [] and not b.decoy_mask.any()
