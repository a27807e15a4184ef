"""The evaluate stage's metrics on constructed cases with known answers, and the stage end to end."""

import dataclasses
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_placement import CAM, H, W, person_at, street

from pipeline import labels as lb
from pipeline.config import RulesConfig
from pipeline.evaluation.arms import subset_indices
from pipeline.evaluation.downstream import Frame, iou_scores, train_segmenter
from pipeline.evaluation.inserted import Tally, shifted
from pipeline.evaluation.shapes import nearest_iou, precision_recall
from pipeline.ground_plane import fit_ground_plane, rows_inside_frame, scene_objects
from pipeline.masks import mask_bbox, square_mask
from pipeline.models.segmenter import Segmenter
from pipeline.rules import rule_verdicts

PERSON, CAR = lb.PERSON, lb.CAR


# ------------------------------------------------------------------------------------------ placement
def judge(labels, mask, label_id, camera, rules: RulesConfig | None = None):
    return rule_verdicts(labels, mask, label_id, camera, rules or RulesConfig())


def test_person_on_the_sidewalk_at_the_right_scale_scores_plausible_and_in_the_sky_does_not():
    labels = street()
    good = judge(labels, person_at(200, 100), PERSON, CAM)
    assert good == {"support": True, "scale": True, "overlap": True, "plausible": True}
    sky = np.zeros((H, W), bool)
    sky[10:50, 100:115] = True
    bad = judge(labels, sky, PERSON, CAM)
    assert not bad["support"] and not bad["scale"] and not bad["plausible"]
    # Without a camera the scale rule is left out, not failed.
    assert judge(labels, person_at(200, 100), PERSON, None) == {"support": True, "overlap": True, "plausible": True}
    # The thresholds are params: a band that excludes its scale fails the same person.
    assert not judge(labels, person_at(200, 100), PERSON, CAM, RulesConfig(scale_band=[1.5, 2.0]))["scale"]


def test_ground_plane_fitted_from_the_frames_own_objects():
    objects = [(person_at(v_b, left), PERSON) for v_b, left in ((140, 20), (170, 80), (200, 150), (230, 300))]
    cam = fit_ground_plane(objects)
    assert cam is not None
    assert cam.horizon_row == pytest.approx(CAM.horizon_row, abs=2.0)
    assert cam.height == pytest.approx(CAM.height, rel=0.05)
    # One occluded person (half as tall as its row says) does not bend the line.
    short = person_at(215, 400, scale=0.5)
    robust = fit_ground_plane([*objects, (short, PERSON)])
    assert robust.horizon_row == pytest.approx(CAM.horizon_row, abs=3.0)
    # Too few objects, or objects cut by the border, give no fit.
    assert fit_ground_plane(objects[:2]) is None
    border = np.zeros((H, W), bool)
    border[200:, 10:20] = True  # touches the bottom
    assert fit_ground_plane([*objects[:2], (border, PERSON)]) is None


def test_rows_inside_frame_leaves_out_objects_cut_by_any_border():
    inside = person_at(200, 100)
    rows = np.flatnonzero(inside.any(axis=1))
    assert rows_inside_frame(inside) == (rows[0], rows[-1])
    assert rows_inside_frame(np.zeros((H, W), bool)) is None
    for cut in (np.s_[:5, 10:20], np.s_[H - 5 :, 10:20], np.s_[100:120, :5], np.s_[100:120, W - 5 :]):
        mask = np.zeros((H, W), bool)
        mask[cut] = True
        assert rows_inside_frame(mask) is None


def test_scene_objects_skips_crowds_and_the_excluded_object():
    ids = np.zeros((H, W), np.int32)
    ids[10:20, 10:20] = PERSON * 1000
    ids[30:40, 10:20] = PERSON * 1000 + 1
    ids[50:60, 10:20] = PERSON  # a crowd region
    ids[70:80, 10:20] = CAR * 1000
    found = scene_objects(ids, exclude=PERSON * 1000 + 1)
    assert [label for _, label in found] == [PERSON, CAR]
    assert found[0][0].sum() == 100


def test_shifted_keeps_the_shape_inside_the_image():
    mask = person_at(200, 100)
    rng = np.random.default_rng(0)
    for _ in range(20):
        moved = shifted(mask, rng)
        assert moved.sum() == mask.sum()


