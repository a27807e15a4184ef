"""benchmarks/inserted_context.py: what each arm's inserted objects stand on and cover, read from the arms' label
maps against the subset's frames, beside the real objects'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "inserted_context.py"
BUILDING, ROAD, SIDEWALK, PERSON = 11, 7, 8, 24


def write_frame(arms: Path, arm: str, city: str, labels: np.ndarray, instances: np.ndarray) -> None:
    folder = arms / arm / "cityscapes" / "gtFine" / "train" / city
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{city}_000001_000019_gtFine"
    cv2.imwrite(str(folder / f"{stem}_labelIds.png"), labels.astype(np.uint8))
    cv2.imwrite(str(folder / f"{stem}_instanceIds.png"), instances.astype(np.uint16))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_each_arms_inserted_persons_are_read_by_what_they_stand_on_and_cover(tmp_path):
    """A 40 x 40 frame: building above row 20, sidewalk left and road right below it, one real person standing on
    the sidewalk. Ours adds a person on the sidewalk, the rules one on the road, copy-paste one in the building's
    middle: each arm's inserted person stands on (and covers) what it was put on."""
    labels = np.full((40, 40), BUILDING)
    labels[20:, :20], labels[20:, 20:] = SIDEWALK, ROAD
    instances = labels.copy()
    real = (slice(22, 32), slice(2, 6))
    labels[real], instances[real] = PERSON, PERSON * 1000
    for arm in ("subset", "ours", "copy_paste", "rules"):
        write_frame(tmp_path, arm, "town", labels, instances)
    for arm, box in {"ours": (slice(24, 34), slice(10, 14)), "rules": (slice(24, 34), slice(30, 34)),
                     "copy_paste": (slice(5, 15), slice(18, 22))}.items():
        augmented, augmented_instances = labels.copy(), instances.copy()
        augmented[box], augmented_instances[box] = PERSON, PERSON * 1000 + 1
        write_frame(tmp_path, arm, "town-aug", augmented, augmented_instances)
    out = run(tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    block = {arm: text.split(f"  {arm}:")[1].split("\n  ")[0:3] for arm in ("ours", "rules", "copy_paste")}
    assert block["ours"][0].startswith(" 1 objects") and "heights 10/10/10 px (quartiles)" in block["ours"][0]
    assert "stand on: sidewalk 1.00" in block["ours"][1]
    assert "cover (pixels, before): sidewalk 1.00" in block["ours"][2]
    assert "stand on: road 1.00" in block["rules"][1]
    assert "stand on: building 1.00" in block["copy_paste"][1]
    assert "cover (pixels, before): building 1.00" in block["copy_paste"][2]
    real_block = text.split("  real, subset:")[1]
    assert real_block.startswith(" 1 objects") and "stand on: sidewalk 1.00" in real_block


def test_a_folder_without_the_arms_is_one_line(tmp_path):
    out = run(tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "dvc repro arms" in out.stderr
