"""Semantic-label datasets (data.format: semantic): image + label-map folders with their own class ids, read
into scenes whose objects are connected components under the blob policy; the learned placement rules; the
CamVid profile. Real CamVid frames are used where ../shared/data/camvid is present (skipped otherwise)."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import REPO
from test_bad_input import run_cli, run_in_process

from pipeline.config import Config, PrepareConfig, RulesConfig, SemanticConfig, load_config
from pipeline.datasets import open_dataset
from pipeline.datasets.semantic import SemanticDataset, classify_component, components, frame_id_of, top_peaks
from pipeline.errors import ConfigError, DatasetError
from pipeline.labels import BY_NAME
from pipeline.prepare import check_aspect
from pipeline.profiles import apply_profile
from pipeline.rules import YARDSTICK_FILE, Yardstick, learn_yardstick, save_yardstick

CAMVID = Path(os.environ.get("CTXAUG_CAMVID", REPO.parent / "shared" / "data" / "camvid"))
PERSON, CAR, ROAD, SIDEWALK = (BY_NAME[n].id for n in ("person", "car", "road", "sidewalk"))
# A made-up dataset's ids: 0 road, 1 sidewalk, 2 sky, 5 pedestrian, 7 car, 255 void.
CLASSES = {0: "road", 1: "sidewalk", 2: "sky", 5: "person", 7: "car", 255: "ignore"}


def street(width=96, height=72, persons=((20, 50),), cars=((50, 64),)) -> np.ndarray:
    """A label map in the made-up ids: sky above row 24, sidewalk to x 40, road beyond; persons and cars with
    their bottom-left corners at the given (x, row), as tall as a ground plane with its horizon at row 24
    makes them (a person (row - 24) / 2 rows, a car a third of that and 2.4 times as wide)."""
    labels = np.full((height, width), 0, np.uint8)
    labels[:, :40] = 1
    labels[:24] = 2
    for x, y in persons:
        h = max(6, (y - 24) // 2)
        labels[y - h : y, x : x + max(3, h // 3)] = 5
    for x, y in cars:
        h = max(4, (y - 24) // 3)
        labels[y - h : y, x : x + int(2.4 * h)] = 7
    return labels


def write_dataset(root: Path, frames: dict[str, list[np.ndarray]], list_files=False) -> Path:
    """Images (noise) and label maps per split: folders ``{split}`` / ``{split}annot``, or list files too."""
    rng = np.random.default_rng(0)
    for split, maps in frames.items():
        lines = []
        for i, labels in enumerate(maps):
            name = f"seqA_{i:04d}.png"
            image = rng.integers(0, 255, (*labels.shape[:2], 3), dtype=np.uint8)
            for sub, array in ((split, image), (f"{split}annot", labels)):
                (root / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / sub / name), array)
            lines.append(f"{split}/{name} {split}annot/{name}")
        if list_files:
            (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def semantic_cfg(**extra) -> SemanticConfig:
    return SemanticConfig(images={"train": "train", "val": "val"}, labels={"train": "trainannot", "val": "valannot"},
                          classes=dict(CLASSES), **extra)


# ------------------------------------------------------------------------------------------- reading


def test_frame_names_of_any_dataset_become_cityscapes_frame_ids():
    assert frame_id_of("train", "0001TP_006690", 0).stem == "0001TP_000000_006690"
    assert frame_id_of("val", "aachen_000001_000019", 3).stem == "aachen_000001_000019"
    assert frame_id_of("train", "kitti_road-42", 0).stem == "kitti-road_000000_000042"
    assert frame_id_of("train", "b1c66a42-6f7d68ca", 7).stem == "frame_000000_000007"  # no number: its index


def test_components_are_objects_groups_and_fragments():
    """Two separate persons are two objects (numbered far to near); two touching cars side by side are one
    group (a crowd region, as Cityscapes labels a group); a 4-pixel sliver of a person is a fragment."""
    labels = street(persons=((10, 60), (84, 44)), cars=((20, 70), (50, 70)))  # cars 15 tall, 36 wide: touching
    labels = np.where(labels == 5, PERSON, np.where(labels == 7, CAR, ROAD)).astype(np.uint8)
    labels[2:4, 2:4] = PERSON
    instance_ids, order, counts = components(labels, semantic_cfg())
    assert order == [PERSON * 1000, PERSON * 1000 + 1]
    far, near = (np.argwhere(instance_ids == v)[:, 0].max() for v in order)
    assert far < near  # painter's order: the nearer person (lower bottom row) is numbered last
    assert (instance_ids[labels == CAR] == CAR).all()  # the row of cars: a crowd region
    assert instance_ids[2, 2] == PERSON  # the fragment: a crowd region too
    assert counts == {("person", "single"): 2, ("person", "fragment"): 1, ("car", "group"): 1}


def test_two_people_side_by_side_are_a_group_one_with_an_arm_out_is_not():
    """Two 24-row persons whose bodies touch: two heads on the top outline, a group. One person with a bag
    held out at waist height: one peak, an object."""
    cfg = semantic_cfg()
    pair = np.zeros((24, 14), bool)
    pair[3:, 1:7] = pair[3:, 7:13] = True  # shoulders and bodies, touching
    pair[0:3, 3:5] = pair[0:3, 9:11] = True  # two heads
    single = np.zeros((24, 12), bool)
    single[3:, 3:9] = True
    single[0:3, 5:7] = True
    single[10:16, 9:12] = True  # the bag
    assert top_peaks(pair, 0.12) == 2 and classify_component(pair, PERSON, cfg) == "group"
    assert top_peaks(single, 0.12) == 1 and classify_component(single, PERSON, cfg) == "single"


def test_a_folder_dataset_reads_with_its_class_map(tmp_path):
    root = write_dataset(tmp_path / "ds", {"train": [street(), street(persons=((10, 40), (70, 60)))]})
    ds = SemanticDataset(root, "train", semantic_cfg())
    assert len(ds) == 2 and ds.frame_id(1).stem == "seqA_000000_000001"
    scene = ds[1]
    assert set(np.unique(scene.labels).tolist()) == {ROAD, SIDEWALK, BY_NAME["sky"].id, PERSON, CAR}
    # far to near: the person standing at row 40, the one at row 60, the car at row 64
    assert [i.value for i in scene.instances if not i.iscrowd] == [PERSON * 1000, PERSON * 1000 + 1, CAR * 1000]


def test_a_list_file_dataset_reads_the_same_frames(tmp_path):
    root = write_dataset(tmp_path / "ds", {"train": [street(), street()]}, list_files=True)
    listed = SemanticDataset(root, "train", SemanticConfig(lists={"train": "train.txt"}, classes=dict(CLASSES)))
    folders = SemanticDataset(root, "train", semantic_cfg())
    assert [f.frame for f in listed.frames] == [f.frame for f in folders.frames]
    assert np.array_equal(listed[0].instance_ids, folders[0].instance_ids)


def test_an_unmapped_label_id_names_the_file_and_the_id(tmp_path):
    labels = street()
    labels[0, 0] = 9
    root = write_dataset(tmp_path / "ds", {"train": [labels]})
    with pytest.raises(DatasetError, match=r"trainannot/seqA_0000.png: label id 9 is not in data.semantic.classes"):
        SemanticDataset(root, "train", semantic_cfg())[0]


def test_class_map_names_must_be_pipeline_classes():
    with pytest.raises(ConfigError, match="data.semantic.classes.3: 'pavement' is not a Cityscapes label name"):
        load_from({"data": {"format": "semantic", "semantic": {"classes": {3: "pavement"}}}})
    with pytest.raises(ConfigError, match="data.semantic.classes: a semantic-label dataset needs its class map"):
        load_from({"data": {"format": "semantic"}})


def load_from(raw: dict) -> Config:
    from pipeline.typed_params import from_dict

    return from_dict(Config, raw, "params")


# ------------------------------------------------------------------------ bad inputs at the stage entry


def stage_project(tmp_path: Path, maps: dict[str, list[np.ndarray]]) -> tuple[Path, Path]:
    """A params.yaml reading a made-up semantic dataset, in a working folder of its own."""
    root = write_dataset(tmp_path / "ds", maps)
    work = tmp_path / "work"
    work.mkdir()
    params = {"data": {"root": str(root), "format": "semantic",
                       "semantic": {"images": {s: s for s in maps}, "labels": {s: f"{s}annot" for s in maps},
                                    "classes": CLASSES}},
              "prepare": {"splits": list(maps), "where_size": [64, 48], "what_size": [128, 96], "min_area": 20,
                          "min_height": 6, "min_width": 3},
              "rules": {"learned": True}}
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return root, work


def prepare_stage(work: Path):
    return run_in_process("stages.prepare", cwd=work)


def test_prepare_reads_a_semantic_dataset_learns_its_rules_and_reports_what_it_dropped(tmp_path):
    frames = [street(persons=((4 + 5 * i, 44 + 3 * i), (82, 50 + 2 * i)), cars=((44, 58 + i),)) for i in range(6)]
    frames[0][2:4, 2:4] = 5  # a fragment
    frames[1][52:64, 44:95] = 7  # two cars side by side: a group
    _, work = stage_project(tmp_path, {"train": frames})
    result = prepare_stage(work)
    assert result.returncode == 0, result.stderr
    summary = json.loads((work / "metrics" / "prepare.json").read_text())
    train = summary["splits"]["train"]
    assert train["rejected"]["fragment"] == 1 and train["rejected"]["group"] == 1
    assert train["instances"] == {"person": 12, "car": 5}
    rules = json.loads((work / "data" / "prepared" / "yardstick.json").read_text())
    assert rules["support"] == {"person": ["road", "sidewalk"], "car": ["road"]}
    assert 0 < rules["plane"]["horizon"] < 1 and rules["scale_band"][0] <= 1 <= rules["scale_band"][1]


@pytest.mark.parametrize("case", ["unmapped id", "other size", "missing label", "rgb label", "empty folder"])
def test_bad_semantic_inputs_stop_the_prepare_stage_with_one_line(tmp_path, case):
    root, work = stage_project(tmp_path, {"train": [street(), street()]})
    label = root / "trainannot" / "seqA_0001.png"
    if case == "unmapped id":
        bad = street()
        bad[5, 5] = 42
        cv2.imwrite(str(label), bad)
        path, problem = label, "label id 42 is not in data.semantic.classes"
    elif case == "other size":
        cv2.imwrite(str(label), street(width=80))
        path, problem = label, "size 80x72 differs from the image's 96x72"
    elif case == "missing label":
        label.unlink()
        path, problem = label, "missing label map for seqA_0001.png"
    elif case == "rgb label":
        cv2.imwrite(str(label), np.dstack([street()] * 3))
        path, problem = label, "expected a one-channel image, got 3 channels"
    else:
        shutil.rmtree(root / "train")
        (root / "train").mkdir()
        path, problem = root / "train", "empty dataset: no frames in split 'train'"
    result = prepare_stage(work)
    # The progress bar's line is ended first; the error is the last line, alone, and nothing is left behind.
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr
    assert errors[0].startswith(f"error: {path}: ") and problem in errors[0], errors[0]
    out = work / "data" / "prepared"
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), "half-written output left"


def test_squashing_the_frames_is_refused_with_a_size_that_fits(tmp_path):
    root = write_dataset(tmp_path / "ds", {"train": [street()]})
    scene = SemanticDataset(root, "train", semantic_cfg())[0]
    with pytest.raises(ConfigError, match=r"prepare.where_size: 64x32 would squash the frames \(96x72.*\[64, 48\]"):
        check_aspect(scene, PrepareConfig())
    check_aspect(scene, PrepareConfig(where_size=[64, 48], what_size=[128, 96]))


def test_the_renderer_refuses_to_squash_the_frames_too(tmp_path):
    from pipeline.renderer_training import RenderFrames

    root = write_dataset(tmp_path / "ds", {"train": [street()]})
    cfg = load_from({"data": {"root": str(root), "format": "semantic",
                              "semantic": {"images": {"train": "train"}, "labels": {"train": "trainannot"},
                                           "classes": CLASSES}},
                     "renderer": {"size": [64, 32], "crop": 16, "downs": 2}})
    with pytest.raises(ConfigError, match=r"renderer.size: 64x32 would squash the frames \(96x72.*\[64, 48\]"):
        RenderFrames(cfg)


def test_inspect_and_convert_read_a_semantic_dataset(tmp_path):
    # val's person stands nearer the camera (feet at row 70, 23 px tall) than train's (row 50, 13 px): a shift
    # between the splits that inspect names; the cars are alike.
    root, work = stage_project(tmp_path, {"train": [street(), street()], "val": [street(persons=((20, 70),))]})
    report = run_cli("inspect", root, "--format", "semantic", "--params", work / "params.yaml", "--json", "--quiet")
    assert report.returncode == 0, report.stderr
    info = json.loads(report.stdout)
    assert info["frames"] == {"train": 2, "val": 1} and info["instances"] == {"person": 3, "car": 3}
    by_split = info["instances_by_split"]
    assert by_split["train"]["person"] == {"objects": 2, "median_height_px": 13.0, "median_foot_row": round(50 / 72, 3)}
    assert by_split["val"]["person"]["median_height_px"] == 23.0
    assert by_split["val"]["car"]["median_height_px"] == by_split["train"]["car"]["median_height_px"]
    assert len(info["size_shifts"]) == 1 and info["size_shifts"][0].startswith("val's persons are 1.77x as tall")
    out = tmp_path / "converted"
    result = run_cli("convert", root, out, "--format", "semantic", "--params", work / "params.yaml", "--quiet")
    assert result.returncode == 0, result.stderr
    coco = json.loads((out / "annotations" / "instancesonly_filtered_gtFine_train.json").read_text())
    assert len(coco["images"]) == 2 and {a["category_id"] for a in coco["annotations"]} == {PERSON, CAR}
    assert (out / "gtFine" / "train" / "seqA" / "seqA_000000_000000_gtFine_instanceIds.png").is_file()


# ------------------------------------------------------------------------------------- learned rules


def test_learned_rules_recover_the_plane_the_objects_stand_on():
    """Objects drawn on a known ground plane (horizon 0.4, camera height 2 frame units): the learned plane
    is that one, the support is the labels most objects stand on, and the band holds the central share."""
    rng = np.random.default_rng(0)
    facts = []
    for _ in range(400):
        label_id = int(rng.choice([PERSON, CAR]))
        contact = rng.uniform(0.5, 1.0)
        height = 1.72 if label_id == PERSON else 1.55
        facts.append({"label_id": label_id, "contact": contact, "support": int(rng.choice([ROAD, SIDEWALK])),
                      "height": height * (contact - 0.4) / 2.0 * rng.lognormal(0, 0.1)})
    facts[0]["support"] = BY_NAME["building"].id  # one object in 400: not a support
    ys = learn_yardstick(facts, RulesConfig(learned=True), [PERSON, CAR])
    assert ys.plane == pytest.approx((0.4, 2.0), rel=0.05)
    assert ys.support[PERSON] == ys.support[CAR] == {ROAD, SIDEWALK}
    assert 0.75 < ys.scale_band[0] < 0.9 and 1.1 < ys.scale_band[1] < 1.3  # exp(+-1.96 * 0.1)
    again = Yardstick.from_json(json.loads(json.dumps(ys.to_json())), 0.5)
    assert again == ys


def test_the_rules_are_the_fixed_ones_unless_learned_and_learned_ones_come_from_the_prepare_stages_file(tmp_path):
    """``Yardstick.of``: the fixed thresholds by default; with ``rules.learned`` the prepare stage's file, and
    without that file one line naming it and the stage that writes it."""
    cfg = Config()
    assert Yardstick.of(cfg) == Yardstick.fixed(cfg.rules)
    cfg = dataclasses.replace(cfg, rules=dataclasses.replace(cfg.rules, learned=True),
                              prepare=dataclasses.replace(cfg.prepare, out=str(tmp_path)))
    with pytest.raises(DatasetError, match="dvc repro prepare") as error:
        Yardstick.of(cfg)
    assert str(tmp_path / YARDSTICK_FILE) in str(error.value)
    facts = [{"label_id": PERSON, "contact": c, "support": ROAD, "height": 1.72 * (c - 0.4) / 2.0}
             for c in np.linspace(0.5, 1.0, 50)]
    learned = learn_yardstick(facts, cfg.rules, [PERSON])
    save_yardstick(learned, tmp_path / YARDSTICK_FILE)  # as the prepare stage writes it
    assert Yardstick.of(cfg) == learned != Yardstick.fixed(cfg.rules)


# ---------------------------------------------------------------------------------------- the profile


def test_the_camvid_profile_writes_its_keys_and_keeps_the_comments(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    changed = apply_profile(str(REPO / "profiles" / "camvid.yaml"), params)
    assert {"data.format", "data.semantic.classes", "prepare.where_size", "rules.learned"} <= set(changed)
    text = params.read_text()
    assert "# Parameters of every stage." in text and "# CamVid's Pavement" in text
    cfg = load_config(params)
    assert cfg.data.format == "semantic" and cfg.data.semantic.classes[8] == "car"
    assert cfg.prepare.where_size == [64, 48] and cfg.synthetic.width == 512  # the rest as it was
    assert list(cfg.augment.per_frame) == ["car", "person"]  # a mapping value keeps the profile's order


def test_a_profile_replaces_a_class_map_whole(tmp_path):
    """A class map (any mapping that is not a params section) is one value: ids the profile does not name
    must not survive from the params file."""
    params, profile = tmp_path / "params.yaml", tmp_path / "mine.yaml"
    text = (REPO / "params.yaml").read_text()
    params.write_text(text.replace("    classes: {}", "    classes: {12: car, 13: person}", 1))
    profile.write_text("data:\n  semantic:\n    classes: {0: road, 1: car}\n    label_suffix: _L.png\n")
    changed = apply_profile(str(profile), params)
    assert set(changed) == {"data.semantic.classes", "data.semantic.label_suffix"}
    cfg = load_config(params)
    assert cfg.data.semantic.classes == {0: "road", 1: "car"} and cfg.data.semantic.label_suffix == "_L.png"
    assert cfg.data.semantic.fragment_area == 20  # the section's other keys as they were


def test_a_profile_that_would_break_the_params_leaves_them_as_they_were(tmp_path):
    params, bad = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copy(REPO / "params.yaml", params)
    bad.write_text("prepare:\n  where_size: [60, 45]\n")
    before = params.read_text()
    result = run_cli("profile", bad, "--params", params)
    assert result.returncode == 1 and "prepare.where_size: width and height must be multiples of 8" in result.stderr
    assert params.read_text() == before


# ------------------------------------------------------------------------------------- real CamVid


@pytest.fixture(scope="module")
def camvid() -> Path:
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {CAMVID}")
    return CAMVID


def camvid_config() -> Config:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    profile = yaml.safe_load((REPO / "profiles" / "camvid.yaml").read_text())
    for section, values in profile.items():
        for key, value in values.items():
            if key in ("semantic", "downstream"):  # sections: merged key by key, as apply_profile does
                params[section][key] |= value
            else:  # values (lists, class maps, per_frame): replaced whole
                params[section][key] = value
    params["data"]["root"] = str(CAMVID)
    return load_from(params)


def test_camvid_frames_read_with_the_profiles_class_map(camvid):
    cfg = camvid_config()
    ds = open_dataset(cfg.data, "val", cfg.coco)
    assert len(ds) == 101 and ds.frame_id(0).city == "0016E5"
    scene = ds[0]
    assert scene.size == (360, 480)
    raw = cv2.imread(str(ds.frames[0].label), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(scene.labels == CAR, raw == 8) and np.array_equal(scene.labels == PERSON, raw == 9)
    assert (scene.labels[raw == 11] == 0).all()  # Unlabelled -> ignore
    objects = [i for i in scene.instances if not i.iscrowd]
    assert objects and all(i.label_id in (PERSON, CAR, BY_NAME["rider"].id) for i in objects)
    check_aspect(scene, cfg.prepare)


@pytest.mark.slow
def test_dvc_repro_on_a_handful_of_camvid_frames(camvid, tmp_path):
    """The CamVid profile, tiny networks, six train and two val frames: `dvc repro` runs every stage, the
    downstream experiment too (N = 3, one seed: its arms built on real frames without cameras or instances)."""
    from test_dvc_pipeline import dvc, project_copy, tiny_params
    from test_real_data import finite_numbers

    subset = tmp_path / "camvid"
    for split, n in (("train", 6), ("val", 2)):
        lines = (camvid / f"{split}.txt").read_text().split("\n")[:: 40 if split == "train" else 40][:n]
        (subset / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (subset / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            for name in line.split():
                (subset / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(camvid / name, subset / name)

    def edit(params: dict) -> dict:
        params = tiny_params(params)
        profile = yaml.safe_load((REPO / "profiles" / "camvid.yaml").read_text())
        params["data"].update(profile["data"], root=str(subset))
        params["data"]["semantic"] = {**params["data"]["semantic"], **profile["data"]["semantic"]}
        params["prepare"].update(where_size=[32, 24], what_size=[64, 48], min_area=20, min_height=6, min_width=3)
        params["rules"]["learned"] = True
        params["augment"].update(splits=["train", "val"], min_area=20, keep_min_pixels=10)
        params["renderer"]["size"] = [64, 48]
        params["evaluate"].update(render_frames=0, real_root="")
        params["evaluate"]["downstream"].update(sizes=[3], seeds=[0])
        params["evaluate"]["downstream"]["test_split"] = profile["evaluate"]["downstream"]["test_split"]  # val
        return params

    clone = tmp_path / "clone"
    env = project_copy(clone, edit)
    result = dvc(clone, env, "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    prepared = json.loads((clone / "metrics" / "prepare.json").read_text())
    assert prepared["splits"]["train"]["frames"] == 6 and "yardstick" in prepared
    train = json.loads((clone / "metrics" / "train.json").read_text())
    assert set(train["where_real"]) <= {"person", "car"} and train["where_real"]
    evaluation = json.loads((clone / "metrics" / "evaluate.json").read_text())
    for row in evaluation["placement"].values():
        assert row["raw_where"]["samples"] > 0 and row["random_boxes"]["samples"] > 0
    assert not finite_numbers(evaluation), finite_numbers(evaluation)
    down = evaluation["downstream"]["3"]
    assert down["split"] == "val" and down["test_frames"] == 2 and down["seeds"] == [0]
    assert down["train_frames"] == {"subset": 3, "ours": 9, "copy_paste": 9, "rules": 9}
    assert 0 <= down["metrics"]["segmenter_iou_person"]["ours"]["mean"] <= 1
    assert evaluation["placement_frames"] == {"raw_where": "val", "filtered": ["val"]}
    summary = json.loads((clone / "metrics" / "augment.json").read_text())
    assert set(summary["frames"]["val"]["acceptance_rate"]) <= {"person", "car"}
    coco = json.loads((clone / "data" / "augmented" / "coco" / "annotations" / "instances_val.json").read_text())
    assert len(coco["images"]) == 4  # the two val frames and their augmented versions
    assert (clone / "reports" / "gallery.png").is_file()
    status = dvc(clone, env, "status", timeout=120)
    assert "up to date" in status.stdout, status.stdout
