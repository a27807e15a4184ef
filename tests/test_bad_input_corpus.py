"""The bad-input corpus: broken files and params, each through the command line's entry point (`python -m
pipeline`) or a stage entry point (`python -m stages.*`, what `dvc repro` runs), run in this process
(``test_bad_input.run_in_process``; ``test_bad_input.py`` runs its cases as real processes). Every case must
end in one line naming the file or key, exit status 1, no traceback, and nothing half-written.

Each breaker takes the one-frame tree (``test_bad_input.tree``) and returns (the file or key the error must
name, a piece of the problem's wording).
"""

import json

import cv2
import numpy as np
import pytest
import torch
from test_bad_input import FRAME, assert_clean_failure, gt, image, run_in_process, tree  # noqa: F401 (fixture)


def convert(root, tmp_path, *extra):
    out = tmp_path / "converted"
    return run_in_process("pipeline", "convert", root, out, "--quiet", *extra), out


def _png(path, array):
    cv2.imwrite(str(path), array)


def truncated_labels(root):
    p = gt(root, "labelIds.png")
    p.write_bytes(p.read_bytes()[:300])
    return p, "truncated"


def image_not_an_image(root):
    p = image(root)
    p.write_text("not a png at all")
    return p, ""


def labels_16_bit(root):
    p = gt(root, "labelIds.png")
    _png(p, cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(np.uint16))
    return p, ""


def labels_three_channels(root):
    p = gt(root, "labelIds.png")
    labels = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    _png(p, np.dstack([labels] * 3))
    return p, ""


def instances_8_bit(root):
    p = gt(root, "instanceIds.png")
    _png(p, (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) // 1000).astype(np.uint8))
    return p, ""


def image_16_bit(root):
    p = image(root)
    _png(p, cv2.imread(str(p)).astype(np.uint16) * 257)
    return p, "expected an 8-bit image"


def image_other_size(root):
    p = image(root)
    _png(p, cv2.resize(cv2.imread(str(p)), (100, 50)))
    return gt(root, "labelIds.png"), "differs from the image's 100x50"


def unknown_label_id(root):
    p = gt(root, "labelIds.png")
    labels = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    labels[:4, :4] = 250
    _png(p, labels)
    return p, "250"


def instances_disagree(root):
    p = gt(root, "instanceIds.png")
    ids = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    ids[:6, :6] = 26000  # a car where the labels say sky
    _png(p, ids)
    return p, ""


def empty_label_file(root):
    p = gt(root, "labelIds.png")
    p.write_bytes(b"")
    return p, ""


def camera_broken_json(root):
    p = root / "camera" / "train" / "simtown" / f"{FRAME}_camera.json"
    p.write_text("{ not json")
    return p, ""


def camera_wrong_types(root):
    p = root / "camera" / "train" / "simtown" / f"{FRAME}_camera.json"
    doc = json.loads(p.read_text())
    doc["extrinsic"] = "high"
    p.write_text(json.dumps(doc))
    return p, ""


def polygons_broken_json(root):
    p = gt(root, "polygons.json")
    p.write_text("[1, 2")
    return p, ""


def polygons_wrong_types(root):
    p = gt(root, "polygons.json")
    p.write_text(json.dumps({"imgHeight": "tall", "imgWidth": 512, "objects": 3}))
    return p, ""


def labels_absurd_width(root):
    p = gt(root, "labelIds.png")
    _png(p, np.zeros((1, 60000), np.uint8))
    return p, ""


def image_header_claims_absurd_size(root):
    """A PNG whose header says 100000 x 100000 pixels (30 GB decoded) and carries no data."""
    import struct
    import zlib

    p = image(root)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    return p, ""


TREE_CASES = [truncated_labels, image_not_an_image, labels_16_bit, labels_three_channels, instances_8_bit,
              image_16_bit, image_other_size, unknown_label_id, instances_disagree, empty_label_file,
              camera_broken_json, camera_wrong_types, polygons_broken_json, polygons_wrong_types,
              labels_absurd_width, image_header_claims_absurd_size]


@pytest.mark.parametrize("breaker", TREE_CASES, ids=[f.__name__ for f in TREE_CASES])
def test_broken_cityscapes_files(tree, tmp_path, breaker):  # noqa: F811
    if breaker.__name__.startswith("polygons") and not gt(tree, "polygons.json").exists():
        pytest.skip("the built-in frame has no polygons file")
    path, problem = breaker(tree)
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, problem, out)


