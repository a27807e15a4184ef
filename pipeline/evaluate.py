"""The ``evaluate`` stage: is the augmentation good? Placement, shape, diversity, downstream gain, gallery.

Reads the trained model (``augment.model``), the augment stage's output (``augment.out``) and the
prepared data; writes ``metrics/evaluate.json`` (DVC metrics), ``plots/evaluate/`` (DVC plots) and
``reports/`` (the gallery). Each part is in ``pipeline/evaluation/``:

- placement: ``inserted.py`` (ours / random / real, per rule) and ``where_quality.py`` (the where
  module's raw samples against random boxes), with the augment run's acceptance rates;
- shape and diversity: ``shapes.py``;
- downstream: the downstream stages' runs (``pipeline/downstream.py``: a segmenter and a Mask R-CNN per arm -
  subset, + ours, + random copy-paste, + rule-filtered copy-paste - and seed) gathered over seeds, with
  ours' verdict against each baseline;
- real frames: the model inserts into ``evaluate.real_root`` (a Cityscapes tree without camera files:
  ground planes are fitted) and the same placement figures are reported;
- gallery: ``gallery.py``.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.augment import augment
from pipeline.config import Config
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.downstream import METRICS_DIR, MODELS_DIR, load_subset_segmenter, summarize_runs
from pipeline.errors import ConfigError, DatasetError
from pipeline.evaluation.gallery import dataset_reader, fit_width, gallery_pairs, write_gallery
from pipeline.evaluation.inserted import evaluate_inserted, read_manifest
from pipeline.evaluation.render_quality import evaluate_render_modes
from pipeline.evaluation.seeds import plot_rows
from pipeline.evaluation.shapes import evaluate_diversity, evaluate_shapes, square_mask
from pipeline.evaluation.where_quality import evaluate_where
from pipeline.io import atomic_write_json, read_json
from pipeline.runtime import resolve_device
from pipeline.trained_gan import load_trained
from pipeline.trained_renderer import load_part_net, load_renderer


def inserted_squares(out: str | Path, size: int) -> dict[str, np.ndarray]:
    """The inserted objects' whole masks from a manifest, per class, as normalised squares."""
    squares = defaultdict(list)
    for m in read_manifest(out):
        squares[m["class"]].append(square_mask(mask_utils.decode(m["whole_mask"]).astype(bool), size))
    return {name: np.array(v) for name, v in squares.items()}


def acceptance(out: str | Path, split: str | None = None) -> dict:
    """Per class: inserted objects per candidate drawn, from the augment run's summary: over the frames of
    ``split``, or of every augmented split (None)."""
    summary = read_json(Path(out) / "summary.json")
    if split is not None:
        return dict(summary["frames"][split]["acceptance_rate"])
    return {name: c["acceptance_rate"] for name, c in summary["classes"].items()}


def real_dataset(cfg: Config) -> tuple[CityscapesDataset | None, str | None]:
    """The real frames of ``evaluate.real_root``, or None and why not: "" asks for none, and a folder that is
    not there is skipped (the default names the sample beside the project, absent in most clones); a folder
    that is there but is no readable Cityscapes tree is an error naming the key."""
    if not cfg.evaluate.real_root:
        return None, "evaluate.real_root is empty"
    root = Path(cfg.evaluate.real_root)
    if not root.is_dir():
        return None, f"evaluate.real_root: {root} not found"
    try:
        return CityscapesDataset(root), None
    except DatasetError as exc:
        raise ConfigError(f"evaluate.real_root: {exc}") from None


def real_frames(cfg: Config, dataset: CityscapesDataset, progress: bool) -> dict:
    """Insert into the real frames of ``dataset`` (``evaluate.real_root``) and judge the placements."""
    root = dataset.root
    with tempfile.TemporaryDirectory(prefix="ctxaug-real-") as tmp:
        aug = dataclasses.replace(cfg.augment, out=tmp, splits=dataset.splits, copy_originals=False, workers=1)
        real_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(root), format="cityscapes"),
                                       augment=aug)
        run = augment(real_cfg, progress=progress)
        placement = evaluate_inserted(real_cfg, tmp, cfg.evaluate.random_per_object, cfg.seed)
        pairs = gallery_pairs(dataset_reader(real_cfg.data, cfg.coco), tmp, len(dataset))
        return {"root": str(root), "frames": run["frames_done"], "placement": placement,
                "acceptance": acceptance(tmp), "_gallery": pairs}


