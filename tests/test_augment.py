"""The augment stage end to end on a small dataset with a briefly trained model: official tools accept
the output, shards and resumed runs give the same bytes, a bad frame is reported and skipped."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import LOOSE
from official import coco_self_ap, render_polygons
from pycocotools.coco import COCO

from pipeline.augment import augment
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.labels import BY_NAME


def at(cfg: Config, out: Path, **changes) -> Config:
    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, out=str(out), **changes))


def tree_bytes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def augmented(augmented_tiny) -> tuple[Config, dict]:
    return augmented_tiny


def test_inserts_objects_and_reports_them(augmented):
    cfg, result = augmented
    assert result["merged"] and result["frames_done"] == 10
    summary = result["summary"]
    inserted = sum(c["inserted"] for c in summary["classes"].values())
    assert inserted > 0, summary
    out = Path(cfg.augment.out)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == inserted
    for key in ("id", "file_name", "class", "box", "seed", "draw", "model", "crop"):
        assert all(key in m for m in manifest)
    for name, info in summary["classes"].items():
        assert info["candidates_drawn"] >= info["inserted"]
        assert info["inserted"] + sum(info["rejected"].values()) == info["candidates_drawn"], name


def test_output_passes_the_official_tools(augmented, synthetic_root):
    cfg, _ = augmented
    out = Path(cfg.augment.out)
    coco_file = out / "coco" / "annotations" / "instances_train.json"
    doc = json.loads(coco_file.read_text())
    assert min(i["id"] for i in doc["images"]) == 1 and min(a["id"] for a in doc["annotations"]) == 1
    assert len(doc["images"]) == 20  # originals + augmented
    for ann in doc["annotations"]:
        if not ann["iscrowd"]:
            assert all(len(ring) >= 6 for ring in ann["segmentation"])
    ap = coco_self_ap(coco_file)
    assert ap == {"segm": 1.0, "bbox": 1.0}
    # Each inserted annotation names its manifest line; masks decode to the instanceIds of the tree.
    manifest = {json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    inserted = [a for a in doc["annotations"] if a["inserted"]]
    assert {a["insert_id"] for a in inserted} == manifest
    import cv2

    coco = COCO(str(coco_file))
    for image in doc["images"]:
        stem = image["file_name"].split("/")[-1].replace("_leftImg8bit.png", "")
        city = image["file_name"].split("/")[0]
        gt = out / "cityscapes" / "gtFine" / "train" / city
        labels = cv2.imread(str(gt / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
        ids = cv2.imread(str(gt / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED).astype(np.int32)
        rendered, _ = render_polygons(gt / f"{stem}_gtFine_polygons.json")
        assert (rendered == labels).mean() >= 0.995, stem
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            if ann["iscrowd"]:
                continue
            decoded = coco.annToMask(ann).astype(bool)
            values = np.unique(ids[decoded])
            assert len(values) == 1 and values[0] // 1000 == ann["category_id"]
            assert decoded.sum() == (ids == values[0]).sum() == ann["area"]
        if city.endswith("-aug"):
            continue
        # Originals are copied byte for byte.
        src = synthetic_root / "gtFine" / "train" / city / f"{stem}_gtFine_instanceIds.png"
        assert src.read_bytes() == (gt / f"{stem}_gtFine_instanceIds.png").read_bytes()


def test_inserted_pixels_show_the_object_and_the_rest_is_untouched(augmented, synthetic_root):
    import cv2

    cfg, _ = augmented
    out = Path(cfg.augment.out)
    for line in (out / "manifest.jsonl").read_text().splitlines()[:10]:
        m = json.loads(line)
        city = m["file_name"].split("/")[0]
        stem = Path(m["file_name"]).name.replace("_leftImg8bit.png", "")
        source = m["source_frame"]
        aug_img = cv2.imread(str(out / "cityscapes" / "leftImg8bit" / "train" / m["file_name"]))
        src_img = cv2.imread(str(synthetic_root / "leftImg8bit" / "train" / city.replace("-aug", "")
                                 / f"{source}_leftImg8bit.png"))
        ids = cv2.imread(str(out / "cityscapes" / "gtFine" / "train" / city / f"{stem}_gtFine_instanceIds.png"),
                         cv2.IMREAD_UNCHANGED)
        src_ids = cv2.imread(str(synthetic_root / "gtFine" / "train" / city.replace("-aug", "")
                                 / f"{source}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        inserted_values = [json.loads(x)["instance_id"] for x in (out / "manifest.jsonl").read_text().splitlines()
                           if json.loads(x)["file_name"] == m["file_name"]]
        new = np.isin(ids, inserted_values)
        assert (ids == m["instance_id"]).sum() == m["area"]
        assert np.array_equal(aug_img[~new], src_img[~new])  # pixels outside inserted objects unchanged
        # Classes are unchanged outside them (an instance's remains may have become a crowd region).
        assert np.array_equal(np.where(ids >= 1000, ids // 1000, ids)[~new],
                              np.where(src_ids >= 1000, src_ids // 1000, src_ids)[~new])


def test_shards_merge_to_the_same_bytes(augmented, tmp_path):
    cfg, _ = augmented
    sharded = at(cfg, tmp_path / "aug")
    first = augment(sharded, shard=(1, 3), progress=False)
    assert not first["merged"]
    augment(sharded, shard=(0, 3), progress=False)
    last = augment(sharded, shard=(2, 3), progress=False)
    assert last["merged"]
    assert tree_bytes(tmp_path / "aug") == tree_bytes(Path(cfg.augment.out))


def test_worker_processes_give_the_same_bytes(augmented, tmp_path):
    cfg, _ = augmented  # the module's run used one process
    assert cfg.augment.workers == 1
    augment(at(cfg, tmp_path / "aug", workers=2), progress=False)
    assert tree_bytes(tmp_path / "aug") == tree_bytes(Path(cfg.augment.out))


def test_killed_run_resumes_to_the_same_bytes(augmented, tmp_path):
    cfg, _ = augmented
    resumed = at(cfg, tmp_path / "aug")
    part = augment(resumed, progress=False, stop_after=4)  # as if killed after 4 frames
    assert part["frames_done"] == 4 and not part["merged"]
    # What a kill mid-frame leaves: a temporary file and a frame's files without its record.
    records = sorted((tmp_path / "aug" / "records" / "train").iterdir())
    (records[0].parent / ".x.json.abc.tmp").write_bytes(b"partial")
    records[-1].unlink()
    rest = augment(resumed, progress=False)
    assert rest["frames_done"] == 7 and rest["merged"]
    assert tree_bytes(tmp_path / "aug") == tree_bytes(Path(cfg.augment.out))


def test_changed_params_start_over(augmented, tmp_path):
    cfg, _ = augmented
    out = tmp_path / "aug"
    augment(at(cfg, out), progress=False, stop_after=2)
    again = augment(at(cfg, out, per_frame={"person": 1, "car": 0}), progress=False)
    assert again["frames_done"] == 10  # nothing of the other run was kept
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"]["car"]["inserted"] == 0


def test_a_changed_frame_is_done_again_and_other_crops_redo_every_frame(augmented, synthetic_root, tmp_path,
                                                                          capsys):
    cfg, _ = augmented
    root, crops = tmp_path / "data", tmp_path / "crops"
    shutil.copytree(synthetic_root, root)
    shutil.copytree(cfg.augment.appearance.crops, crops)
    run = at(cfg, tmp_path / "aug", appearance=dataclasses.replace(cfg.augment.appearance, crops=str(crops)))
    run = dataclasses.replace(run, data=dataclasses.replace(cfg.data, root=str(root)))
    assert augment(run, progress=False)["frames_done"] == 10
    assert augment(run, progress=False)["frames_done"] == 0  # nothing changed: every frame kept
    image = sorted((root / "leftImg8bit" / "train").rglob("*.png"))[2]
    image.write_bytes((sorted((root / "leftImg8bit" / "train").rglob("*.png"))[3]).read_bytes())
    again = augment(run, progress=False)
    assert again["frames_done"] == 1 and again["merged"]
    masks = np.load(crops / "masks.npy")
    np.save(crops / "masks.npy", masks[:, :, ::-1].copy())
    capsys.readouterr()
    assert augment(run, progress=False)["frames_done"] == 10
    assert "augment: saved work was made from other inputs.crops - starting over" in capsys.readouterr().err


def test_bad_frame_is_reported_and_skipped_or_stops(augmented, synthetic_root, tmp_path):
    cfg, _ = augmented
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    bad = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))[3]
    bad.write_bytes(bad.read_bytes()[:200])
    skip = dataclasses.replace(at(cfg, tmp_path / "aug"), data=dataclasses.replace(cfg.data, root=str(root)))
    result = augment(skip, progress=False)
    errors = result["summary"]["errors"]
    assert len(errors) == 1 and str(bad) in errors[0]["error"] and "truncated" in errors[0]["error"]
    doc = json.loads((tmp_path / "aug" / "coco" / "annotations" / "instances_train.json").read_text())
    assert len(doc["images"]) == 18
    assert not list((tmp_path / "aug" / "cityscapes").rglob(bad.name.replace("_gtFine_labelIds.png", "") + "*"))
    stop = at(skip, tmp_path / "aug2", on_error="stop")
    with pytest.raises(PipelineError, match="truncated"):
        augment(stop, progress=False)


def test_a_bug_in_the_per_frame_job_stops_the_run_even_under_on_error_skip(augmented, tmp_path, monkeypatch):
    import pipeline.augment as augment_module

    cfg, _ = augmented

    def broken(*args, **kwargs):
        raise ZeroDivisionError("an injected programming error")

    monkeypatch.setattr(augment_module, "augment_frame", broken)
    with pytest.raises(ZeroDivisionError, match="injected"):
        augment(at(cfg, tmp_path / "aug", on_error="skip"), progress=False)


def test_cli_augment_a_folder(trained_tiny, synthetic_root, tmp_path):
    params = tmp_path / "params.yaml"
    import yaml

    a = trained_tiny.augment
    params.write_text(yaml.safe_dump({
        "prepare": dataclasses.asdict(trained_tiny.prepare), "model": dataclasses.asdict(trained_tiny.model),
        "augment": {**LOOSE, "appearance": {"crops": a.appearance.crops}},
    }))
    cmd = [sys.executable, "-m", "pipeline", "augment", str(synthetic_root), str(tmp_path / "out"), "--split", "val",
           "--model", a.model, "--params", str(params), "--per-frame", "car=2", "--no-originals", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "augmented 4 frames" in done.stdout
    doc = json.loads((tmp_path / "out" / "coco" / "annotations" / "instances_val.json").read_text())
    assert len(doc["images"]) == 4 and all("-aug/" in i["file_name"] for i in doc["images"])
    bad = subprocess.run(cmd[:-1] + ["--shard", "3/2"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--shard 3/2" in bad.stderr


def test_real_cityscapes_frames(trained_tiny, sample_root, tmp_path):
    """The real 2048x1024 sample frames augmented: the official tools accept every written frame."""
    import cv2

    from pipeline.datasets.cityscapes import CityscapesDataset

    split = CityscapesDataset(sample_root).splits[0]
    cfg = dataclasses.replace(at(trained_tiny, tmp_path / "aug", splits=[split]),
                              data=dataclasses.replace(trained_tiny.data, root=str(sample_root)))
    result = augment(cfg, progress=False)
    assert result["merged"] and not result["summary"]["errors"]
    coco_file = tmp_path / "aug" / "coco" / "annotations" / f"instances_{split}.json"
    assert coco_self_ap(coco_file) == {"segm": 1.0, "bbox": 1.0}
    for polygons in sorted((tmp_path / "aug" / "cityscapes" / "gtFine").rglob("*-aug_*_polygons.json")):
        labels = cv2.imread(str(polygons).replace("_polygons.json", "_labelIds.png"), cv2.IMREAD_UNCHANGED)
        rendered, _ = render_polygons(polygons)
        assert (rendered == labels).mean() >= 0.995, polygons.name


def test_every_batch_is_sampled_on_the_scene_with_the_objects_inserted_before_it(trained_tiny, synthetic_root,
                                                                                   monkeypatch):
    """The candidates come from the model reading the frame with the objects inserted so far (as it reads
    existing objects): after each accepted person the untried draws are sampled again, and the cars' batch
    reads every inserted person; the classes take turns in ``augment.per_frame`` order."""
    import dataclasses

    import pipeline.insertion as insertion
    from pipeline.appearance import CropBank
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.trained_gan import load_trained

    def batches(cfg, scene, seed):
        """(labels seen, class) per forward pass, and the frame's report."""
        inserter = insertion.Inserter(load_trained(cfg.augment.model, cfg),
                                      CropBank(cfg.augment.appearance.crops, cfg.augment.appearance), cfg)
        seen: list = []
        real_inputs, real_sample = insertion.scene_inputs, inserter._sample

        def spy_inputs(scene, *args):
            seen.append(scene.labels.copy())
            return real_inputs(scene, *args)

        def spy_sample(scene, inputs, c, name, *args, **kwargs):
            seen[-1] = (seen[-1], name)
            return real_sample(scene, inputs, c, name, *args, **kwargs)

        monkeypatch.setattr(insertion, "scene_inputs", spy_inputs)
        monkeypatch.setattr(inserter, "_sample", spy_sample)
        report = inserter.insert(scene, seed=seed)
        monkeypatch.undo()
        return seen, report

    cfg = trained_tiny
    person = BY_NAME["person"].id
    dataset = CityscapesDataset(synthetic_root, ["train"])
    for index in range(len(dataset)):
        before = dataset[index].labels.copy()
        seen, report = batches(cfg, dataset[index], index)
        persons = [i for i in report.inserted if i["class"] == "person"]
        if len(persons) == 2:
            break
    else:
        pytest.fail("no frame got two persons")
    # persons, persons again after the first one went in, then cars
    assert [name for _, name in seen] == ["person", "person", "car"]
    assert np.array_equal(seen[0][0], before)
    for labels, _ in seen[1:]:
        changed = labels != before  # the inserted persons' visible pixels, and nothing else
        assert changed.sum() > 0 and (labels[changed] == person).all()
    assert (seen[2][0] != seen[1][0]).any()  # the cars read the second person too
    # Cars first when per_frame lists them first: their batch reads the frame as it was.
    cars_first = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, per_frame={"car": 1, "person": 2}))
    seen, _ = batches(cars_first, dataset[index], index)
    assert seen[0][1] == "car" and np.array_equal(seen[0][0], before)


