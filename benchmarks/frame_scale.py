"""Do a frame's own objects tell how big a new one should be? On a dataset without cameras the learned rules hold
one ground plane for every frame (``rules.learned``), but frames of one camera, zoom or street show their objects
bigger or smaller than another's. This measures how much of an object's size under that plane its frame shares with
the frame's other objects, and what the augment stage's inserted objects gain when each frame's candidates are
scaled by that shared part.

    python benchmarks/frame_scale.py learn
    python benchmarks/frame_scale.py compare --split train --every 4 --out runs/frame-scale-s0-train
    python benchmarks/frame_scale.py compare --split val --out runs/frame-scale-s0-val
    python benchmarks/frame_scale.py compare --split val --share 0.3 --out runs/frame-scale-s0-val-part

learn: each single object's size as the log of its scale ratio under the learned plane over its class's (0 is the
class's typical object at that row), grouped by frame, split into a part between frames and a part within them
(one-way random effects, method of moments, on the train split). A frame's scale is then its objects' mean log
ratio shrunk toward the dataset's by ``n * between / (n * between + within)`` for n objects - the best linear
prediction of a new object's size from n frame-mates. Printed: the two parts, how well each object's size is
foretold from its frame-mates (leave one out) beside the dataset's mean, on the train split and on the split
``--split`` (default the downstream test split), that split's frame scales, the median scale ratio by the
part of the frame name before its first ``_`` (CamVid's sequences), and per split and class the real objects'
median height beside the median height the plane gives at their own contact rows (``under_the_plane``: what a
model that sizes every box by the plane exactly, placing it where the real objects stand, would show).

compare: the augment stage's code on one split (``--every K``: every K-th frame, through a list file), twice: as
it is (OUT/off) and with each frame's candidate boxes scaled about their bottom centre by the frame's scale, read
on the frame before anything went in, and the filter's scale band (``augment.scale_band``) scaled with them
(``--band frame``, the default) or left about the dataset's plane (``--band dataset``) (OUT/on); the same
latents, crops and other rules. ``--share P`` scales by the frame's scale to the power P instead (0 < P <= 1):
only the part of it the GAN does not read already. Each run is scored by the evaluate stage's code
(``evaluate_inserted``: plausibility under the learned rules, median height, width over height and scale of the
inserted and the real objects), and by how an inserted object's size follows its frame's real objects: the slope
of its log scale ratio on the mean of the frame's (the real objects' own slope, each against its frame-mates,
beside it). Needs a workspace with ``rules.learned``, a prepared dataset and a trained GAN (the CamVid profile:
``ctxaug profile camvid``, then the prepare and train stages).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import augmentation  # noqa: E402
from pipeline.augment import augment  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.datasets import open_dataset  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.inserted import evaluate_inserted, inserted_by_frame, read_manifest  # noqa: E402
from pipeline.ground_plane import rows_inside_frame  # noqa: E402
from pipeline.labels import BY_ID, TARGET_CLASSES  # noqa: E402
from pipeline.rules import Yardstick, rows_scale_ratio, scale_ratio  # noqa: E402
from pipeline.scene import Scene  # noqa: E402

STAGE_BUILD_INSERTER = augmentation.build_inserter  # the augment stage's own, which ``frame_scaled`` wraps


@dataclasses.dataclass(frozen=True)
class FrameSpread:
    """Objects' log scale ratios (over their class's) split by frame: their ``mean``, the variance ``within``
    a frame and the variance of the frames' own levels ``between`` them."""

    mean: float
    within: float
    between: float

    def weight(self, n: int) -> float:
        """How much of the mean of n frame-mates a new object of the frame shares."""
        return 0.0 if n == 0 or self.between <= 0 else n * self.between / (n * self.between + self.within)

    def factor(self, logs: np.ndarray) -> float:
        """The frame's scale: its objects' mean log ratio, shrunk toward the dataset's, as a factor."""
        return 1.0 if len(logs) == 0 else math.exp(self.weight(len(logs)) * (float(np.mean(logs)) - self.mean))


def learn_spread(frames: list[np.ndarray]) -> FrameSpread:
    """One-way random effects by the method of moments over the frames that hold an object (unbalanced groups:
    ``n0`` is the effective group size)."""
    groups = [np.asarray(f, float) for f in frames if len(f)]
    sizes = np.array([len(g) for g in groups])
    n, k = int(sizes.sum()), len(groups)
    if k < 2 or n <= k:
        raise ConfigError(f"frame_scale: {n} objects in {k} frames - too few to tell frames apart")
    values = np.concatenate(groups)
    mean = float(values.mean())
    within = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / (n - k)
    between_square = sum(len(g) * (float(g.mean()) - mean) ** 2 for g in groups) / (k - 1)
    n0 = (n - float((sizes ** 2).sum()) / n) / (k - 1)
    return FrameSpread(mean, within, max(0.0, (between_square - within) / n0))


