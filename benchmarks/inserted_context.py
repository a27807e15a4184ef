"""What each downstream arm's inserted objects stand on and cover, beside the real objects' - the training side
of the why behind a downstream difference (``downstream_errors.py`` reads the test side: what the segmenter's
false blobs lie on).

    python benchmarks/inserted_context.py data/downstream/arms/40 [--test data/downstream/test] [--class person]

Reads the arms the ``arms@N`` stage wrote (``{arm}/cityscapes/gtFine/train/``). An inserted object is a connected
component of the pixels that became the class in an augmented frame (``{city}-aug*``) against the same frame in the
subset arm; real objects are the instances of the subset frames (and of the test split's frames when ``--test``
names its Cityscapes tree). Printed per arm: the objects, the share of them standing on each class (the rules'
``support_label``: the majority label just below the contact pixels, in the frame before the insertion), the
share of the pixels they cover that were each class before, the mean and spread of their rows (0 = top) and the
quartiles of their visible heights in pixels.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.augmentation import AUG_SUFFIX  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.arm_layout import ARMS, SPLIT  # noqa: E402
from pipeline.io import read_single_channel  # noqa: E402
from pipeline.labels import BY_ID, BY_NAME, INSTANCE_FACTOR  # noqa: E402
from pipeline.rules import support_label  # noqa: E402

LABEL_SUFFIX = "_gtFine_labelIds.png"
MIN_PIXELS = 20  # smaller new-class components are slivers of an occlusion's edge, not objects


@dataclass
class Context:
    """What a set of objects stands on and covers."""

    objects: int = 0
    support: Counter = field(default_factory=Counter)
    covered: Counter = field(default_factory=Counter)
    rows: list[float] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)  # visible rows, top to bottom

    def add(self, labels: np.ndarray, mask: np.ndarray, inserted: bool) -> None:
        """One object: its ``mask`` on the frame's ``labels`` - for an ``inserted`` one, the labels before it went
        in, whose pixels under the mask are what it covers."""
        self.objects += 1
        self.support[BY_ID[support_label(labels, mask)].name] += 1
        for value, count in zip(*np.unique(labels[mask], return_counts=True), strict=True) if inserted else ():
            self.covered[BY_ID[int(value)].name] += int(count)
        rows = np.nonzero(mask)[0]
        self.rows.append(float(rows.mean() / labels.shape[0]))
        self.heights.append(int(rows.max() - rows.min() + 1))


def read_labels(path: Path) -> np.ndarray:
    return read_single_channel(path, np.uint8)


def label_files(tree: Path) -> dict[str, Path]:
    """Frame stem -> labelIds file of a Cityscapes tree's ``gtFine/*/*/``."""
    return {p.name[: -len(LABEL_SUFFIX)]: p for p in sorted(tree.glob(f"gtFine/*/*/*{LABEL_SUFFIX}"))}


def original_stem(stem: str) -> str:
    """The subset frame an augmented frame was made from: ``city-aug2_000001_000019`` -> ``city_000001_000019``."""
    city, rest = stem.split("_", 1)
    return f"{city.split(AUG_SUFFIX)[0]}_{rest}"


def inserted_context(arms: Path, arm: str, name: str) -> Context:
    """What ``arm``'s inserted objects of class ``name`` stand on and cover."""
    value = BY_NAME[name].id
    originals = label_files(arms / ARMS[0] / "cityscapes")
    out = Context()
    for stem, path in label_files(arms / arm / "cityscapes").items():
        if AUG_SUFFIX not in stem.split("_", 1)[0]:
            continue
        if original_stem(stem) not in originals:
            raise ConfigError(f"{path}: no subset frame {original_stem(stem)} beside it")
        before = read_labels(originals[original_stem(stem)])
        new = (read_labels(path) == value) & (before != value)
        components, n = ndimage.label(new)
        for i, window in enumerate(ndimage.find_objects(components), start=1):
            mask = np.zeros_like(new)
            mask[window] = components[window] == i
            if mask.sum() >= MIN_PIXELS:
                out.add(before, mask, inserted=True)
    return out


def real_context(tree: Path, name: str) -> Context:
    """What the instances of class ``name`` in a Cityscapes tree stand on and cover (the pixels around them)."""
    value = BY_NAME[name].id
    out = Context()
    for stem, path in label_files(tree).items():
        labels = read_labels(path)
        instances = read_single_channel(path.with_name(f"{stem}_gtFine_instanceIds.png"), np.uint16)
        for instance in np.unique(instances[instances // INSTANCE_FACTOR == value]):
            mask = instances == instance
            if mask.sum() >= MIN_PIXELS:
                out.add(labels, mask, inserted=False)
    return out


def shares(counts: Counter, top: int = 6) -> str:
    total = sum(counts.values())
    return ", ".join(f"{k} {v / total:.2f}" for k, v in counts.most_common(top)) if total else "-"


def report(label: str, c: Context) -> list[str]:
    rows = np.array(c.rows)
    quartiles = "/".join(f"{q:.0f}" for q in np.percentile(c.heights, [25, 50, 75])) if c.objects else ""
    lines = [f"  {label}: {c.objects} objects, rows {rows.mean():.3f} (sd {rows.std():.3f}), "
             f"heights {quartiles} px (quartiles)" if c.objects
             else f"  {label}: no objects",
             f"    stand on: {shares(c.support)}"]
    if c.covered:
        lines.append(f"    cover (pixels, before): {shares(c.covered)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", type=Path, help="an arms@N stage's folder, e.g. data/downstream/arms/40")
    ap.add_argument("--test", type=Path, help="the test split's Cityscapes tree, e.g. data/downstream/test")
    ap.add_argument("--class", dest="name", default="person", choices=["person", "car"])
    args = ap.parse_args(argv)
    for arm in ARMS:
        if not (args.arms / arm / "cityscapes").is_dir():
            raise ConfigError(f"{args.arms / arm / 'cityscapes'}: missing (run the arms stage: dvc repro arms)")
    print(f"{args.name}, {args.arms}: inserted objects by arm; real ones of the subset ({SPLIT})"
          + (f" and of {args.test}" if args.test else ""))
    for arm in ARMS[1:]:
        print("\n".join(report(arm, inserted_context(args.arms, arm, args.name))))
    print("\n".join(report("real, subset", real_context(args.arms / ARMS[0] / "cityscapes", args.name))))
    if args.test:
        print("\n".join(report(f"real, {args.test}", real_context(args.test, args.name))))


if __name__ == "__main__":
    with reported_as_one_line():
        main()
