"""How plausible the where module's raw placements are, against random placement of real-sized boxes.

For every frame of a split and every class, the model draws ``per_frame`` boxes from random
``z_where`` - raw samples, nothing filtered - and each box is judged at the dataset's own resolution
by the rules of ``pipeline.rules`` (the box as the object's mask: its bottom edge is the
contact row): support under the bottom edge, height against the ground-plane prediction (the frame's
camera file, else a ground plane fitted to its own objects; no scale verdict where neither exists),
overlap with existing persons and cars. The baseline draws boxes of
the sizes real instances of the class have (from the prepared training instances) at uniformly random
positions inside the image. The ceiling (``real``) judges the boxes of the same frames' own objects (those
the prepare stage keeps as training examples), each with itself removed from the scene: what the rules
make of the data's own placements, judged as the model's samples are.

Each plausible share comes with a 95% interval from a bootstrap over the split's frames (the samples of one
frame share its scene, so frames, not samples, are what is resampled), and the raw samples' share over the
real objects' (``raw_over_real``) with its paired interval: both shares taken on the same resampled frames.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.label_surgery import remove_object
from pipeline.labels import BY_NAME
from pipeline.prepare import instance_filter
from pipeline.rules import Yardstick
from pipeline.scene import Camera
from pipeline.training_data import PreparedData


def box_mask(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """A filled rectangle for a box (x0, y0, x1, y1 in [0, 1]), clipped to the image (empty when the box
    lies wholly outside it)."""
    x0, y0, x1, y1 = np.round(box * [width, height, width, height]).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def judge(scene, box: np.ndarray, label_id: int, camera: Camera | None, yardstick: Yardstick) -> dict:
    """The rules' verdicts for a box (its filled rectangle as the object's mask) in ``scene``, whose
    ground plane is ``camera`` (None: no scale rule)."""
    height, width = scene.size
    mask = box_mask(box, height, width)
    if not mask.any():  # the box lies wholly outside the image: no rule can pass
        rules = ("support", "overlap", "scale") if camera is not None else ("support", "overlap")
        return dict.fromkeys((*rules, "plausible"), False)
    return yardstick.verdicts(scene.labels, mask, label_id, camera)


def real_box_verdicts(scene, cfg: Config, yardstick: Yardstick):
    """(object, the rules' verdicts) for each of the scene's own objects that the prepare stage keeps as a
    training example, its box judged as a raw sample is, with itself removed from the scene: the ceiling."""
    class_ids = [BY_NAME[name].id for name in cfg.prepare.classes]
    height, width = scene.size
    for inst in scene.instances:
        if instance_filter(inst, cfg.prepare, class_ids):
            continue
        labels_before, _ = remove_object(scene.labels, scene.instance_ids, inst.value)
        x, y, w, h = inst.bbox
        box = np.array([x / width, y / height, (x + w) / width, (y + h) / height])
        yield inst, yardstick.verdicts(labels_before, box_mask(box, height, width), inst.label_id,
                                       yardstick.camera(scene, exclude=inst.value))


def random_boxes(real_boxes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` boxes with the sizes of randomly chosen real boxes, at uniform positions inside the image."""
    pick = real_boxes[rng.integers(len(real_boxes), size=n)]
    w, h = pick[:, 2] - pick[:, 0], pick[:, 3] - pick[:, 1]
    x0, y0 = rng.random(n) * (1 - w), rng.random(n) * (1 - h)
    return np.stack([x0, y0, x0 + w, y0 + h], 1)


def evaluate_where(gan, cfg: Config, split: str = "val", per_frame: int = 4, seed: int = 0,
                   max_frames: int | None = None) -> dict:
    """Share of raw model samples and of random boxes meeting each rule, per class."""
    device = next(gan.parameters()).device
    dataset = open_dataset(cfg.data, split, cfg.coco)
    prepared = PreparedData(f"{cfg.prepare.out}/{split}.npz", device, flip_prob=0.0)
    train = PreparedData(f"{cfg.prepare.out}/train.npz", "cpu", flip_prob=0.0)
    yardstick = Yardstick.of(cfg)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n_frames = len(dataset) if max_frames is None else min(max_frames, len(dataset))
    tallies = {(arm, c): {} for arm in ("model", "random", "real") for c in range(len(cfg.prepare.classes))}
    # [plausible, judged] per frame: the plausible share and its interval both come from it
    per_frame_plausible = {key: np.zeros((n_frames, 2)) for key in tallies}
    class_ids = [BY_NAME[name].id for name in cfg.prepare.classes]

    def add(arm: str, c: int, verdicts: dict, frame: int) -> None:
        for rule, ok in verdicts.items():
            if rule == "plausible":
                continue
            t = tallies[(arm, c)].setdefault(rule, [0, 0])
            t[0] += int(ok)
            t[1] += 1
        per_frame_plausible[(arm, c)][frame] += [bool(verdicts["plausible"]), 1]

    gan.eval()
    for i in range(n_frames):
        scene = dataset[i]
        camera = yardstick.camera(scene)
        frame = torch.full((per_frame,), i, dtype=torch.long, device=device)
        for c, name in enumerate(cfg.prepare.classes):
            label_id = BY_NAME[name].id
            x_where, x_what = prepared.scene_inputs(frame)
            cls = torch.full((per_frame,), c, dtype=torch.long, device=device)
            with torch.no_grad():
                boxes = gan.sample(x_where, x_what, cls)["box"].float().cpu().numpy()
            real = train.inst_box[train.inst_class == c].numpy()
            for arm, arm_boxes in (("model", boxes), ("random", random_boxes(real, per_frame, rng))):
                for box in arm_boxes:
                    add(arm, c, judge(scene, box, label_id, camera, yardstick), i)
        for inst, verdicts in real_box_verdicts(scene, cfg, yardstick):
            add("real", class_ids.index(inst.label_id), verdicts, i)
    gan.train()
    result: dict = {}
    for (arm, c), rules in tallies.items():
        if rules:  # a class without a real object in the split has no ceiling
            plausible, judged = per_frame_plausible[(arm, c)].sum(0)
            result.setdefault(arm, {})[cfg.prepare.classes[c]] = {
                rule: round(ok / n, 4) for rule, (ok, n) in rules.items()} | {
                "plausible": round(float(plausible / judged), 4), "samples": int(judged),
                "plausible_ci95": share_interval(per_frame_plausible[(arm, c)])}
            if arm == "real":
                result.setdefault("raw_over_real", {})[cfg.prepare.classes[c]] = ratio_of_shares(
                    per_frame_plausible[("model", c)], per_frame_plausible[(arm, c)])
    return result


def _bootstrap(rows: tuple[np.ndarray, ...], statistic, seed: int = 0) -> list[float] | None:
    """95% percentile interval of ``statistic`` over frames resampled with replacement (the same frames for
    every array in ``rows``); None with fewer than two frames."""
    if len(rows[0]) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.bootstrap(rows, statistic, paired=True, vectorized=True, n_resamples=2000,
                              method="percentile", random_state=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return [round(float(low), 4), round(float(high), 4)] if np.isfinite([low, high]).all() else None


def share_interval(counts: np.ndarray) -> list[float] | None:
    """``counts`` [frames, 2] (plausible, judged): the 95% interval of the plausible share, frames resampled."""
    return _bootstrap((counts[:, 0], counts[:, 1]), lambda ok, n, axis=-1: ok.sum(axis) / n.sum(axis))


def ratio_of_shares(model: np.ndarray, real: np.ndarray) -> dict:
    """The model's plausible share over the real objects' on the same frames ([frames, 2] counts each), with
    its paired 95% interval: both shares on each resampled set of frames."""
    def ratio(ok_m, n_m, ok_r, n_r, axis=-1):
        return (ok_m.sum(axis) / n_m.sum(axis)) / (ok_r.sum(axis) / n_r.sum(axis))

    columns = (model[:, 0], model[:, 1], real[:, 0], real[:, 1])
    ok = real[:, 0].sum() > 0 and model[:, 1].sum() > 0
    return {"ratio": round(float(ratio(*columns)), 4) if ok else None,
            "ci95": _bootstrap(columns, ratio) if ok else None}
