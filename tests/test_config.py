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
    ({"data": {"format": "voc"}}, "data.format: expected 'cityscapes' or 'coco'"),
    ({"data": {"format": "coco"}}, "data.coco_annotations"),
    ({"seed": True}, "seed: expected int"),
    ({"prepare": {"where_size": [60, 30]}}, r"prepare.where_size: expected \[8 \* 2\*\*k, 4 \* 2\*\*k\]"),
    ({"prepare": {"classes": ["sky"]}}, "prepare.classes: 'sky' is not a Cityscapes class with instances"),
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
