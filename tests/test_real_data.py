"""A user's own dataset: what the built-in dataset has and real ones lack (part maps, camera files, test
labels), and the whole `dvc repro` on the real Cityscapes sample frames - as a Cityscapes tree and as COCO.

The end-to-end runs lay the eight sample frames out as a user's tree (6 train, 2 val, and a test split
whose label maps are empty, as Cityscapes' are) and skip when the sample is absent.
"""

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SAMPLE
from test_dvc_pipeline import dvc, project_copy, tiny_params

from pipeline.config import Config, DataConfig, DownstreamConfig, EvaluateConfig, PartNetConfig, RendererConfig
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes, encode_png, read_single_channel
from pipeline.labels import BY_NAME, INSTANCE_FACTOR, PARTS

SAMPLE_STEMS = [f"aachen_{i:06d}_000019" for i in range(8)]


def user_tree(root, with_test: bool = True):
    """The sample frames as a user's Cityscapes tree: train 6, val 2, and test 1 with empty labels."""
    layout = [("train", SAMPLE_STEMS[:6]), ("val", SAMPLE_STEMS[6:])]
    layout += [("test", SAMPLE_STEMS[:1])] if with_test else []
    for split, stems in layout:
        for stem in stems:
            for kind, suffix in (("leftImg8bit", "_leftImg8bit.png"), ("gtFine", "_gtFine_labelIds.png"),
                                 ("gtFine", "_gtFine_instanceIds.png")):
                src = SAMPLE / kind / "train" / "aachen" / f"{stem}{suffix}"
                dst = root / kind / split / "aachen" / f"{stem}{suffix}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                if split == "test" and kind == "gtFine":  # Cityscapes' test labels: no labelled pixel
                    empty = np.zeros_like(read_single_channel(src, np.uint16 if "instance" in suffix else np.uint8))
                    atomic_write_bytes(dst, encode_png(empty))
                else:
                    shutil.copy2(src, dst)
    return root


