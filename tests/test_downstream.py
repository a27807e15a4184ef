"""The downstream experiment's parts: COCOeval scoring with known answers, the detector trained from the
augment stage's COCO files, the rule baseline, the context probe, and the statistics over seeds."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline import labels as lb
from pipeline.config import DetectorConfig, DownstreamConfig
from pipeline.evaluation.detection import CocoInstances, coco_scores, detect, train_detector
from pipeline.evaluation.downstream import Frame, out_of_context_pixels, predict, train_segmenter
from pipeline.evaluation.runs import ScoredSplit, out_of_context_detections
from pipeline.evaluation.seeds import mean_std, plot_rows, summarize, verdict
from pipeline.masks import encode_rle

TINY_DETECTOR = DetectorConfig(widths=[8, 8, 16, 16], fpn_channels=16, min_size=64, max_size=128, steps=10,
                               batch_size=2, warmup=2)


def rect(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


@pytest.fixture
def small_coco(tmp_path):
    """One 64x128 image: a person 6x12 px (small: under 32x32), a car 50x24 px, and a crowd of persons."""
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((64, 128, 3), np.uint8))
    anns = [(lb.PERSON, (10, 10, 6, 12), 0), (lb.CAR, (60, 30, 50, 24), 0), (lb.PERSON, (20, 40, 20, 10), 1)]
    doc = {"images": [{"id": 1, "file_name": "a.png", "height": 64, "width": 128}],
           "categories": [{"id": lb.PERSON, "name": "person"}, {"id": lb.CAR, "name": "car"},
                          {"id": lb.BY_NAME["rider"].id, "name": "rider"}],
           "annotations": [{"id": k + 1, "image_id": 1, "category_id": cat, "bbox": list(box), "area": box[2] * box[3],
                            "iscrowd": crowd, "segmentation": rect(*box)} for k, (cat, box, crowd) in enumerate(anns)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return CocoInstances(path, images)


def as_results(data: CocoInstances, shift: int = 0) -> list[dict]:
    """The ground truth (crowd left out) as detections, moved ``shift`` pixels right."""
    out = []
    for ann in data.coco.loadAnns(data.coco.getAnnIds(iscrowd=False)):
        m = np.roll(data.coco.annToMask(ann), shift, axis=1)
        x, y, w, h = ann["bbox"]
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 0.9,
                    "bbox": [x + shift, y, w, h], "segmentation": encode_rle(m)})
    return out


def test_coco_targets_leave_crowds_out(small_coco):
    image, target = small_coco[0]
    assert image.shape == (64, 128, 3)
    assert target["labels"].tolist() == [1, 2]  # person, car: the crowd is not a target
    assert target["boxes"].tolist() == [[10, 10, 16, 22], [60, 30, 110, 54]]
    assert target["masks"].shape == (2, 64, 128) and target["masks"][1].sum() > 0


def test_ground_truth_scores_1_and_a_3_pixel_shift_costs_the_small_person_not_the_car(small_coco):
    perfect = coco_scores(small_coco, as_results(small_coco))
    for name in ("person", "car"):
        assert perfect[name]["mask_ap50"] == 1.0 and perfect[name]["box_ap50"] == 1.0
    assert perfect["person"]["ar_small"] == 1.0  # 72 px: a small object
    assert perfect["car"]["ar_small"] is None  # 1,200 px: no small car to recall
    shifted = coco_scores(small_coco, as_results(small_coco, shift=3))
    assert shifted["person"]["mask_ap50"] == 0.0 and shifted["person"]["box_ap50"] == 0.0  # IoU 1/3
    assert shifted["car"]["mask_ap50"] == 1.0 and shifted["car"]["box_ap50"] == 1.0  # IoU 47/53
    nothing = coco_scores(small_coco, [])
    assert nothing["person"]["mask_ap50"] == 0.0 and nothing["car"]["box_ap"] == 0.0


def test_the_detector_trains_from_the_augment_stages_coco_files_and_is_scored(augmented_tiny):
    from pathlib import Path

    cfg, _ = augmented_tiny
    out = Path(cfg.augment.out)
    data = CocoInstances(out / "coco" / "annotations" / "instances_train.json",
                         out / "cityscapes" / "leftImg8bit" / "train")
    assert len(data) == 20 and sum(len(data.target(i)["labels"]) for i in range(len(data))) > 0
    model, curve = train_detector(data, TINY_DETECTOR, seed=0, device=torch.device("cpu"), progress=False)
    assert len(curve) == 1 and np.isfinite(curve).all()
    again, _ = train_detector(data, TINY_DETECTOR, seed=0, device=torch.device("cpu"), progress=False)
    first = next(iter(model.state_dict().values()))
    assert torch.equal(first, next(iter(again.state_dict().values())))  # the seed fixes weights and batches
    results = detect(model, data, torch.device("cpu"), score_threshold=0.0, progress=False)
    assert all(r["category_id"] in (lb.PERSON, lb.CAR) and 0 <= r["score"] <= 1 for r in results)
    scores = coco_scores(data, results)
    assert set(scores) == {"person", "car"}
    assert all(0 <= scores[n][k] <= 1 for n in scores for k in ("mask_ap", "mask_ap50", "box_ap", "box_ap50"))


# ------------------------------------------------------------------------------------ rule baseline
def test_the_rule_baseline_keeps_only_positions_that_pass_the_rules(augmented_tiny, monkeypatch):
    import pipeline.evaluation.copy_paste as cp
    from pipeline.appearance import CropBank
    from pipeline.config import RulesConfig
    from pipeline.datasets import open_dataset
    from pipeline.evaluation.inserted import read_manifest
    from pipeline.ground_plane import frame_camera
    from pipeline.rules import rule_verdicts

    cfg, _ = augmented_tiny
    by_frame: dict = {}
    for m in read_manifest(cfg.augment.out):
        by_frame.setdefault(m["source_frame"], []).append(m)
    rules = RulesConfig(max_overlap=cfg.augment.max_overlap, scale_band=cfg.augment.scale_band)
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    placed = []
    real_insert = cp.insert_object

    def recording(scene, whole, label_id, **kw):
        placed.append(rule_verdicts(scene.labels, whole, label_id, camera, rules)["plausible"])
        return real_insert(scene, whole, label_id, **kw)

    monkeypatch.setattr(cp, "insert_object", recording)
    verdicts = {}
    for with_rules in (False, True):
        placed.clear()
        for i, scene in enumerate(open_dataset(cfg.data, "train")):
            camera = frame_camera(scene)
            cp.Relocate(bank, cfg, rules=with_rules).insert(scene, by_frame.get(scene.frame.stem, []), seed=i)
        verdicts[with_rules] = list(placed)
    assert len(verdicts[True]) >= 10 and all(verdicts[True])  # behind the rules: every placement passes
    assert not all(verdicts[False])  # random positions alone: some do not


# ------------------------------------------------------------------------------------------ segmenter
def test_class_weights_make_the_segmenter_label_a_rare_class():
    """Persons on 1% of the pixels: 20 unweighted steps label (almost) none of them, the same 20 steps with
    the person weight up label more of them - the weight reaches the loss."""
    tid = lb.train_id_lut()
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(8):
        image = np.full((32, 64, 3), 110, np.uint8) + rng.integers(0, 8, (32, 64, 3), dtype=np.uint8)
        target = np.full((32, 64), tid[lb.BY_NAME["road"].id], np.uint8)
        y, x = int(rng.integers(0, 28)), int(rng.integers(0, 60))
        image[y:y + 4, x:x + 5] = (200, 40, 40)
        target[y:y + 4, x:x + 5] = lb.BY_NAME["person"].train_id
        frames.append(Frame(image, target, np.zeros((32, 64), np.int32)))
    person = lb.BY_NAME["person"].train_id
    targets = np.stack([f.target for f in frames])
    labelled = {}
    for name, weights in (("plain", {}), ("weighted", {"person": 50.0})):
        dc = DownstreamConfig(size=[64, 32], widths=[8, 16], crop=0, steps=20, batch_size=4, lr=0.01,
                              class_weights=weights)
        model, _ = train_segmenter(frames, dc, 0, torch.device("cpu"), progress=False)
        pred, _ = predict(model, frames, torch.device("cpu"))
        labelled[name] = float((pred[targets == person] == person).mean())
    assert labelled["weighted"] > labelled["plain"] + 0.2, labelled


# ------------------------------------------------------------------------------------ context probe
def test_out_of_context_pixels_are_the_share_of_impossible_regions_labelled_person_or_car():
    tid = lb.train_id_lut()
    target = np.full((1, 4, 10), tid[lb.BY_NAME["road"].id], np.uint8)
    target[0, :2] = tid[lb.BY_NAME["sky"].id]  # 20 sky pixels
    pred = target.copy()
    pred[0, 0, :5] = lb.BY_NAME["person"].train_id  # 5 of them called person
    pred[0, 3, :] = lb.BY_NAME["car"].train_id  # cars on the road: in context
    assert out_of_context_pixels(pred, target) == {"person_out_of_context_pixels": 0.25,
                                                   "car_out_of_context_pixels": 0.0}


def test_out_of_context_detections_count_confident_masks_mostly_on_impossible_regions(small_coco):
    labels = np.full((64, 128), lb.BY_NAME["road"].id, np.uint8)
    labels[:20] = lb.BY_NAME["building"].id  # the person (rows 10-21) stands mostly on the facade
    test = ScoredSplit([], small_coco, {1: labels})
    results = as_results(small_coco)
    probe = out_of_context_detections(results, test, min_score=0.5)
    assert probe["person_out_of_context_detections"] == 1.0 and probe["car_out_of_context_detections"] == 0.0
    low = [dict(r, score=0.1) for r in results]
    assert out_of_context_detections(low, test, 0.5)["person_out_of_context_detections"] is None


# ------------------------------------------------------------------------------------ over seeds
def test_verdicts_need_more_than_two_standard_deviations():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert verdict([0.50, 0.52, 0.51], [0.30, 0.31, 0.29])["verdict"] == "beats"
    assert verdict([0.30, 0.31, 0.29], [0.50, 0.52, 0.51])["verdict"] == "loses"
    close = verdict([0.50, 0.60, 0.55], [0.46, 0.55, 0.50])
    assert close["verdict"] == "within 2 std" and close["two_std"] == pytest.approx(0.1)
    assert close["p"] is not None and 0 < close["p"] < 1
    assert verdict([0.01, 0.02, 0.01], [0.2, 0.3, 0.25], lower_better=True)["verdict"] == "beats"
    assert verdict([0.5], [0.1])["verdict"] == "too few seeds"


def test_summary_pairs_seeds_and_leaves_out_a_seed_without_a_figure():
    def run(person_iou, rate):
        return {"segmenter": {"person_iou": person_iou, "car_iou": 0.5, "miou": 0.3},
                "detector": {"scores": {"person": {"mask_ap50": 0.1}, "car": {"mask_ap50": 0.2}},
                             "person_out_of_context_detections": rate}}

    runs = {0: {"subset": run(0.1, 0.5), "ours": run(0.4, 0.1), "copy_paste": run(0.2, 0.3), "rules": run(0.2, 0.3)},
            1: {"subset": run(0.1, 0.5), "ours": run(0.5, None), "copy_paste": run(0.2, 0.3), "rules": run(0.3, 0.3)},
            2: {"subset": run(0.2, 0.4), "ours": run(0.45, 0.2), "copy_paste": run(0.25, 0.2), "rules": run(0.2, 0.4)}}
    summary = summarize(runs)
    iou = summary["metrics"]["segmenter_iou_person"]
    assert iou["ours"] == {"mean": 0.45, "std": 0.05, "n": 3}
    assert iou["ours_vs_copy_paste"]["verdict"] == "beats"
    rate = summary["metrics"]["out_of_context_detections_person"]
    assert rate["ours"]["n"] == rate["rules"]["n"] == 2  # seed 1 has no rate for ours: left out of every arm
    assert "detector_ar_small_car" not in summary["metrics"]  # no run has it (a model not trained): left out
    rows = plot_rows(summary, "segmenter_iou_person")
    assert [r["arm"] for r in rows] == ["copy_paste", "ours", "rules", "subset"]
    assert rows[1]["low"] == pytest.approx(0.4) and rows[1]["high"] == pytest.approx(0.5)


def test_recall_over_seeds_is_read_from_the_height_buckets():
    """recall_32px_up / recall_under_32px: found over objects of the buckets from / under 32 px, per run; false
    positives per frame are lower-is-better."""
    def run(found_tall, fp):
        cells = {"0-16": (1, 4), "16-32": (2, 4), "32-64": (found_tall, 5), "64+": (1, 1)}
        by_height = {"person": {b: {"found": f, "objects": n, "recall": f / n} for b, (f, n) in cells.items()}}
        return {"segmenter": {"recall_by_height": by_height, "false_positives": {"person": {"per_frame": fp}}}}

    runs = {s: {"subset": run(2, 3.0), "ours": run(5, 1.0 + s / 10), "copy_paste": run(2, 3.0), "rules": run(3, 2.0)}
            for s in range(3)}
    summary = summarize(runs)["metrics"]
    assert summary["recall_32px_up_person"]["ours"]["mean"] == 1.0  # (5 + 1) / (5 + 1)
    assert summary["recall_32px_up_person"]["subset"]["mean"] == 0.5  # (2 + 1) / 6
    assert summary["recall_under_32px_person"]["ours"]["mean"] == 0.375  # (1 + 2) / 8
    assert "recall_32px_up_car" not in summary  # no car buckets in these runs
    assert summary["false_positives_person"]["ours_vs_copy_paste"]["verdict"] == "beats"  # fewer: better


def test_a_model_that_fails_in_a_worker_ends_the_run_with_its_one_line(tmp_path):
    """Two workers, arms and test set missing: the job's error comes back as one line naming the file (not
    a broken pool's traceback: the workers read the test set in their first job, not at start-up)."""
    import dataclasses

    from conftest import REPO

    from pipeline.config import load_config
    from pipeline.errors import PipelineError
    from pipeline.evaluation.runs import run_arms

    cfg = load_config(REPO / "params.yaml")
    down = dataclasses.replace(cfg.evaluate.downstream, workers=2)
    cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, downstream=down))
    with pytest.raises(PipelineError) as failure:
        run_arms(cfg, tmp_path / "arms", 0, tmp_path / "test", torch.device("cpu"), progress=False)
    assert str(tmp_path / "test") in str(failure.value) and "\n" not in str(failure.value)