def evaluate(cfg: Config, progress: bool = True, runs: str | Path = METRICS_DIR,
             run_models: str | Path = MODELS_DIR) -> tuple[dict, dict]:
    """Every figure of the stage, and the plots' data; ``runs`` / ``run_models``: the downstream stages'
    figures and saved segmenters."""
    e = cfg.evaluate
    device = resolve_device(e.device, "evaluate.device")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    gan = load_trained(cfg.augment.model, cfg, device)
    out = cfg.augment.out
    downstream = summarize_runs(cfg, runs)  # a missing run is refused now, before any work
    if e.render_frames and not e.downstream.sizes:
        raise ConfigError("evaluate.render_frames: the render modes are scored by the downstream subset segmenter; "
                          "with no evaluate.downstream.sizes set render_frames to 0")
    if e.render_frames:  # and a missing or mismatched renderer
        load_renderer(cfg.augment.appearance.renderer, cfg, device)
        load_part_net(cfg.augment.appearance.renderer, cfg, device)
        subset_segmenter = load_subset_segmenter(cfg, device, run_models)
    real_set, real_skipped = real_dataset(cfg)  # and a broken real_root
    if real_skipped and cfg.evaluate.real_root:
        print(f"evaluate: real frames skipped ({real_skipped})", file=sys.stderr)

    # The inserted objects of the scored split when the augment stage inserted into it (a real dataset's
    # val), else of every augmented frame (the built-in dataset augments train only).
    scored = [e.split] if e.split in cfg.augment.splits else None
    inserted = evaluate_inserted(cfg, out, e.random_per_object, cfg.seed, splits=scored)
    raw = evaluate_where(gan, cfg, e.split, e.samples_per_frame, cfg.seed)
    rates = acceptance(out, e.split if scored else None)
    # The model first: its raw samples (no rule applied) beside random boxes, and the share of candidates
    # the augment stage's rules accept; then the inserted objects, which passed those rules ("filtered").
    placement = {name: {"raw_where": raw["model"].get(name), "random_boxes": raw["random"].get(name),
                        "real_boxes": raw.get("real", {}).get(name),
                        "raw_over_real": raw.get("raw_over_real", {}).get(name),
                        "acceptance_rate": rates.get(name), "filtered": inserted.get(name, {})}
                 for name in cfg.prepare.classes}  # every class: one the run inserted none of has no filtered rows
    seconds["placement"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    shapes = evaluate_shapes(gan, cfg, e.split, e.samples_per_frame, cfg.seed,
                             inserted_squares(out, cfg.prepare.mask_size))
    diversity = evaluate_diversity(gan, cfg, e.split, e.diversity_frames, e.diversity_draws, cfg.seed)
    seconds["shape_diversity"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    render, render_rows = None, []
    if e.render_frames:
        render, render_rows = evaluate_render_modes(cfg, gan, subset_segmenter, device, e.render_frames)
    seconds["render_modes"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    real = real_frames(cfg, real_set, progress) if real_set is not None else None
    seconds["real_frames"] = round(time.perf_counter() - t, 1)

    metrics = {"placement": placement,
               # which frames: raw samples on evaluate.split; acceptance and inserted objects on it when the
               # augment stage inserted into it, else on every augmented split
               "placement_frames": {"raw_where": e.split, "filtered": scored or list(cfg.augment.splits)},
               "shape": shapes, "diversity": diversity, "downstream": downstream,
               "render_modes": render,
               "real_frames": {k: v for k, v in real.items() if not k.startswith("_")} if real
               else {"skipped": real_skipped},
               "seconds": seconds}
    plots = {
        "placement": [{"series": f"{name} {series}", "plausible": value["plausible"]}
                      for name, row in placement.items()
                      for series, value in (("raw model", row["raw_where"]), ("random boxes", row["random_boxes"]),
                                            ("real boxes", row["real_boxes"]),
                                            *((f"filtered {arm}", row["filtered"][arm])
                                              for arm in ("ours", "random", "real") if arm in row["filtered"]))
                      if value],
        # One plot per downstream metric (first subset size): each arm's mean with its +- std band.
        "downstream": {metric: plot_rows(downstream[str(e.downstream.sizes[0])], metric)
                       for metric in downstream[str(e.downstream.sizes[0])]["metrics"]}
                      if e.downstream.sizes else {},
        "_gallery": gallery_pairs(dataset_reader(cfg.data, cfg.coco), out, e.gallery_frames)
                    + (real["_gallery"] if real else [])
                    + [(f"{stem} (paste | gan | gan+parts)", [fit_width(im) for im in images])
                       for stem, images in render_rows],
    }
    return metrics, plots


def evaluate_stage(cfg: Config, metrics_path: str | Path = "metrics/evaluate.json",
                   plots_dir: str | Path = "plots/evaluate", reports: str | Path = "reports",
                   progress: bool = True, runs: str | Path = METRICS_DIR, run_models: str | Path = MODELS_DIR) -> dict:
    """Run ``evaluate`` and write its metrics, plots and reports (each file atomically)."""
    start = time.perf_counter()
    metrics, plots = evaluate(cfg, progress, runs, run_models)
    metrics["seconds"]["total"] = round(time.perf_counter() - start, 1)
    plots_dir, reports = Path(plots_dir), Path(reports)
    atomic_write_json(plots_dir / "placement.json", plots["placement"], indent=1)
    if (plots_dir / "downstream").is_dir():
        shutil.rmtree(plots_dir / "downstream")
    (plots_dir / "downstream").mkdir(parents=True)  # a declared output, empty without downstream sizes
    for metric, rows in plots["downstream"].items():
        atomic_write_json(plots_dir / "downstream" / f"{metric}.json", rows, indent=1)
    if (reports / "gallery").is_dir():
        shutil.rmtree(reports / "gallery")
    write_gallery(plots["_gallery"], reports, metrics)
    atomic_write_json(Path(metrics_path), metrics, indent=2)
    return metrics