# ------------------------------------------------------------------------------------------------ COCO


def coco_case(tmp_path, edit):
    """A one-image COCO dataset (a real image, one person polygon) with ``edit`` applied to its json."""
    images = tmp_path / "img"
    images.mkdir()
    _png(images / "a.png", np.zeros((40, 60, 3), np.uint8))
    doc = {"images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 60}],
           "categories": [{"id": 1, "name": "person"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 50,
                            "bbox": [10, 10, 5, 10], "segmentation": [[10, 10, 15, 10, 15, 20, 10, 20]]}]}
    path = tmp_path / "ann.json"
    text = edit(doc)
    path.write_text(text if isinstance(text, str) else json.dumps(doc))
    return images, path


COCO_CASES = {
    "broken_json": (lambda d: '{"images": [', ""),
    "no_images_list": (lambda d: d.pop("images") and None, "no 'images' list"),
    "image_lacks_size": (lambda d: d["images"][0].pop("height") and None, "lacks"),
    "unknown_image_id": (lambda d: d["annotations"][0].update(image_id=7), "image_id 7"),
    "unknown_category_id": (lambda d: d["annotations"][0].update(category_id=9), "category_id"),
    "repeated_annotation_id": (lambda d: d["annotations"].append(dict(d["annotations"][0])), "appears twice"),
    "repeated_image_id": (lambda d: d["images"].append(dict(d["images"][0])), "appears twice"),
    "odd_polygon": (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]), "invalid segmentation"),
    "bad_rle": (lambda d: d["annotations"][0].update(segmentation={"size": [40, 60], "counts": [5, 5]}),
                "invalid segmentation"),
    "size_disagrees_with_file": (lambda d: d["images"][0].update(height=80), "says"),
    "file_name_leaves_root": (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "escapes"),
    "empty_images": (lambda d: d.update(images=[], annotations=[]), "empty dataset"),
    "absurd_image_size": (lambda d: d["images"][0].update(height=10**9, width=10**9), "is not an image size"),
    "negative_image_size": (lambda d: d["images"][0].update(height=-40), "is not an image size"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_broken_coco_files(tmp_path, case):
    edit, problem = COCO_CASES[case]
    images, path = coco_case(tmp_path, edit)
    result, out = convert(images, tmp_path, "--format", "coco", "--annotations", f"train={path}")
    # The error names the json, or for a file-level problem the image file.
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    named = path if case != "size_disagrees_with_file" else images / "a.png"
    assert_clean_failure(result, named, problem, out)


# ------------------------------------------------------------------------------------- params and outputs


PARAM_CASES = {
    "train.steps": "train:\n  steps: -5\n",
    "train.batch_size": "train:\n  batch_size: 0\n",
    "train.device": "train:\n  device: tpu\n",
    "augment.scale_band": "augment:\n  scale_band: [0.75]\n",
    "prepare.where_size": "prepare:\n  where_size: [64, 32, 16]\n",
    "evaluate.downstream.size": "evaluate:\n  downstream:\n    size: [256]\n",
    "synthetic.width": "synthetic:\n  width: wide\n",
    "prepare.colour": "prepare:\n  colour: red\n",
    "data.format": "data:\n  format: voc\n",
    "renderer.part_net.source": "renderer:\n  part_net:\n    source: web\n",
    "augment.max_overlap": "augment:\n  max_overlap: 2\n",
    "train.losses.kl": "train:\n  losses:\n    kl: -1\n",
    "evaluate.downstream.seeds": "evaluate:\n  downstream:\n    seeds: [0, 0]\n",
    "evaluate.downstream.detector.min_size": "evaluate:\n  downstream:\n    detector:\n      min_size: 0\n",
}


# Every case through one stage; three of them through every other stage.
STAGE_CASES = [("prepare", key) for key in PARAM_CASES] + [
    (stage, key) for stage in ("synthesize", "train", "train_renderer", "augment", "downstream_test", "arms",
                               "downstream", "evaluate")
    for key in ("train.steps", "augment.scale_band", "evaluate.downstream.size")]
STAGE_ARGS = {"arms": ["40"], "downstream": ["40", "0"]}  # what dvc.yaml's foreach / matrix pass


@pytest.mark.parametrize("stage, key", STAGE_CASES)
def test_bad_params_stop_every_stage_entry_point_in_one_line(tmp_path, stage, key):
    (tmp_path / "params.yaml").write_text(PARAM_CASES[key])
    result = run_in_process(f"stages.{stage}", *STAGE_ARGS.get(stage, []), cwd=tmp_path)
    wanted = key if key != "prepare.colour" else "unknown key 'colour'"
    assert_clean_failure(result, "params.yaml", wanted)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["params.yaml"]


# The training stages refuse before any work: the renderer's before its part network trains (400 steps).
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: cuda is a valid choice")
@pytest.mark.parametrize("stage, key", [("augment", "augment.device"), ("evaluate", "evaluate.device"),
                                        ("train", "train.device"), ("train_renderer", "renderer.device")])
def test_cuda_asked_of_a_machine_without_one_is_one_line_naming_the_key(tree, tmp_path, stage, key):  # noqa: F811
    section, field = key.split(".")
    (tmp_path / "params.yaml").write_text(f"data:\n  root: {tree}\n{section}:\n  {field}: cuda\n")
    result = run_in_process(f"stages.{stage}", cwd=tmp_path)
    assert_clean_failure(result, key, "no CUDA device")


def test_a_file_where_the_output_folder_goes(tree, tmp_path):  # noqa: F811
    out = tmp_path / "converted"
    out.write_text("I am a file")
    result = run_in_process("pipeline", "convert", tree, out, "--quiet")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0], result.stderr
    assert out.read_text() == "I am a file" and not list(tmp_path.glob(".converted*"))