def frame_objects(scene: Scene, yardstick: Yardstick, min_area: int) -> list[tuple[int, int, float]]:
    """(label id, pixel height, scale ratio over the class's) of each single person and car of the frame (not a
    crowd region, at least ``min_area`` pixels, not cut by the frame's border, standing below the horizon); none
    without a plane."""
    camera = yardstick.camera(scene)
    out = []
    for inst in scene.instances:
        if camera is None or inst.iscrowd or inst.label_id not in TARGET_CLASSES or inst.area < min_area:
            continue
        rows = rows_inside_frame(scene.instance_ids == inst.value)
        if rows is None:
            continue
        top, bottom = rows
        ratio = rows_scale_ratio(top, bottom, yardstick.class_camera(camera, inst.label_id), inst.label_id)
        if ratio > 0:  # nan (above the horizon) fails this too
            out.append((inst.label_id, bottom - top + 1, ratio))
    return out


def frame_logs(scene: Scene, yardstick: Yardstick, min_area: int) -> np.ndarray:
    """Log scale ratio over the class's of each of the frame's ``frame_objects``."""
    return logs_of(frame_objects(scene, yardstick, min_area))


def logs_of(objects: list[tuple[int, int, float]]) -> np.ndarray:
    return np.array([math.log(ratio) for _, _, ratio in objects])


def split_logs(cfg: Config, yardstick: Yardstick, split: str) -> list[np.ndarray]:
    return list(named_logs(cfg, yardstick, split).values())


def named_logs(cfg: Config, yardstick: Yardstick, split: str) -> dict[str, np.ndarray]:
    """``frame_logs`` of every frame of ``split``, by frame name."""
    return logs_by_frame(named_objects(cfg, yardstick, split))


def logs_by_frame(frames: dict[str, list[tuple[int, int, float]]]) -> dict[str, np.ndarray]:
    return {stem: logs_of(objects) for stem, objects in frames.items()}


def named_objects(cfg: Config, yardstick: Yardstick, split: str) -> dict[str, list[tuple[int, int, float]]]:
    """``frame_objects`` of every frame of ``split``, by frame name."""
    dataset = open_dataset(cfg.data, split, cfg.coco)
    return {dataset.frame_id(i).stem: frame_objects(scene, yardstick, cfg.prepare.min_area)
            for i, scene in enumerate(dataset)}


def under_the_plane(frames: dict[str, list[tuple[int, int, float]]]) -> dict[str, dict]:
    """Per class, the real objects' median height beside the median height the plane gives their class's typical
    object at their own contact rows (height / scale ratio): what a model that sizes every box by the plane
    exactly, placing it where the real objects stand, would show."""
    by_class: dict[int, list[tuple[int, float]]] = {}
    for objects in frames.values():
        for label_id, height, ratio in objects:
            by_class.setdefault(label_id, []).append((height, ratio))
    out = {}
    for label_id, rows in sorted(by_class.items()):
        heights, ratios = np.array(rows, float).T
        out[BY_ID[label_id].name] = {"objects": len(rows), "median_height": float(np.median(heights)),
                                     "median_height_under_plane": round(float(np.median(heights / ratios)), 1)}
    return out


def by_prefix(frames: dict[str, np.ndarray]) -> dict[str, dict]:
    """Objects and their median scale ratio (over their class's) by the part of the frame name before its first
    ``_`` (CamVid's sequence: one camera and drive)."""
    groups: dict[str, list[np.ndarray]] = {}
    for stem, logs in frames.items():
        groups.setdefault(stem.split("_")[0], []).append(logs)
    return {prefix: {"objects": int(sum(len(g) for g in logs)),
                     "median_scale": round(math.exp(float(np.median(np.concatenate(logs)))), 3)}
            for prefix, logs in sorted(groups.items()) if sum(len(g) for g in logs)}


def foretold(frames: list[np.ndarray], spread: FrameSpread) -> dict:
    """Mean squared error of each object's log ratio foretold by the dataset's mean and by its frame's scale read
    from its frame-mates (leave one out), and the slope of the objects' log ratio on their frame-mates' mean."""
    plain, framed, mates, own = [], [], [], []
    for logs in frames:
        for i in range(len(logs)):
            rest = np.delete(logs, i)
            plain.append((logs[i] - spread.mean) ** 2)
            framed.append((logs[i] - spread.mean - math.log(spread.factor(rest))) ** 2)
            if len(rest):
                mates.append(float(rest.mean()))
                own.append(float(logs[i]))
    return {"objects": len(plain), "mse_dataset_mean": round(float(np.mean(plain)), 4),
            "mse_frame_scale": round(float(np.mean(framed)), 4), "slope_on_mates": _slope(mates, own)}


