"""The built-in dataset's look-alikes (pipeline/datasets/synthetic/decoys.py): posters, mannequins and
statues that look like persons or cars, drawn in the image only and labelled as the facade they are on."""

from collections import Counter

import cv2
import numpy as np
import pytest

from pipeline import labels as lb
from pipeline.config import SyntheticConfig
from pipeline.datasets import LOOKALIKES_FILE
from pipeline.datasets.synthetic import build_scene, frame_ids
from pipeline.datasets.synthetic.decoys import KINDS, lookalike_records

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


def test_each_look_alike_records_its_figure_and_the_records_round_trip(pairs):
    """A look-alike's figure (the person or car drawn, not its board, pane or plinth) is part of its painted
    pixels, inside its box, and what ``lookalike_records`` writes decodes back to it."""
    from pycocotools import mask as mask_utils

    figures = 0
    for scene, builder, _ in pairs:
        records = lookalike_records(builder.decoys, scene.size)
        assert len(records) == len(builder.decoys)
        for d, r in zip(builder.decoys, records, strict=True):
            x0, y0, x1, y1 = d.box
            assert d.figure.shape == (y1 - y0, x1 - x0) and d.figure.any()
            assert not (d.figure & ~builder.decoy_mask[y0:y1, x0:x1]).any()
            whole = mask_utils.decode(r["figure"]).astype(bool)
            assert whole[y0:y1, x0:x1].sum() == whole.sum() and np.array_equal(whole[y0:y1, x0:x1], d.figure)
            assert (r["kind"], r["shows"], r["box"]) == (d.kind, d.shows, list(d.box))
            figures += 1
            if d.kind != "poster":  # a board is all painted; a pane's or plinth's figure is a part of it
                assert d.figure.sum() < builder.decoy_mask[y0:y1, x0:x1].sum()
    assert figures > 20


def test_the_synthesize_stage_writes_every_frames_look_alikes(tmp_path):
    import json

    from pipeline.synthesize import generate_dataset

    cfg = SyntheticConfig(splits={"train": 3, "test": 4}, width=256, height=128)
    generate_dataset(cfg, 5, tmp_path / "data", workers=2, progress=False)
    written = json.loads((tmp_path / "data" / LOOKALIKES_FILE).read_text())["splits"]
    for split in ("train", "test"):
        frames = [f for f in frame_ids(cfg) if f.split == split]
        assert list(written[split]) == [f.stem for f in frames]
        for f in frames:
            _, builder = build_scene(cfg, 5, f)
            assert written[split][f.stem] == lookalike_records(builder.decoys, (128, 256))