STAGE_WITH_WORKERS = '''
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor

from pipeline.config import load_config
from pipeline.evaluation.runs import _init_worker


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


if __name__ == "__main__":
    cfg = load_config(sys.argv[1])
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(cfg, "arms", 0, "test", "cpu"))
    pids = set()
    for _ in range(20):  # until both workers have run their initializer (a job ran on each)
        pids |= {f.result() for f in [pool.submit(pid_after, 0.3) for _ in range(2)]}
        if len(pids) == 2:
            break
    busy = [pool.submit(time.sleep, 300) for _ in range(2)]  # a model that trains for minutes
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(300)
'''


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie - dead, not yet reaped - does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc (Linux)")
def test_workers_stop_when_their_stage_is_killed(tmp_path):
    """A downstream stage killed by a signal to its own process (SIGKILL here: no clean-up runs) takes its
    pool's workers with it within seconds, instead of leaving them training for nobody."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    script = tmp_path / "stage.py"
    script.write_text(STAGE_WITH_WORKERS)
    stage = subprocess.Popen([sys.executable, str(script), str(REPO / "params.yaml")], stdout=subprocess.PIPE,
                             text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        workers = [int(p) for p in stage.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
    finally:
        stage.send_signal(signal.SIGKILL)
        stage.wait()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:  # never leave them behind, pass or fail
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived their stage"


def test_a_downstream_run_without_the_detector_does_not_load_torchvisions_detection_models():
    """Every downstream stage and worker imports this code; torchvision's detection modules (and the
    torch._dynamo they pull in, seconds on 2 cores) load only when a detector is built."""
    code = ("import sys, stages.downstream, pipeline.models.detector; "
            "print(any(m.startswith('torchvision.models.detection') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False", out.stderr