def _slope(x: list[float], y: list[float]) -> float | None:
    return round(float(np.polyfit(x, y, 1)[0]), 3) if len(x) > 2 and np.ptp(x) > 0 else None


def learned_yardstick(cfg: Config) -> Yardstick:
    if not cfg.rules.learned:
        raise ConfigError("rules.learned: the frame scale is read under the learned plane (true for a dataset "
                          "without cameras, e.g. the CamVid profile)")
    return Yardstick.of(cfg)


def learn(cfg: Config, split: str) -> dict:
    yardstick = learned_yardstick(cfg)
    first = cfg.prepare.splits[0]
    objects = {s: named_objects(cfg, yardstick, s) for s in (first, split)}
    named = {s: logs_by_frame(frames) for s, frames in objects.items()}
    train, other = list(named[first].values()), list(named[split].values())
    spread = learn_spread(train)
    return {"learned_on": first, **{k: round(v, 4) for k, v in dataclasses.asdict(spread).items()},
            "weight_by_objects": {n: round(spread.weight(n), 3) for n in (1, 2, 3, 5, 10)},
            first: foretold(train, spread), split: foretold(other, spread),
            f"{split}_frame_factor_quantiles": [round(float(q), 3) for q in np.quantile(
                [spread.factor(f) for f in other if len(f)], [0.1, 0.25, 0.5, 0.75, 0.9])],
            "by_name_prefix": {first: by_prefix(named[first]), split: by_prefix(named[split])},
            "under_the_plane": {s: under_the_plane(frames) for s, frames in objects.items()}}


def scaled_boxes(box: torch.Tensor, factor: float) -> torch.Tensor:
    """Boxes [B, 4] (x0, y0, x1, y1) scaled by ``factor`` about their bottom centre."""
    x0, y0, x1, y1 = box.unbind(1)
    cx, w, h = (x0 + x1) / 2, (x1 - x0) * factor, (y1 - y0) * factor
    return torch.stack([cx - w / 2, y1 - h, cx + w / 2, y1], 1)


def frame_scaled(spread: FrameSpread, factors: list[float], band_moves: bool = True, share: float = 1.0
                 ) -> Callable:
    """``build_inserter`` whose candidate boxes - and with ``band_moves`` the augment filter's scale band - are
    scaled by each frame's scale (read on the frame as it was, before any object went in) to the power ``share``
    (1: the whole of it; less: only the part the GAN does not read already); every frame's factor goes into
    ``factors``."""

    def build(cfg: Config, device: torch.device, bank=None):
        inserter = STAGE_BUILD_INSERTER(cfg, device, bank)
        sample, insert = inserter.gan.sample, inserter.insert
        current = [1.0]

        def sample_scaled(*args, **kwargs):
            out = sample(*args, **kwargs)
            if current[0] != 1.0:
                out = {**out, "box": scaled_boxes(out["box"], current[0])}
            return out

        def insert_scaled(scene: Scene, seed: int, exclude_frame: str | None = None):
            current[0] = spread.factor(frame_logs(scene, inserter.yardstick, cfg.prepare.min_area)) ** share
            factors.append(current[0])
            if not band_moves:
                return insert(scene, seed, exclude_frame)
            # The filter's band moves with the frame: a band about the dataset's plane would refuse the frame's
            # own size wherever that lies toward an edge of it.
            band = [bound * current[0] for bound in cfg.augment.scale_band]
            inserter.cfg = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, scale_band=band))
            return insert(scene, seed, exclude_frame)

        inserter.gan.sample, inserter.insert = sample_scaled, insert_scaled  # instance attributes
        return inserter

    return build