def finite_numbers(value, where="") -> list[str]:
    """Paths of the non-finite numbers in a JSON value."""
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in finite_numbers(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [bad for i, v in enumerate(value) for bad in finite_numbers(v, f"{where}[{i}]")]
    return [where] if isinstance(value, float) and not math.isfinite(value) else []


# ------------------------------------------------------------------------------------ missing inputs


def test_an_unlabelled_test_split_is_refused_naming_the_param(sample_root, tmp_path):
    from pipeline.evaluation.runs import read_test_set, write_test_set

    root = user_tree(tmp_path / "cs")
    down = DownstreamConfig(size=[64, 32], widths=[8, 16], crop=32, test_split="test")
    cfg = Config(data=DataConfig(root=str(root)), evaluate=EvaluateConfig(downstream=down))
    with pytest.raises(ConfigError, match=r"^evaluate\.downstream\.test_split: split 'test' .* no labelled pixels"):
        write_test_set(cfg, tmp_path / "test", progress=False)
    assert not (tmp_path / "test").exists()  # nothing half-written
    # The default names the built-in dataset's test split; a Cityscapes tree scores on its labelled val split.
    assert DownstreamConfig().test_split == "test"
    cfg = dataclasses.replace(cfg, evaluate=EvaluateConfig(downstream=dataclasses.replace(down, test_split="val")))
    assert write_test_set(cfg, tmp_path / "test", progress=False) == 2
    test = read_test_set(cfg, tmp_path / "test")
    assert len(test.frames) == 2 and all((f.target != 255).any() for f in test.frames)
    assert len(test.coco) == 2 and len(test.labels) == 2


def test_a_stage_entry_point_reports_bad_input_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  root: /no/such/tree\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: /no/such/tree"), result.stderr
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["params.yaml"]  # nothing half-written


def test_the_part_network_learns_from_the_builtin_dataset_when_the_data_has_no_part_maps(synthetic_root,
                                                                                       sample_root):
    from pipeline.config import CocoConfig, SyntheticConfig
    from pipeline.part_training import has_part_maps, part_examples, part_source

    builtin = SyntheticConfig(out=str(synthetic_root))
    own = Config(data=DataConfig(root=str(synthetic_root)), synthetic=builtin)
    assert has_part_maps(own.data) and part_source(own)[0] == own.data
    real = Config(data=DataConfig(root=str(sample_root)), synthetic=builtin)
    assert not has_part_maps(real.data)
    source, why = part_source(real)
    assert source.root == str(synthetic_root) and "has no part maps" in why
    coco = DataConfig(root=str(sample_root), format="coco", coco_annotations={"train": "x.json"})
    assert not has_part_maps(coco)
    # Asked for the data's own part maps where there are none: refused, naming the param.
    forced = dataclasses.replace(real, renderer=RendererConfig(part_net=PartNetConfig(source="data")))
    assert part_source(forced)[0] == real.data
    with pytest.raises(ConfigError, match="renderer.part_net.source"):
        part_examples(real.data, CocoConfig(), "train", 16)


def test_inferred_parts_cover_each_object_with_its_own_class_parts():
    import torch

    from pipeline.models.part_net import PartNet, inferred_parts

    torch.manual_seed(0)
    net = PartNet(["person", "car"], (4, 8)).eval()
    ids = np.zeros((64, 96), np.int32)
    ids[10:50, 10:22] = BY_NAME["person"].id * INSTANCE_FACTOR
    ids[30:55, 40:90] = BY_NAME["car"].id * INSTANCE_FACTOR + 1
    ids[0:5, 0:96] = BY_NAME["building"].id
    parts = inferred_parts(net, ids, 16)
    objects = ids >= INSTANCE_FACTOR
    assert (parts[~objects] == 0).all() and (parts[objects] > 0).all()
    owner = {pid: name.split(".")[0] for name, pid in PARTS.items()}
    for value, name in ((ids[10, 10], "person"), (ids[30, 40], "car")):
        assert {owner[p] for p in np.unique(parts[ids == value]).tolist()} == {name}


def test_frames_without_a_camera_get_the_scale_rule_from_a_fitted_ground_plane(trained_tiny, synthetic_root,
                                                                               monkeypatch):
    import pipeline.insertion as insertion
    from pipeline.appearance import CropBank
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.ground_plane import frame_camera
    from pipeline.trained_gan import load_trained

    cfg = dataclasses.replace(trained_tiny, augment=dataclasses.replace(trained_tiny.augment, scale_band=[0.75, 1.33]))
    gan = load_trained(cfg.augment.model, cfg, "cpu")
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    dataset = CityscapesDataset(synthetic_root, ["train"])
    scene = next(s for s in dataset if frame_camera(dataclasses.replace(s, camera=None)) is not None)

    def scale_rejections() -> int:
        s = dataclasses.replace(scene, camera=None, image=scene.image.copy(), labels=scene.labels.copy(),
                                instance_ids=scene.instance_ids.copy(), instances=list(scene.instances))
        report = insertion.Inserter(gan, bank, cfg).insert(s, seed=0)
        return sum(n for (_, reason), n in report.rejected.items() if reason == "scale")

    fitted = scale_rejections()
    import pipeline.rules as rules

    monkeypatch.setattr(rules, "frame_camera", lambda s, exclude=None: None)  # what Yardstick.camera reads
    assert fitted > 0 and scale_rejections() == 0


def test_coco_images_per_split_are_read_from_their_own_folder(tmp_path):
    with pytest.raises(ConfigError, match="coco_images: split 'val' has no entry"):
        from pipeline.config import from_dict

        from_dict(DataConfig, {"root": "x", "format": "coco", "coco_annotations": {"train": "a.json"},
                               "coco_images": {"val": "v"}}, "data")
    data = DataConfig(root="/coco", format="coco", coco_annotations={"train": "t.json", "val": "v.json"},
                      coco_images={"val": "/coco/val2017"})
    assert data.image_root("val") == "/coco/val2017" and data.image_root("train") == "/coco"


# -------------------------------------------------------------------------------------- end to end


def check_stages(clone, augmented_images: int):
    """The outputs of every stage up to augment exist; their metrics files parse with finite numbers."""
    paths = ["data/prepared/train.npz", "data/prepared/val.npz", "models/insertion/model.safetensors",
             "models/insertion/config.json", "models/renderer/generator.safetensors",
             "models/renderer/part_net.safetensors", "data/augmented/manifest.jsonl", "data/augmented/summary.json"]
    for path in paths:
        assert (clone / path).is_file(), path
    assert any((clone / "data/prepared/crops/train").iterdir())
    metrics = {}
    for name in ("train", "renderer", "augment"):
        metrics[name] = json.loads((clone / "metrics" / f"{name}.json").read_text())
        assert not finite_numbers(metrics[name]), (name, finite_numbers(metrics[name]))
    coco_file = clone / "data/augmented/coco/annotations/instances_train.json"
    from pycocotools.coco import COCO

    with open(os.devnull, "w") as quiet, __import__("contextlib").redirect_stdout(quiet):
        coco = COCO(str(coco_file))
    assert len(coco.getImgIds()) == augmented_images
    images = list((clone / "data/augmented/cityscapes/leftImg8bit/train").rglob("*_leftImg8bit.png"))
    assert len(images) == augmented_images
    # No part maps in the data: the part network learned from the built-in dataset's, and says so.
    assert metrics["renderer"]["part_net"]["source"]["root"] == "data/synthetic"
    # No camera files: the scale rule comes from fitted ground planes in training's figures.
    assert "scale" in metrics["train"]["where_raw"]["person"]
    return metrics


def repro_on(tmp_path, data: dict, targets: tuple[str, ...]) -> Path:
    """`dvc repro TARGETS` (augment and those before it, at least) of the tiny pipeline in a fresh project copy
    with ``data`` as its params' data section; the stages' outputs checked, and a second `dvc status` finds
    nothing to do. Returns the copy."""

    def edit(params):
        params = tiny_params(params)
        params["data"].update(data)
        params["prepare"].update(min_area=150, min_height=12)  # the real frames' own resolution
        params["evaluate"]["downstream"]["seeds"] = [0]
        params["evaluate"]["downstream"]["test_split"] = "val"  # as the README tells a Cityscapes user
        return params

    clone = tmp_path / "clone"
    env = project_copy(clone, edit)
    result = dvc(clone, env, "repro", *targets)
    assert result.returncode == 0, result.stdout + result.stderr
    check_stages(clone, augmented_images=12)
    assert "up to date" in dvc(clone, env, "status", *targets, timeout=120).stdout
    return clone


# The real sample frames' traits (no camera files, no part maps, photographs at 2048x1024) through `dvc repro`
# as far as the augmented dataset and the downstream test set, read as a user's COCO copy (the Cityscapes
# reader on these frames: tests/test_augment.py, tests/test_cityscapes_roundtrip.py; a Cityscapes tree through
# every stage: tests/test_dvc_pipeline.py; every stage on real frames, the downstream experiment too:
# tests/test_semantic.py, on CamVid).
@pytest.mark.slow
def test_dvc_repro_on_the_same_frames_as_coco(sample_root, tmp_path):
    from pipeline.convert import convert
    from pipeline.datasets.cityscapes import CityscapesDataset

    tree = user_tree(tmp_path / "cityscapes", with_test=False)
    coco = tmp_path / "coco"
    convert({s: CityscapesDataset(tree, [s]) for s in ("train", "val")}, coco, "coco", progress=False)
    data = {"root": str(coco), "format": "coco",
            "coco_annotations": {s: str(coco / f"annotations/instancesonly_filtered_gtFine_{s}.json")
                                 for s in ("train", "val")},
            "coco_images": {s: str(coco / "leftImg8bit" / s) for s in ("train", "val")}}
    clone = repro_on(tmp_path, data, targets=("augment", "downstream_test"))
    # The scored split (val, as the README tells a COCO user) read from its json and written as the test set.
    test_images = list((clone / "data/downstream/test").rglob("*_leftImg8bit.png"))
    assert len(test_images) == 2


def test_real_root_absent_is_skipped_and_said_broken_is_refused(tmp_path):
    from pipeline.evaluate import real_dataset

    def cfg(root):
        return Config(evaluate=EvaluateConfig(real_root=str(root)))

    assert real_dataset(Config(evaluate=EvaluateConfig(real_root=""))) == (None, "evaluate.real_root is empty")
    dataset, why = real_dataset(cfg(tmp_path / "nowhere"))
    assert dataset is None and why.startswith("evaluate.real_root:") and "not found" in why
    (tmp_path / "not-cityscapes").mkdir()
    with pytest.raises(ConfigError, match=r"^evaluate\.real_root: .*not a Cityscapes tree"):
        real_dataset(cfg(tmp_path / "not-cityscapes"))
