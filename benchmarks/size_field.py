"""Where are the density where model's box sizes right, and where do they drift? The model (``model.where_model:
density``) draws a cell for the box's bottom centre, then a log height and log width from a Gaussian it reads at
that point of its size field. Training fits that field by likelihood at the real objects' own bottom centres
only; this reads how it holds there and at the places it draws boxes.

    python benchmarks/size_field.py [--split train] [--every 2] [--per-frame 8] [--params params.yaml] [--model DIR]

fit: the size field read at each real example's own bottom centre (the prepared examples of the split: on
``train`` the very examples and input the likelihood was fitted on, on another split held-out ones), on its scene
with the object removed (x+): the median of log(real height) - mu_h and of
log(real width) - mu_w (0: the field predicts the real object's size there), the spread of the first (median
absolute deviation) beside the median sd of the log height the field itself states, by class, by quarter of the
real objects' contact rows, and apart for the objects beside another person or car (whose removal leaves a gap
in the other's outline) and the ones alone.

draws: the model's raw boxes on the split's frames (every ``--every``-th frame, ``--per-frame`` draws per class and
frame, as the train stage's scoring draws them; a box that reaches the frame's bottom row is left out, its height
cut) beside the split's real single objects (kept by prepare's filters, not cut by the frame's border): each box's
scale ratio under the rules' ground plane (the learned one, or the frame's camera) over its class's typical object,
by the same quarters of contact rows - the median and the count in each - and the median width over height, also by
the same bands of rows and by band of the bottom centre's column (``COLUMNS``: the sides, between, the middle); for
the draws also the share that reach the frame's left or right side (a car cut by the frame is narrow; no real single
object is), the median width over height of the others, and the field's own width over height at the draws
(``median_field_aspect``: the box before the draw's noise, the one-cell floor and the frame's cut), and the share of
draws whose width is that floor (``at_width_floor``). A model whose sizes hold away from the real objects' positions
draws ratios near the real objects' in every band.

Needs a workspace with a prepared dataset and a trained density where model, and a ground plane for the scale
(``rules.learned`` or camera files).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import Config, load_config  # noqa: E402
from pipeline.datasets import open_dataset  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.ground_plane import rows_inside_frame  # noqa: E402
from pipeline.labels import BY_NAME, INSTANCE_FACTOR  # noqa: E402
from pipeline.masks import mask_bbox  # noqa: E402
from pipeline.models.affine import theta_to_box  # noqa: E402
from pipeline.prepare import instance_filter  # noqa: E402
from pipeline.rules import Yardstick, rows_scale_ratio  # noqa: E402
from pipeline.trained_gan import load_trained  # noqa: E402
from pipeline.training_data import PreparedData  # noqa: E402

BATCH = 64
COLUMNS = [0.0, 0.15, 0.35, 0.65, 0.85, 1.0]  # bands of the bottom centre across the frame: sides, between, middle
ROW_FIELDS = {"model": ("contact", "ratio", "aspect", "centre", "side", "field_aspect", "at_floor"),
              "real": ("contact", "ratio", "aspect", "centre")}  # the rows of ``draws_and_real`` by arm


def row_quarters(contacts: np.ndarray) -> list[float]:
    """Edges of the four bands of contact rows that each hold a quarter of ``contacts`` (first 0, last 1)."""
    return [0.0, *np.quantile(contacts, [0.25, 0.5, 0.75]).tolist(), 1.0]


def by_band(contacts: np.ndarray, values: np.ndarray, edges: list[float], key: str = "rows") -> list[dict]:
    """Median of ``values`` and count in each band [lo, hi) of ``contacts`` (the last band holds 1.0), the band
    under ``key``."""
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (contacts >= lo) & ((contacts < hi) | (k == len(edges) - 2))
        out.append({key: [round(lo, 3), round(hi, 3)], "n": int(inside.sum()),
                    "median": round(float(np.median(values[inside])), 3) if inside.any() else None})
    return out


def field_fit(gan, prepared: PreparedData, classes: list[str]) -> dict[str, np.ndarray]:
    """Per class, rows of (contact row, log h - mu_h, log w - mu_w, sd of log h, beside another object) of every
    prepared example, the field read at its own bottom centre on its x+ scene."""
    rows = []
    n = len(prepared)
    with torch.no_grad():
        for start in range(0, n, BATCH):
            index = torch.arange(start, min(n, start + BATCH))
            batch = prepared.batch(len(index), torch.Generator().manual_seed(0), index=index)
            c = torch.nn.functional.one_hot(batch["cls"], len(classes)).float()
            out = gan.where(batch["xp_where"], c)
            x0, y0, x1, y1 = theta_to_box(batch["theta_real"].float()).unbind(1)
            mu_h, log_sd_h, mu_w, _ = gan.where._sizes_at(out, (x0 + x1) / 2, y1).unbind(1)
            rows.append(torch.stack([batch["cls"].float(), y1, (y1 - y0).clamp_min(1e-4).log() - mu_h,
                                     (x1 - x0).clamp_min(1e-4).log() - mu_w, log_sd_h.exp()], 1))
    table = np.concatenate([torch.cat(rows).numpy(), beside_another(prepared)[:, None]], 1)
    return {name: table[table[:, 0] == c][:, 1:] for c, name in enumerate(classes)}


def beside_another(prepared: PreparedData) -> np.ndarray:
    """1 for each prepared example whose object touches another person or car in its frame (at the where
    resolution: a cell of the one next to a cell of the other), else 0. Removing such an object leaves a gap
    in the other's outline that the x+ scene still shows."""
    out = np.zeros(len(prepared), np.float32)
    maps = prepared.instances_where.numpy()
    for i, (frame, value) in enumerate(zip(prepared.inst_frame.tolist(), prepared.inst_value.tolist(), strict=True)):
        ids = maps[frame]
        mask = ids == value
        ring = ndimage.binary_dilation(mask, np.ones((3, 3), bool)) & ~mask
        out[i] = float(((ids[ring] >= INSTANCE_FACTOR) & (ids[ring] != value)).any())
    return out