def run_arm(cfg: Config, split: str, every: int, out: Path, spread: FrameSpread | None, band_moves: bool = True,
            share: float = 1.0) -> dict:
    """Augment ``split`` (every ``every``-th frame) into ``out`` as the stage does, with the frame scale when
    ``spread`` is given; then score it."""
    if out.exists():  # a fresh run: the augment stage would take the other arm's finished frames as its own
        shutil.rmtree(out)
    data = cfg.data
    if every > 1:
        if data.format != "semantic":
            raise ConfigError(f"--every: a subset of the frames is read through a list file of a semantic-label "
                              f"dataset (data.format: semantic), not {data.format!r}")
        dataset = open_dataset(cfg.data, split, cfg.coco)
        rows = [f"{f.image.relative_to(dataset.root)} {f.label.relative_to(dataset.root)}"
                for f in dataset.frames[::every]]
        listing = (out / "frames.txt").resolve()
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("\n".join(rows) + "\n")
        data = dataclasses.replace(data, semantic=dataclasses.replace(
            data.semantic, lists={**data.semantic.lists, split: str(listing)}))
    run_cfg = dataclasses.replace(cfg, data=data, augment=dataclasses.replace(
        cfg.augment, out=str(out), splits=[split], workers=1))
    factors: list[float] = []
    augmentation.build_inserter = frame_scaled(spread, factors, band_moves, share) if spread else STAGE_BUILD_INSERTER
    try:
        result = augment(run_cfg)
    finally:
        augmentation.build_inserter = STAGE_BUILD_INSERTER
    if not result["merged"]:
        raise ConfigError(f"{out}: the augment run did not finish every frame")
    scored = evaluate_inserted(run_cfg, out, splits=[split])
    summary = result["summary"]["classes"]
    return {"frames": result["frames_done"],
            "frame_factor_median": round(float(np.median(factors)), 3) if factors else None,
            **{name: {"acceptance": summary[name]["acceptance_rate"], "inserted": summary[name]["inserted"],
                      "plausible": {arm: scored[name][arm]["plausible"] for arm in ("ours", "random", "real")},
                      "median_height": scored[name].get("median_height"),
                      "median_aspect": scored[name].get("median_aspect"),
                      "median_scale": scored[name].get("median_scale")} for name in scored},
            "follows_frame": follows_frame(run_cfg, out, split)}


def follows_frame(cfg: Config, out: Path, split: str) -> dict:
    """Slope of the inserted objects' log scale ratio on the mean of their frame's real objects', beside the real
    objects' own (each on its frame-mates), over the frames holding real objects."""
    yardstick = learned_yardstick(cfg)
    logs = named_logs(cfg, yardstick, split)  # every frame read once: the real objects' slope and each frame's mean
    # Only the frames holding real objects: the others have no mean to regress on.
    lines = [m for m in read_manifest(out) if m["split"] == split and len(logs[m["source_frame"]])]
    frame_mean, inserted = [], []
    for scene, objects in inserted_by_frame(lines, cfg.data, cfg.coco):
        camera = yardstick.camera(scene)
        for m, label_id, mask in objects:
            ratio = scale_ratio(mask, yardstick.class_camera(camera, label_id), label_id)
            if ratio > 0:
                frame_mean.append(float(logs[m["source_frame"]].mean()))
                inserted.append(math.log(ratio))
    real = foretold(list(logs.values()), FrameSpread(0.0, 1.0, 0.0))
    return {"inserted_objects": len(inserted), "inserted_slope": _slope(frame_mean, inserted),
            "real_slope": real["slope_on_mates"]}


def compare(cfg: Config, split: str, every: int, out: Path, band: str = "frame", share: float = 1.0) -> dict:
    if every < 1:
        raise ConfigError(f"--every: expected >= 1, got {every}")
    if not 0 < share <= 1:
        raise ConfigError(f"--share: expected a power in (0, 1], got {share}")
    yardstick = learned_yardstick(cfg)
    spread = learn_spread(split_logs(cfg, yardstick, cfg.prepare.splits[0]))
    return {"split": split, "every": every, "band": band, "share": share, "spread": dataclasses.asdict(spread),
            "off": run_arm(cfg, split, every, out / "off", None),
            "on": run_arm(cfg, split, every, out / "on", spread, band == "frame", share)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    le = sub.add_parser("learn", help="how much of an object's size its frame shares, learned on the train split")
    le.add_argument("--split", help="the split to read it on as well (default: the downstream test split)")
    le.add_argument("--params", default="params.yaml")
    co = sub.add_parser("compare", help="the augment stage on one split without and with the frame scale")
    co.add_argument("--split", required=True)
    co.add_argument("--every", type=int, default=1, help="every K-th frame of the split (default 1: all)")
    co.add_argument("--out", type=Path, required=True, help="folder for the two runs (OUT/off, OUT/on)")
    co.add_argument("--band", choices=("frame", "dataset"), default="frame",
                    help="the filter's scale band with the frame scale: scaled with the candidates (frame) or "
                         "about the dataset's plane as the stage has it (dataset)")
    co.add_argument("--share", type=float, default=1.0,
                    help="the frame's scale to this power (default 1: all of it; e.g. 0.3: only the part of it the "
                         "GAN does not read already, as the slopes on train tell)")
    co.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with reported_as_one_line():
        cfg = load_config(args.params)
        if args.command == "learn":
            result = learn(cfg, args.split or cfg.evaluate.downstream.test_split)
        else:
            result = compare(cfg, args.split, args.every, args.out, args.band, args.share)
            (args.out / "frame_scale.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