def test_tally_shares_and_ratio():
    t = Tally()
    for ok in (True, True, True, False):
        t.add("ours", "person", {"support": ok, "plausible": ok})
    for ok in (True, False, False, False):
        t.add("random", "person", {"support": ok, "plausible": ok})
    s = t.summary()["person"]
    assert s["ours"] == {"support": 0.75, "plausible": 0.75, "objects": 4}
    assert s["ours_vs_random"] == 3.0
    assert "median_aspect" not in s  # no masks given


def test_tally_medians_of_height_and_width_over_height():
    t = Tally()
    for rows, cols in ((40, 10), (20, 10), (30, 30)):  # w/h 0.25, 0.5, 1.0
        mask = np.zeros((100, 100), bool)
        mask[5 : 5 + rows, 7 : 7 + cols] = True
        mask[5 + rows // 2, 7 + cols // 2] = False  # a hole leaves the box as it is
        t.add("ours", "car", {"plausible": True}, mask)
    s = t.summary()["car"]
    assert s["median_height"] == {"ours": 30.0} and s["median_aspect"] == {"ours": 0.5}


# ---------------------------------------------------------------------------------------------- shape
def ellipse(size=32, rx=0.5, ry=0.95):
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    return ((xx / rx) ** 2 + (yy / ry) ** 2 <= 1).astype(np.uint8)


def test_a_shape_identical_to_a_real_one_has_iou_1():
    real = np.stack([ellipse(rx=r) for r in (0.3, 0.5, 0.8)])
    best_a, best_b = nearest_iou(real[1:2], real)
    assert best_a[0] == 1.0
    assert best_b[1] == 1.0 and best_b[0] < 1.0
    pr = precision_recall(real, real, np.random.default_rng(0))
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0
    boxes = np.ones_like(real)
    assert precision_recall(boxes, real, np.random.default_rng(0))["precision"] < 0.9


def test_square_mask_normalises_position_and_size():
    a = np.zeros((100, 200), bool)
    a[10:50, 20:40] = True
    b = np.zeros((60, 60), bool)
    b[30:50, 5:15] = True
    assert (square_mask(a, 16) == square_mask(b, 16)).all()
    assert square_mask(np.zeros((5, 5), bool), 8).sum() == 0
    assert mask_bbox(a) == (20, 10, 20, 40)
    with pytest.raises(ValueError):
        mask_bbox(np.zeros((3, 3), bool))


# ----------------------------------------------------------------------------------------- downstream
def test_iou_scores_known_answer():
    target = np.zeros((1, 4, 4), np.uint8)
    target[0, :2] = lb.BY_NAME["person"].train_id  # 8 person pixels
    pred = target.copy()
    pred[0, 0, :2] = 0  # 2 of them predicted as road
    s = iou_scores(pred, target)
    assert s["person_iou"] == pytest.approx(6 / 8)
    assert s["miou"] == pytest.approx((6 / 8 + 8 / 10) / 2)
    assert np.isnan(s["car_iou"])  # no car anywhere


def test_subset_indices_spread_over_the_split():
    assert subset_indices(10, 3) == [0, 4, 9] or subset_indices(10, 3) == [0, 5, 9]
    assert subset_indices(3, 10) == [0, 1, 2]


def test_segmenter_shapes_and_a_few_steps_lower_the_loss():
    from pipeline.config import DownstreamConfig

    net = Segmenter(19, [8, 16])
    assert net(torch.rand(2, 3, 32, 64)).shape == (2, 19, 32, 64)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(4):
        target = np.zeros((32, 64), np.uint8)
        image = np.zeros((32, 64, 3), np.uint8)
        x = int(rng.integers(0, 48))
        target[8:24, x : x + 16] = 11
        image[8:24, x : x + 16] = (220, 20, 60)
        frames.append(Frame(image, target, np.zeros((32, 64), np.int32)))
    dc = DownstreamConfig(steps=40, batch_size=4, widths=[8, 16], size=[64, 32], lr=0.01, crop=0)
    _, losses = train_segmenter(frames, dc, seed=0, device=torch.device("cpu"), progress=False)
    assert len(losses) == 4 and losses[-1] < losses[0]


# ------------------------------------------------------------------------------------ copy-paste
def test_relocation_moves_ours_objects_and_nothing_else_about_them(augmented_tiny):
    """The copy-paste arm's objects are ours' - the same shape at the same size, from the same crop - at
    other positions: the labels it writes are that shape moved (less what nearer objects cover)."""
    from pycocotools import mask as mask_utils

    from pipeline.appearance import CropBank
    from pipeline.datasets import open_dataset
    from pipeline.evaluation.copy_paste import Relocate
    from pipeline.evaluation.inserted import read_manifest

    cfg, _ = augmented_tiny
    lines = [m for m in read_manifest(cfg.augment.out) if m["split"] == "train"]
    dataset = open_dataset(cfg.data, "train")
    stems = {dataset.frame_id(i).stem: i for i in range(len(dataset))}
    stem = max({m["source_frame"] for m in lines}, key=lambda s: sum(m["source_frame"] == s for m in lines))
    objects = sorted((m for m in lines if m["source_frame"] == stem), key=lambda m: int(m["id"].rsplit("/", 1)[1]))
    scene = dataset[stems[stem]]
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    before = scene.image.copy()
    n = Relocate(bank, cfg).insert(scene, objects, seed=3)
    assert n == len(objects) >= 2
    new = sorted((i for i in scene.instances if "insert_id" in i.meta), key=lambda i: i.meta["insert_id"])
    assert [i.name for i in new] == [m["class"] for m in objects]
    moved = 0
    for inst, m in zip(new, objects, strict=True):
        x, y, w, h = m["whole_box"]
        shape = mask_utils.decode(m["whole_mask"]).astype(bool)[y : y + h, x : x + w]
        visible = scene.mask(inst)
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        # the visible pixels lie inside one placement of the shape: find it from the box's size
        fits = [(ny, nx) for ny in range(max(0, rows[-1] - h + 1), rows[0] + 1)
                for nx in range(max(0, cols[-1] - w + 1), cols[0] + 1)
                if ny + h <= scene.size[0] and nx + w <= scene.size[1]
                and not (visible[ny : ny + h, nx : nx + w] & ~shape).any()
                and visible.sum() == visible[ny : ny + h, nx : nx + w].sum()]
        assert fits, m["id"]
        moved += (y, x) not in fits
        assert (scene.labels[visible] == inst.label_id).all()
    assert moved >= 1  # random positions, not ours
    changed = (scene.image != before).any(-1)
    shown = np.zeros(scene.size, bool)
    for inst in new:
        shown |= scene.mask(inst)
    assert not (changed & ~shown).any()  # only the objects' visible pixels change


# ------------------------------------------------------------------------------------- the stages
def _labels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_the_rules_arms_window_check_gives_the_whole_frame_verdicts(synthetic_root):
    """The rules arm judges each try on a window around the object; it must say what the rules say of the
    whole-frame mask - at random positions, at the bottom border, with and without the frame's camera."""
    from pipeline.appearance import CropBank
    from pipeline.config import Config, DataConfig
    from pipeline.datasets import open_dataset
    from pipeline.evaluation.copy_paste import Relocate, footprint
    from pipeline.labels import BY_NAME

    cfg = Config(data=DataConfig(root=str(synthetic_root)))
    relocate = Relocate(CropBank.__new__(CropBank), cfg, rules=True)  # the bank is not read here
    dataset = open_dataset(cfg.data, "train")
    rng = np.random.default_rng(0)
    verdicts = []
    for i in range(min(6, len(dataset))):
        scene = dataset[i]
        height, width = scene.size
        for camera in (relocate.rules.camera(scene), None):
            for inst in [o for o in scene.instances if o.name in ("person", "car") and not o.iscrowd][:3]:
                mask = scene.instance_ids == inst.value
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                local = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
                local = np.pad(local, ((2, 1), (0, 0)))  # empty rows inside the box, as a whole_box may hold
                h, w = local.shape
                padded, filled = footprint(local)
                for k in range(60):
                    nx = int(rng.integers(0, width - w + 1))
                    ny = height - h - k % 3 if k % 4 == 0 else int(rng.integers(0, height - h + 1))
                    whole = np.zeros(scene.size, bool)
                    whole[ny : ny + h, nx : nx + w] = local
                    label_id = BY_NAME[inst.name].id
                    full = relocate.rules.verdicts(scene.labels, whole, label_id, camera)["plausible"]
                    window = relocate.plausible(scene.labels, padded, filled, nx, ny, label_id, camera)
                    verdicts.append((full, window))
    assert all(full == window for full, window in verdicts)
    assert 0 < sum(full for full, _ in verdicts) < len(verdicts)  # both verdicts occur


def test_downstream_stages_and_evaluate_end_to_end(augmented_tiny, tmp_path):
    """The downstream stages on a tiny run - the test split, the four arms, two seeds - then the evaluate
    stage gathering them over seeds beside its own figures."""
    from test_downstream import TINY_DETECTOR

    from pipeline.config import DownstreamConfig, EvaluateConfig
    from pipeline.downstream import downstream_stage, downstream_test_stage
    from pipeline.downstream_arms import arms_stage
    from pipeline.evaluate import evaluate_stage
    from pipeline.evaluation.seeds import METRICS, read_metric

    cfg, _ = augmented_tiny
    detector = dataclasses.replace(TINY_DETECTOR, enabled=True, steps=3, warmup=1)
    down = DownstreamConfig(out=str(tmp_path / "downstream"), sizes=[3], seeds=[0, 1], size=[128, 64],
                            widths=[8, 16], crop=32, steps=6, batch_size=2, log_every=3, test_split="val",
                            detector=detector, copies=2, per_frame={})  # {}: the augment stage's
    cfg = dataclasses.replace(cfg, evaluate=EvaluateConfig(
        samples_per_frame=2, random_per_object=2, diversity_frames=2, diversity_draws=4, gallery_frames=2,
        render_frames=0, real_root="", device="cpu", downstream=down))
    assert downstream_test_stage(cfg, progress=False) == 4
    # The built-in dataset's look-alikes go with the test frames: those four frames' records, as written.
    written = json.loads((tmp_path / "downstream/test/lookalikes.json").read_text())["splits"]["val"]
    source = json.loads((Path(cfg.data.root) / "lookalikes.json").read_text())["splits"]["val"]
    assert len(written) == 4 and all(source[stem] == records for stem, records in written.items())
    shown = Counter(r["shows"] for records in written.values() for r in records)
    arms = arms_stage(cfg, 3, progress=False)
    assert arms["frames"] == {"subset": 3, "ours": 9, "copy_paste": 9, "rules": 9}  # 3 + 2 copies of each
    assert arms["inserted"]["ours"] == arms["inserted"]["copy_paste"]  # the same counts in every inserted arm
    assert sum(arms["inserted"]["ours"].values()) > 0
    for arm, shares in arms["inserted_share"].items():
        assert all(shares[c] == round(arms["inserted"][arm][c] / arms["objects"][arm][c], 4) for c in shares)
    # The first version of a frame is the augment stage's own (same seed, same per_frame); the second differs.
    aug_labels = {p.name: p for p in Path(cfg.augment.out, "cityscapes/gtFine/train").rglob("*_labelIds.png")}
    ours = tmp_path / "downstream/arms/3/ours/cityscapes/gtFine/train"
    firsts = sorted(p for p in ours.rglob("*_labelIds.png") if p.parent.name.endswith("-aug"))
    seconds = sorted(p for p in ours.rglob("*_labelIds.png") if p.parent.name.endswith("-aug2"))
    assert len(firsts) == len(seconds) == 3
    assert all((_labels(p) == _labels(aug_labels[p.name])).all() for p in firsts)
    assert any((_labels(a) != _labels(b)).any() for a, b in zip(firsts, seconds, strict=True))
    for arm in ("subset", "ours", "copy_paste", "rules"):
        doc = json.loads((tmp_path / f"downstream/arms/3/{arm}/coco/annotations/instances_train.json").read_text())
        assert len(doc["images"]) == arms["frames"][arm]
        for image in doc["images"]:
            assert (tmp_path / f"downstream/arms/3/{arm}/cityscapes/leftImg8bit/train" / image["file_name"]).is_file()
        labels = sorted((tmp_path / f"downstream/arms/3/{arm}/cityscapes/gtFine/train").rglob("*_labelIds.png"))
        assert len(labels) == arms["frames"][arm]  # every frame complete, its colour file too (copied or written)
        assert all(p.with_name(p.name.replace("_labelIds", "_color")).is_file() for p in labels)
    for seed in (0, 1):  # seed 0: the eight models two at a time, in worker processes; seed 1 one after another
        workers = dataclasses.replace(cfg.evaluate, downstream=dataclasses.replace(down, workers=2 - seed))
        run = downstream_stage(dataclasses.replace(cfg, evaluate=workers), 3, seed, tmp_path / "metrics",
                               tmp_path / "models", progress=False)
        for arm in ("subset", "ours", "copy_paste", "rules"):
            f = run["arms"][arm]
            assert f["train_frames"] == arms["frames"][arm]
            assert {"person_iou", "car_iou", "person_out_of_context_pixels"} <= set(f["segmenter"])
            assert {"mask_ap50", "box_ap50", "ar_small"} <= set(f["detector"]["scores"]["car"])
            assert set(f["segmenter"]["recall_by_height"]) == {"person", "car"}
            assert set(f["segmenter"]["false_positives"]["person"]) == {"per_frame", "under"}
            looks = f["segmenter"]["lookalikes"]
            assert all(0 <= looks[c]["taken"] <= looks[c]["total"] <= shown[c] for c in ("person", "car"))
            assert "per_image" not in f  # the counts go beside the metrics, not into them
        counts = json.loads((tmp_path / f"downstream/runs/3-{seed}.json").read_text())["arms"]
        assert set(counts) == {"subset", "ours", "copy_paste", "rules"}
        per_image = {"person", "car", "lookalike_person", "lookalike_car", "false_positives_person",
                     "false_positives_car", "recall_under_32px_person", "recall_32px_up_person",
                     "recall_under_32px_car", "recall_32px_up_car"}
        assert all(set(counts[arm]) == per_image for arm in counts)
        shares = ("person", "car", "recall_under_32px_person", "recall_32px_up_person", "recall_under_32px_car",
                  "recall_32px_up_car")
        assert all(len(counts[arm][name]) == 4 and all(i <= u for i, u in counts[arm][name])
                   for arm in counts for name in shares)
        for arm in counts:  # the per-image rows sum to the run's figures
            seg = run["arms"][arm]["segmenter"]
            found = sum(cell["found"] for cell in seg["recall_by_height"]["person"].values())
            assert found == sum(f for name in ("recall_under_32px_person", "recall_32px_up_person")
                                for f, _ in counts[arm][name])
            fp = sum(n for n, _ in counts[arm]["false_positives_person"])
            assert fp / 4 == pytest.approx(seg["false_positives"]["person"]["per_frame"], abs=1e-4)
    assert (tmp_path / "models/3-0-subset.safetensors").is_file()
    # The worker count does not change a figure: seed 0 again, one model after another.
    one = dataclasses.replace(cfg.evaluate, downstream=dataclasses.replace(down, workers=1))
    again = downstream_stage(dataclasses.replace(cfg, evaluate=one), 3, 0, tmp_path / "again", tmp_path / "again",
                             progress=False)
    first = json.loads((tmp_path / "metrics/3-0.json").read_text())
    for arm, f in again["arms"].items():
        assert {k: v for k, v in f.items() if k != "seconds"} == {k: v for k, v in first["arms"][arm].items()
                                                                  if k != "seconds"}
    assert (tmp_path / "again/3-0-subset.safetensors").read_bytes() == (tmp_path / "models/3-0-subset.safetensors"
                                                                          ).read_bytes()
    metrics = evaluate_stage(cfg, tmp_path / "metrics.json", tmp_path / "plots", tmp_path / "reports", progress=False,
                             runs=tmp_path / "metrics", run_models=tmp_path / "models")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for name in ("person", "car"):
        row = saved["placement"][name]
        # the model first
        assert list(row) == ["raw_where", "random_boxes", "real_boxes", "raw_over_real", "acceptance_rate",
                             "filtered"]
        low, high = row["raw_where"]["plausible_ci95"]  # over the val frames
        assert 0 <= low <= high <= 1
        assert {"ours", "random", "real"} <= set(row["filtered"])
        assert 0 <= row["filtered"]["ours"]["plausible"] <= 1 and 0 <= row["raw_where"]["plausible"] <= 1
        assert set(saved["shape"][name]) == {"raw", "real_train", "box", "inserted"}
        assert 0 <= saved["diversity"][name]["box_iou_within"] <= 1
    summary = saved["downstream"]["3"]
    assert summary["seeds"] == [0, 1] and summary["train_frames"]["ours"] == 9
    iou = summary["metrics"]["segmenter_iou_car"]
    assert iou["ours"]["n"] == 2 and iou["ours"]["std"] is not None
    assert iou["ours_vs_copy_paste"]["verdict"] in ("beats", "loses", "within 2 std")
    # every metric the runs measured (the tiny detector makes no confident detection to rate, and the four
    # test frames may hold no look-alike of a class: those are left out)
    looks = first["arms"]["subset"]["segmenter"]["lookalikes"]
    unmeasured = {f"lookalike_pixels_{c}" for c in ("person", "car") if looks[c]["total"] == 0}
    # ... nor, in four small frames, objects of every height
    unmeasured |= {m for m in METRICS if m.startswith("recall_") and read_metric(first["arms"]["subset"], m) is None}
    measured = {m for m in METRICS if not m.startswith("out_of_context_detections")} - unmeasured
    assert measured <= set(summary["metrics"]) <= set(METRICS)
    assert {f"lookalike_pixels_{c}" for c in ("person", "car")} - unmeasured <= set(summary["paired"])
    assert {"false_positives_person", "recall_32px_up_car", "recall_under_32px_person"} <= set(summary["paired"])
    paired = summary["paired"]["segmenter_iou_person"]
    assert set(paired) == {"ours_minus_subset", "ours_minus_copy_paste", "ours_minus_rules"}
    for row in paired.values():
        assert row["ci95"][0] <= row["difference"] <= row["ci95"][1] and row["seeds"] == 2 and row["images"] == 4
    # The render modes' score reads the first run's subset-arm segmenter (the tiny run has no renderer to score with).
    from pipeline.downstream import load_subset_segmenter

    segmenter = load_subset_segmenter(cfg, torch.device("cpu"), tmp_path / "models")
    assert segmenter(torch.rand(1, 3, 64, 128)).shape == (1, 19, 64, 128)
    assert saved["real_frames"] == {"skipped": "evaluate.real_root is empty"}
    assert (tmp_path / "reports" / "gallery.png").stat().st_size > 0
    assert "gallery/" in (tmp_path / "reports" / "gallery.html").read_text()
    rows = json.loads((tmp_path / "plots" / "downstream" / "segmenter_iou_car.json").read_text())
    assert [r["arm"] for r in rows] == ["copy_paste", "ours", "rules", "subset"]
    assert all(r["low"] <= r["mean"] <= r["high"] for r in rows)


def test_the_real_frames_are_augmented_and_judged_apart_from_the_scored_split(trained_tiny, sample_root, tmp_path):
    """``evaluate.real_root`` (the real Cityscapes sample beside the project, skipped where it is absent; two of its
    frames, for time): they are augmented in a temporary folder by the same model and judged by the same rules;
    a folder that is no Cityscapes tree is one error naming the key."""
    import shutil

    from pipeline.errors import ConfigError
    from pipeline.evaluate import real_dataset, real_frames

    root = tmp_path / "real"
    frames = sorted(f.name.split("_leftImg8bit")[0] for f in (sample_root / "leftImg8bit").rglob("*_leftImg8bit.png"))
    keep = tuple(f"{frame}_" for frame in frames[:2])
    shutil.copytree(sample_root, root, ignore=lambda folder, names: [
        n for n in names if (Path(folder) / n).is_file() and not n.startswith(keep)])
    cfg = dataclasses.replace(trained_tiny, evaluate=dataclasses.replace(trained_tiny.evaluate, real_root=str(root)))
    dataset, skipped = real_dataset(cfg)
    assert skipped is None and dataset.root == root and len(dataset) == 2
    real = real_frames(cfg, dataset, progress=False)
    assert real["root"] == str(root) and real["frames"] == 2
    assert set(real["acceptance"]) == set(real["placement"]) == set(cfg.prepare.classes)
    for name, figures in real["placement"].items():
        assert 0.0 <= figures["ours"]["plausible"] <= 1.0, (name, figures)
    assert len(real["_gallery"]) > 0
    empty = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, real_root=str(root / "gtFine")))
    with pytest.raises(ConfigError, match="evaluate.real_root"):
        real_dataset(empty)
    none = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, real_root=""))
    assert real_dataset(none) == (None, "evaluate.real_root is empty")
