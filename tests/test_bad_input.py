"""Bad input: one clear line naming the file and the problem, exit status 1, nothing half-written."""

import contextlib
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

FRAME = "simtown_000000_000019"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def run_in_process(module: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m module args`` run inside this process: argv, working directory, stdout and stderr swapped
    for the call, the exit status read from ``SystemExit``. The bad-input corpus runs its 86 cases this
    way (a fresh interpreter importing torch costs seconds each); the tests here keep real processes."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_path = sys.argv, os.getcwd(), list(sys.path)
    sys.argv = [module, *map(str, args)]
    sys.path.insert(0, str(REPO))  # the stages package, as `python -m` from the project sees it
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if module.startswith("stages."):  # by path: pytest's import hook claims `*_test` modules
                    runpy.run_path(str(REPO / "stages" / f"{module.split('.', 1)[1]}.py"), run_name="__main__")
                else:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess([module, *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def tree(synthetic_root, tmp_path) -> Path:
    """A one-frame copy of the synthetic train split to break."""
    root = tmp_path / "ds"
    for sub in ("leftImg8bit", "gtFine", "camera"):
        for src in (synthetic_root / sub / "train" / "simtown").glob(f"{FRAME}_*"):
            dst = root / sub / "train" / "simtown" / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return root


def gt(root: Path, kind: str) -> Path:
    return root / "gtFine" / "train" / "simtown" / f"{FRAME}_gtFine_{kind}"


def image(root: Path) -> Path:
    return root / "leftImg8bit" / "train" / "simtown" / f"{FRAME}_leftImg8bit.png"


def assert_clean_failure(result, path: Path, problem: str, out: Path | None = None):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert str(path) in lines[0] and problem in lines[0], lines[0]
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), "half-written output left"


def convert(root, tmp_path, *extra):
    out = tmp_path / "converted"
    return run_cli("convert", root, out, "--quiet", *extra), out


def test_good_tree_converts(tree, tmp_path):
    result, out = convert(tree, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "annotations" / "instancesonly_filtered_gtFine_train.json").is_file()


def test_truncated_png(tree, tmp_path):
    path = gt(tree, "labelIds.png")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "truncated PNG", out)


def test_unreadable_png(tree, tmp_path):
    path = image(tree)
    path.write_bytes(b"this is not an image at all")
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "not a readable image", out)


@pytest.mark.parametrize("kind", ["labelIds.png", "instanceIds.png"])
def test_size_mismatch(tree, tmp_path, kind):
    path = gt(tree, kind)
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), array[:-8])
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "differs from the image", out)


def test_label_ids_that_are_not_cityscapes_ids(tree, tmp_path):
    path = gt(tree, "labelIds.png")
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    array[0, 0] = 200
    cv2.imwrite(str(path), array)
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "not Cityscapes label ids", out)


def test_instance_ids_that_disagree_with_labels(tree, tmp_path):
    path = gt(tree, "instanceIds.png")
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    array[0, 0] = 26005
    cv2.imwrite(str(path), array)
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "disagrees with the labelIds", out)


def test_missing_instance_ids(tree, tmp_path):
    path = gt(tree, "instanceIds.png")
    path.unlink()
    result, out = convert(tree, tmp_path)
    assert_clean_failure(result, path, "missing instanceIds", out)


def test_empty_dataset(tmp_path):
    root = tmp_path / "empty"
    (root / "leftImg8bit" / "train").mkdir(parents=True)
    result, out = convert(root, tmp_path)
    assert_clean_failure(result, root, "empty dataset", out)
    assert_clean_failure(run_cli("inspect", root), root, "empty dataset")


def test_inspect_reports_bad_frame(tree):
    path = gt(tree, "labelIds.png")
    path.write_bytes(path.read_bytes()[:100])
    result = run_cli("inspect", tree, "--quiet")
    assert result.returncode == 1
    assert f"{path}: truncated PNG" in result.stdout


def _coco(tmp_path: Path, segmentation, file_name="a.png") -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    cv2.imwrite(str(images / "a.png"), np.zeros((20, 30, 3), np.uint8))
    doc = {
        "images": [{"id": 1, "file_name": file_name, "height": 20, "width": 30}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": segmentation,
                         "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return images, path


@pytest.mark.parametrize("segmentation", [
    [[1, 2, 3]],  # a ring of fewer than 6 numbers
    [[1, 2, 3, 4, 5]],  # odd count
    [],  # no ring
    {"size": [20, 30], "counts": "!!"},  # not compressed RLE
    {"size": [20, 30], "counts": [5, 5]},  # uncompressed RLE not covering the image
    {"size": [10, 10], "counts": [100]},  # RLE of another size
    "polygon",
])
def test_coco_invalid_segmentation(tmp_path, segmentation):
    images, ann = _coco(tmp_path, segmentation)
    result, out = convert(images, tmp_path, "--format", "coco", "--annotations", f"train={ann}")
    assert_clean_failure(result, ann, "annotation 7: invalid segmentation", out)


@pytest.mark.parametrize("file_name", ["../outside.png", "/etc/passwd", "sub/../../outside.png"])
def test_coco_file_name_escaping_the_image_root(tmp_path, file_name):
    images, ann = _coco(tmp_path, [[1, 1, 5, 1, 5, 5]], file_name=file_name)
    result, out = convert(images, tmp_path, "--format", "coco", "--annotations", f"train={ann}")
    assert_clean_failure(result, ann, "escapes the image root", out)


def test_coco_empty_dataset(tmp_path):
    images, ann = _coco(tmp_path, [[1, 1, 5, 1, 5, 5]])
    doc = json.loads(ann.read_text())
    doc["images"], doc["annotations"] = [], []
    ann.write_text(json.dumps(doc))
    result, out = convert(images, tmp_path, "--format", "coco", "--annotations", f"train={ann}")
    assert_clean_failure(result, ann, "empty dataset", out)


def test_bad_params(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("synthetic:\n  width: wide\n")
    result = run_cli("synthesize", "--params", params, "--out", tmp_path / "s")
    assert_clean_failure(result, params, "synthetic.width: expected int")


def test_every_stage_is_a_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("synthesize", "prepare", "train", "train-renderer", "augment", "evaluate"):
        assert f"  {name} " in result.stdout, name


@pytest.mark.parametrize("command", ["prepare", "train-renderer"])
def test_a_stage_command_on_a_missing_dataset_names_it(command, tmp_path):
    missing = tmp_path / "nowhere"
    params = tmp_path / "params.yaml"
    params.write_text(f"data:\n  root: {missing}\nprepare:\n  out: {tmp_path / 'prepared'}\n"
                      f"renderer:\n  out: {tmp_path / 'renderer'}\n  checkpoint_dir: {tmp_path / 'ckpt'}\n"
                      f"  log_dir: {tmp_path / 'live'}\n")
    result = run_cli(command, "--params", params, *(["--quiet"] if command == "prepare" else []), cwd=tmp_path)
    assert_clean_failure(result, missing, "")
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "renderer").exists()
