"""The placement rules (support, scale, overlap) on hand-built scenes with known answers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import labels as lb
from pipeline.rules import (
    check_placement,
    contact_columns,
    contact_row,
    expected_height,
    is_plausible,
    overlap_share,
    pixel_height,
    scale_ratio,
    support_label,
)
from pipeline.scene import Camera

H, W = 256, 512
SKY, BUILDING = lb.BY_NAME["sky"].id, lb.BY_NAME["building"].id
ROAD, SIDEWALK = lb.BY_NAME["road"].id, lb.BY_NAME["sidewalk"].id
PERSON, CAR = lb.PERSON, lb.CAR
# pitch 0: the horizon is v0 = 100.0; the camera is 1.5 m above the ground
CAM = Camera(fx=565.0, fy=565.0, u0=256.0, v0=100.0, height=1.5)


def street() -> np.ndarray:
    """Sky above row 60, buildings down to the horizon (row 100), then sidewalk (left) and road (right)."""
    lab = np.full((H, W), SKY, np.uint8)
    lab[60:100] = BUILDING
    lab[100:, :256] = SIDEWALK
    lab[100:, 256:] = ROAD
    return lab


def box(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[top:bottom + 1, left:right + 1] = True
    return m


def person_at(v_b: int, left: int, scale: float = 1.0, width: int = 20) -> np.ndarray:
    """A box whose lowest row is ``v_b`` and whose height is ``scale`` times the rule's mean person height."""
    h = int(round(scale * expected_height(CAM, PERSON, v_b)))
    return box(v_b - h + 1, v_b, left, left + width - 1)


def test_rows_and_height():
    m = box(40, 90, 3, 9)
    assert contact_row(m) == 90 and pixel_height(m) == 51
    for fn in (contact_row, pixel_height):
        with pytest.raises(ValueError):
            fn(np.zeros((H, W), bool))


def test_expected_height_uses_the_bottom_edge_of_the_contact_row():
    # 1.72 m standing on row 199: the ground line is at 200, 100 rows below the horizon
    assert expected_height(CAM, PERSON, 199) == pytest.approx(1.72 * 100 / 1.5)
    assert expected_height(CAM, PERSON, 199) == pytest.approx(CAM.pixel_height(1.72, 200))


def test_person_on_the_sidewalk_at_the_right_scale_is_plausible():
    lab = street()
    m = person_at(199, 100)
    assert pixel_height(m) == 115  # round(1.72 * 100 / 1.5) = round(114.67)
    assert support_label(lab, m) == SIDEWALK
    assert scale_ratio(m, CAM, PERSON) == pytest.approx(115 / (1.72 * 100 / 1.5))
    assert overlap_share(m, lab) == 0.0
    check = check_placement(lab, m, CAM, PERSON)
    assert check.plausible and check.support_ok and check.scale_ok and check.overlap_ok
    assert is_plausible(lab, m, CAM, PERSON)
    # a person may also stand on the road; a car may not stand on the sidewalk
    assert is_plausible(lab, person_at(199, 300), CAM, PERSON)
    car = box(199 - 103 + 1, 199, 100, 170)  # 1.55 m car: 103 rows
    assert not is_plausible(lab, car, CAM, CAR)
    assert check_placement(lab, car, CAM, CAR).support == SIDEWALK
    assert is_plausible(lab, box(199 - 103 + 1, 199, 300, 370), CAM, CAR)


def test_the_same_mask_in_the_sky_is_not():
    lab = street()
    m = box(5, 40, 100, 119)  # wholly above the horizon
    check = check_placement(lab, m, CAM, PERSON)
    assert check.support == SKY and not check.support_ok
    assert math.isnan(check.scale) and not check.scale_ok
    assert not check.plausible and not is_plausible(lab, m, CAM, PERSON)


def test_standing_on_the_horizon_has_no_scale():
    m = box(90, 100, 10, 12)  # contact row 100 == v_h: not below the horizon
    assert math.isnan(scale_ratio(m, CAM, PERSON))
    assert not math.isnan(scale_ratio(box(90, 101, 10, 12), CAM, PERSON))


def test_on_top_of_a_car_the_overlap_is_too_high():
    lab = street()
    lab[120:200, 80:140] = CAR
    m = person_at(199, 100)  # rows 85..199, columns 100..119
    share = overlap_share(m, lab)
    assert share == pytest.approx(80 / 115)
    check = check_placement(lab, m, CAM, PERSON)
    assert not check.overlap_ok and not check.plausible
    assert check.support == SIDEWALK and check.scale_ok  # the other two rules still pass
    # a looser threshold lets it through
    assert is_plausible(lab, m, CAM, PERSON, max_overlap=0.8)
    # a small overlap with a person is fine
    lab2 = street()
    lab2[100:120, 110:130] = PERSON
    assert overlap_share(m, lab2) == pytest.approx(200 / (115 * 20))
    assert is_plausible(lab2, m, CAM, PERSON)