def test_the_support_rule_keeps_candidates_on_their_ground(trained_tiny, synthetic_root):
    """With augment.support every inserted object stands on a label of its class's support set (the rules'
    table on the built-in data); without it the tiny model's loose candidates do not all."""
    import dataclasses

    from pycocotools import mask as mask_utils

    import pipeline.insertion as insertion
    from pipeline.appearance import CropBank
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.labels import SUPPORT
    from pipeline.rules import support_label
    from pipeline.trained_gan import load_trained

    dataset = CityscapesDataset(synthetic_root, ["train"])
    grounds = {}
    for support in (False, True):
        cfg = dataclasses.replace(trained_tiny, augment=dataclasses.replace(trained_tiny.augment, support=support))
        inserter = insertion.Inserter(load_trained(cfg.augment.model, cfg),
                                      CropBank(cfg.augment.appearance.crops, cfg.augment.appearance), cfg)
        on_ground, rejected = [], 0
        for index in range(len(dataset)):
            scene = dataset[index]
            before = scene.labels.copy()
            report = inserter.insert(scene, seed=index)
            rejected += sum(n for (_, reason), n in report.rejected.items() if reason == "support")
            for item in report.inserted:
                mask = mask_utils.decode(item["whole_mask"]).astype(bool)
                on_ground.append(support_label(before, mask) in SUPPORT[BY_NAME[item["class"]].id])
        grounds[support] = (on_ground, rejected)
    assert grounds[True][0] and all(grounds[True][0]) and grounds[True][1] > 0
    assert grounds[False][1] == 0 and not all(grounds[False][0])