# ------------------------------------------------------------------------------------------- weights


def _weights_truncated(model):
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 3])
    return model / "model.safetensors", "not a readable safetensors file"


def _weights_not_safetensors(model):
    (model / "model.safetensors").write_text("these are not weights")
    return model / "model.safetensors", "not a readable safetensors file"


def _weights_without_config(model):
    (model / "config.json").unlink()
    return model / "config.json", "missing"


def _weights_config_broken(model):
    (model / "config.json").write_text('{"signature": ')
    return model / "config.json", "not the config.json of saved weights"


def _weights_of_other_widths(model):
    doc = json.loads((model / "config.json").read_text())
    doc["signature"]["model"]["where_embed"] = 999
    (model / "config.json").write_text(json.dumps(doc))
    return model / "model.safetensors", "model.where_embed: trained with 999"


def _weights_of_other_shapes(model):
    """config.json agrees with the params, the tensors do not (weights copied from another model)."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    name = sorted(tensors)[0]
    tensors[name] = np.zeros((3, 3), tensors[name].dtype)
    save_file(tensors, model / "model.safetensors")
    return model / "model.safetensors", "weights do not fit the network the params build"


WEIGHT_CASES = [_weights_truncated, _weights_not_safetensors, _weights_without_config, _weights_config_broken,
                _weights_of_other_widths, _weights_of_other_shapes]


@pytest.fixture(scope="module")
def tiny_params(trained_tiny):
    """The params of the tiny trained model (``trained_tiny``): its data, prepared arrays and sizes."""
    import dataclasses

    cfg = trained_tiny
    return {"data": dataclasses.asdict(cfg.data), "prepare": dataclasses.asdict(cfg.prepare),
            "model": dataclasses.asdict(cfg.model), "train": dataclasses.asdict(cfg.train),
            "augment": dataclasses.asdict(cfg.augment)}


@pytest.mark.parametrize("breaker", WEIGHT_CASES, ids=[f.__name__.strip("_") for f in WEIGHT_CASES])
@pytest.mark.parametrize("entry", ["stages.augment", "stages.evaluate", "pipeline augment"])
def test_broken_weights(tiny_params, trained_tiny, tmp_path, breaker, entry):
    import shutil

    import yaml

    model = tmp_path / "model"
    shutil.copytree(trained_tiny.train.out, model)
    named, problem = breaker(model)
    params = json.loads(json.dumps(tiny_params))
    params["augment"].update(model=str(model), out=str(tmp_path / "aug"), workers=2)
    params["evaluate"] = {"real_root": "", "render_frames": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if entry == "pipeline augment":
        result = run_in_process("pipeline", "augment", trained_tiny.data.root, tmp_path / "out", "--quiet",
                                cwd=tmp_path)
    else:
        result = run_in_process(entry, cwd=tmp_path)
    assert_clean_failure(result, named, problem)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