def draws_and_real(cfg: Config, gan, split: str, every: int, per_frame: int) -> dict[str, dict[str, np.ndarray]]:
    """Per class, rows of (contact row, scale ratio, width / height in pixels, bottom centre's column, 1 if the box
    reaches the frame's left or right side, the field's own width / height there, 1 if the box's width is the
    sampler's least, one where-map cell) of the model's raw boxes ("model") and the first four of them for the
    split's real single objects ("real": none reaches a side, ``rows_inside_frame`` left those out), on every
    ``every``-th frame with a ground plane (columns and rows as fractions). The field's width / height is
    exp(mu_w - mu_h) read at the box's bottom centre: what the box would be before the draw's noise, the
    one-cell floor on its width and height, and the frame's cut."""
    yardstick = Yardstick.of(cfg)
    dataset = open_dataset(cfg.data, split, cfg.coco)
    prepared = PreparedData(Path(cfg.prepare.out) / f"{split}.npz", "cpu", flip_prob=0.0)
    class_ids = [BY_NAME[name].id for name in cfg.prepare.classes]
    rows = {name: {"model": [], "real": []} for name in cfg.prepare.classes}
    torch.manual_seed(cfg.seed)
    for i in range(0, len(dataset), every):
        scene = dataset[i]
        camera = yardstick.camera(scene)
        if camera is None:
            continue
        height, width = scene.size
        x_where, x_what = prepared.scene_inputs(torch.full((per_frame,), i, dtype=torch.long))
        for c, name in enumerate(cfg.prepare.classes):
            label_camera = yardstick.class_camera(camera, class_ids[c])
            cls = torch.full((per_frame,), c, dtype=torch.long)
            with torch.no_grad():
                boxes = gan.sample(x_where, x_what, cls)["box"]
                # (the where net's forward draws nothing: the samples above are as without this)
                out = gan.where(x_where, torch.nn.functional.one_hot(cls, len(class_ids)).float())
                field = gan.where._sizes_at(out, (boxes[:, 0] + boxes[:, 2]).float() / 2, boxes[:, 3].float())
            field_aspect = (field[:, 2] - field[:, 0]).exp().numpy().astype(np.float64) * width / height
            floor = 1 / out.shape[-1]  # the sampler's least width: one cell of the where map
            for (x0, y0, x1, y1), own in zip(boxes.float().numpy().astype(np.float64), field_aspect, strict=True):
                top, bottom = int(round(y0 * height)), int(round(y1 * height)) - 1
                if bottom <= top or bottom >= height - 1:  # cut by the frame's bottom: no height of its own
                    continue
                ratio = rows_scale_ratio(top, bottom, label_camera, class_ids[c])
                if ratio > 0:  # nan above the horizon fails this too
                    rows[name]["model"].append((y1, ratio, (x1 - x0) * width / ((y1 - y0) * height), (x0 + x1) / 2,
                                                float(x0 * width < 1 or x1 * width > width - 1), own,
                                                float(x1 - x0 <= floor * (1 + 1e-4))))
        for inst in scene.instances:
            if instance_filter(inst, cfg.prepare, class_ids):
                continue
            mask = scene.instance_ids == inst.value
            extent = rows_inside_frame(mask)
            if extent is None:
                continue
            top, bottom = extent
            name = cfg.prepare.classes[class_ids.index(inst.label_id)]
            ratio = rows_scale_ratio(top, bottom, yardstick.class_camera(camera, inst.label_id), inst.label_id)
            if ratio > 0:
                box_x, _, box_w, box_h = mask_bbox(mask)
                rows[name]["real"].append(((bottom + 1) / height, ratio, box_w / box_h, (box_x + box_w / 2) / width))
    return {name: {k: np.array(v, float).reshape(-1, len(ROW_FIELDS[k])) for k, v in arms.items()}
            for name, arms in rows.items()}


def spread_of(f: np.ndarray) -> dict:
    """Count, median and median absolute deviation of the log height residuals (column 1) of fit rows ``f``."""
    if not len(f):
        return {"examples": 0}
    residual = f[:, 1]
    return {"examples": len(f), "log_h_residual": round(float(np.median(residual)), 3),
            "log_h_residual_mad": round(float(np.median(np.abs(residual - np.median(residual)))), 3)}