@pytest.mark.parametrize("scale", [0.5, 0.7, 1.4, 2.0])
def test_wrong_scale_is_not_plausible(scale):
    lab = street()
    m = person_at(150, 100, scale=scale)
    ratio = scale_ratio(m, CAM, PERSON)
    assert ratio == pytest.approx(scale, abs=0.01)
    check = check_placement(lab, m, CAM, PERSON)
    assert check.support_ok and check.overlap_ok and not check.scale_ok
    assert not is_plausible(lab, m, CAM, PERSON)
    assert is_plausible(lab, m, CAM, PERSON, scale_band=(scale - 0.05, scale + 0.05))


def test_support_of_an_object_already_painted_into_the_labels():
    lab = street()
    m = person_at(199, 100)
    lab[m] = PERSON
    assert support_label(lab, m) == SIDEWALK


def test_support_ignores_other_objects_unless_nothing_else_is_there():
    lab = street()
    m = person_at(150, 100)
    lab[151:153, 100:112] = PERSON  # another person's head right under 12 of the 20 feet columns
    assert support_label(lab, m) == SIDEWALK
    lab[151:153, 100:120] = CAR  # only a car under the feet
    assert support_label(lab, m) == CAR


def test_support_when_the_band_leaves_the_image():
    lab = street()
    m = box(150, H - 1, 300, 320)  # touches the bottom border: no band below
    assert support_label(lab, m) == ROAD  # from the labels under its own bottom row
    lab[m] = CAR
    assert support_label(lab, m) == 0  # only the object itself there: unlabeled


def test_support_uses_the_contact_columns_only():
    """A hand hanging beside the body (over a building) does not vote; with tolerance=None every column does."""
    lab = street()
    lab[100:, :] = SIDEWALK
    lab[60:140, :] = BUILDING  # a facade down to row 139 behind the person
    m = box(60, 139, 100, 104)  # legs: 5 columns down to row 139... standing on row 139
    m[60:139, 105:125] = False
    m[60:110, 105:125] = True  # a wide arm/bag reaching only row 109
    cols, bottoms = contact_columns(m)
    assert cols.tolist() == list(range(100, 105)) and (bottoms == 139).all()
    assert support_label(lab, m) == SIDEWALK
    assert support_label(lab, m, tolerance=None) == BUILDING
    assert len(contact_columns(m, None)[0]) == 25


def test_ties_go_to_the_smaller_label_id():
    lab = street()
    m = box(120, 150, 246, 265)  # 10 columns over sidewalk, 10 over road
    assert support_label(lab, m) == min(ROAD, SIDEWALK)


def test_empty_mask_and_unknown_class():
    lab = street()
    empty = np.zeros((H, W), bool)
    check = check_placement(lab, empty, CAM, PERSON)
    assert not (check.support_ok or check.scale_ok or check.overlap_ok or check.plausible)
    assert overlap_share(empty, lab) == 0.0
    with pytest.raises(ValueError):
        check_placement(lab, person_at(199, 100), CAM, BUILDING)


def test_masks_may_be_uint8():
    lab = street()
    m = person_at(199, 100).astype(np.uint8)
    assert is_plausible(lab, m, CAM, PERSON)
    assert support_label(lab, m) == SIDEWALK


@settings(max_examples=60, deadline=None)
@given(v_b=st.integers(101, H - 3), left=st.integers(0, 400), scale=st.floats(0.3, 3.0),
       z=st.floats(1.0, 2.0), pitch=st.floats(-0.08, 0.08))
def test_scale_ratio_is_height_over_the_rule(v_b, left, scale, z, pitch):
    cam = Camera(fx=565.0, fy=565.0, u0=256.0, v0=128.0, height=z, pitch=pitch)
    want = lb.MEAN_HEIGHT_M[PERSON] * (v_b + 1 - cam.horizon_row) / z
    h = max(1, min(v_b + 1, int(round(scale * want)))) if want > 0 else 1
    m = box(v_b - h + 1, v_b, left, left + 9)
    ratio = scale_ratio(m, cam, PERSON)
    if v_b <= cam.horizon_row:
        assert math.isnan(ratio)
    else:
        assert ratio == pytest.approx(h / want)
        lab = street()
        check = check_placement(lab, m, cam, PERSON)
        assert check.scale_ok == (0.75 <= ratio <= 1.33)
        assert check.plausible == (check.support_ok and check.scale_ok and check.overlap_ok)
