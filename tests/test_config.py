import pytest
from conftest import REPO

from pipeline.config import Config, SyntheticConfig, from_dict, load_config
from pipeline.errors import ConfigError


def test_project_params_load_and_match_the_defaults():
    cfg = load_config(REPO / "params.yaml")
    assert cfg == Config(), "params.yaml and the dataclass defaults disagree: keep them in step"


@pytest.mark.parametrize("raw, message", [
    ({"synthetic": {"width": "wide"}}, "params.yaml: synthetic.width: expected int, got 'wide'"),
    ({"synthetic": {"wdth": 3}}, "params.yaml: synthetic: unknown key 'wdth'"),
    ({"synthetic": {"splits": {"train": -1}}}, "synthetic.splits: frame counts must be >= 0"),
    ({"synthetic": {"persons_per_frame": [5, 2]}}, "synthetic.persons_per_frame"),
    ({"synthetic": {"decoys_per_frame": [3, 1]}}, "synthetic.decoys_per_frame"),
    ({"evaluate": {"downstream": {"class_weights": {"persn": 2.0}}}}, "evaluate.downstream.class_weights"),
    ({"evaluate": {"downstream": {"class_weights": {"person": 0.0}}}}, "evaluate.downstream.class_weights.person"),
    ({"data": {"format": "voc"}}, "data.format: expected 'cityscapes', 'coco' or 'semantic'"),
    ({"data": {"format": "coco"}}, "data.coco_annotations"),
    ({"seed": True}, "seed: expected int"),
    ({"prepare": {"where_size": [60, 30]}}, r"prepare.where_size: width and height must be multiples of 8"),
    ({"prepare": {"classes": ["sky"]}}, "prepare.classes: 'sky' is not a Cityscapes class with instances"),
    # ranges, choices and lengths: each refusal names the key
    ({"train": {"steps": -5}}, "params.yaml: train.steps: expected >= 1, got -5"),
    ({"train": {"batch_size": 0}}, "params.yaml: train.batch_size: expected >= 1, got 0"),
    ({"train": {"device": "tpu"}}, "params.yaml: train.device: expected one of auto, cpu, cuda, got 'tpu'"),
    ({"train": {"lr": 0}}, "params.yaml: train.lr: expected > 0, got 0"),
    ({"train": {"betas": [0.5]}}, "params.yaml: train.betas: expected 2 values, got 1"),
    ({"train": {"min_scale": {"person": 0.02, "car": 1.5}}}, "train.min_scale: expected <= 1, got 1.5"),
    ({"train": {"min_scale": {"person": 0.02}}}, "params.yaml: train.min_scale: no value for class 'car'"),
    ({"train": {"losses": {"kl": -1}}}, "params.yaml: train.losses.kl: expected >= 0, got -1"),
    ({"augment": {"scale_band": [0.75]}}, "params.yaml: augment.scale_band: expected 2 values, got 1"),
    ({"augment": {"max_overlap": 1.5}}, r"augment.max_overlap: expected a value in \[0, 1\], got 1.5"),
    ({"augment": {"device": "gpu"}}, "augment.device: expected one of auto, cpu, cuda"),
    ({"prepare": {"where_size": [64, 32, 16]}}, "params.yaml: prepare.where_size: expected 2 values, got 3"),
    ({"evaluate": {"downstream": {"size": [256]}}}, "params.yaml: evaluate.downstream.size: expected 2 values"),
    ({"evaluate": {"downstream": {"widths": [16, 0]}}}, "evaluate.downstream.widths: expected >= 1, got 0"),
    ({"evaluate": {"downstream": {"seeds": [0, 0]}}}, r"evaluate.downstream.seeds: at least one seed, each once"),
    ({"evaluate": {"downstream": {"seeds": []}}}, r"evaluate.downstream.seeds: at least one seed"),
    ({"evaluate": {"downstream": {"sizes": [0]}}}, "evaluate.downstream.sizes: expected >= 1, got 0"),
    ({"evaluate": {"downstream": {"copies": 0}}}, "evaluate.downstream.copies: expected >= 1, got 0"),
    ({"evaluate": {"downstream": {"per_frame": {"persn": 2}}}}, "evaluate.downstream.per_frame: 'persn' is not"),
    ({"evaluate": {"downstream": {"per_frame": {"car": -1}}}}, "evaluate.downstream.per_frame.car: expected >= 0"),
    ({"evaluate": {"downstream": {"detector": {"widths": [8, 16]}}}}, r"downstream.detector.widths: at least 3"),
    ({"evaluate": {"downstream": {"detector": {"min_size": 512}}}}, r"downstream.detector.min_size: 512 is"),
    ({"renderer": {"size": [256, 0]}}, "params.yaml: renderer.size: expected >= 1, got 0"),
    ({"renderer": {"part_net": {"source": "web"}}}, "renderer.part_net.source: expected auto, data or builtin"),
    ({"synthetic": {"cars_per_frame": [1]}}, "params.yaml: synthetic.cars_per_frame: expected 2 values, got 1"),
    ({"model": {"z_what": 0}}, "params.yaml: model.z_what: expected >= 1, got 0"),
])
def test_bad_values_are_refused_with_the_key_named(raw, message):
    with pytest.raises(ConfigError, match=message if "\\" in message else message.replace("[", r"\[")):
        from_dict(Config, raw, "params.yaml")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("synthetic: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_ints_are_accepted_for_floats():
    cfg = from_dict(SyntheticConfig, {"crosswalk_prob": 0}, "x")
    assert isinstance(cfg.crosswalk_prob, float)