def measure(cfg: Config, model: str, split: str, every: int, per_frame: int) -> dict:
    if every < 1 or per_frame < 1:
        raise ConfigError(f"--every and --per-frame: expected >= 1, got {every} and {per_frame}")
    gan = load_trained(model, cfg).eval()
    if not gan.density:
        raise ConfigError(f"{model}: its where module is the GAN's (model.where_model: gan), which has no size "
                          "field to read; this reads the density where model's")
    fit = field_fit(gan, PreparedData(Path(cfg.prepare.out) / f"{split}.npz", "cpu", flip_prob=0.0),
                    cfg.prepare.classes)
    drawn = draws_and_real(cfg, gan, split, every, per_frame)
    result: dict = {"split": split, "every": every, "per_frame": per_frame, "classes": {}}
    for name in cfg.prepare.classes:
        f, real, model_rows = fit[name], drawn[name]["real"], drawn[name]["model"]
        if not len(real) or not len(model_rows):
            continue
        edges = row_quarters(real[:, 0])
        result["classes"][name] = {
            "fit": {"examples": len(f), "log_h_residual": round(float(np.median(f[:, 1])), 3),
                    "log_w_residual": round(float(np.median(f[:, 2])), 3),
                    "sd_log_h": round(float(np.median(f[:, 3])), 3),
                    "log_h_residual_mad": round(float(np.median(np.abs(f[:, 1] - np.median(f[:, 1])))), 3),
                    "log_h_residual_by_rows": by_band(f[:, 0], f[:, 1], row_quarters(f[:, 0])),
                    "beside_another": spread_of(f[f[:, 4] == 1]), "alone": spread_of(f[f[:, 4] == 0])},
            "draws": {arm: {"n": len(v), "median_scale": round(float(np.median(v[:, 1])), 3),
                            "median_aspect": round(float(np.median(v[:, 2])), 3),
                            "scale_by_rows": by_band(v[:, 0], v[:, 1], edges),
                            "aspect_by_rows": by_band(v[:, 0], v[:, 2], edges),
                            "aspect_by_columns": by_band(v[:, 3], v[:, 2], COLUMNS, "columns")}
                      for arm, v in (("model", model_rows), ("real", real))}}
        inside = model_rows[model_rows[:, 4] == 0]  # the draws that, as the real single objects, no side cuts
        result["classes"][name]["draws"]["model"] |= {
            "cut_by_side": round(float(model_rows[:, 4].mean()), 3),
            "median_aspect_inside": round(float(np.median(inside[:, 2])), 3) if len(inside) else None,
            "median_field_aspect": round(float(np.median(model_rows[:, 5])), 3),
            "at_width_floor": round(float(model_rows[:, 6].mean()), 3)}
    return result


def side_by_side(model: list[dict], real: list[dict], key: str) -> str:
    """``by_band`` lists of the draws and the real objects as one line: band, median (count) / median (count)."""
    return "; ".join(f"{m[key][0]:.2f}-{m[key][1]:.2f} {m['median']} ({m['n']}) / {q['median']} ({q['n']})"
                     for m, q in zip(model, real, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="train", help="the frames the model draws on (default train)")
    parser.add_argument("--every", type=int, default=2, help="every K-th frame of the split (default 2)")
    parser.add_argument("--per-frame", type=int, default=8, help="draws per class and frame (default 8)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default=None, help="trained model folder (default: augment.model)")
    args = parser.parse_args()
    with reported_as_one_line():
        cfg = load_config(args.params)
        result = measure(cfg, args.model or cfg.augment.model, args.split, args.every, args.per_frame)
    for name, r in result["classes"].items():
        fit, model, real = r["fit"], r["draws"]["model"], r["draws"]["real"]
        print(f"{name}: the field at the real examples' own places: log h residual {fit['log_h_residual']:+.3f}, "
              f"log w {fit['log_w_residual']:+.3f}, its spread (median absolute deviation) "
              f"{fit['log_h_residual_mad']:.3f}, "
              f"the field's own sd of log h {fit['sd_log_h']:.3f} ({fit['examples']} examples); beside another "
              f"object {fit['beside_another']}, alone {fit['alone']}")
        print(f"  scale ratio, model draws / real objects: median {model['median_scale']} / {real['median_scale']}"
              f" (w/h {model['median_aspect']} / {real['median_aspect']}); by contact rows: "
              + side_by_side(model["scale_by_rows"], real["scale_by_rows"], "rows"))
        print("  w/h by bottom centre's column, model draws / real objects: "
              + side_by_side(model["aspect_by_columns"], real["aspect_by_columns"], "columns")
              + f"; draws reaching the frame's side {model['cut_by_side']} (w/h of the others "
              f"{model['median_aspect_inside']}); the field's own w/h at the draws {model['median_field_aspect']}; "
              f"draws at the sampler's least width (one where-map cell) {model['at_width_floor']}")
        print("  w/h by contact rows, model draws / real objects: "
              + side_by_side(model["aspect_by_rows"], real["aspect_by_rows"], "rows"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
