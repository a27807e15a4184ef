"""Pasting a crop into a scene (pipeline/appearance/paste.py): each blend changes only the visible pixels, and
puts the object where its box is."""

import numpy as np
import pytest

from pipeline.appearance.paste import GAIN_RANGE, harmonized, paste

BOX = (12, 6, 20, 20)  # x, y, w, h


def scene_and_crop() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured grey scene, a 20 x 20 crop with one bright vertical bar (columns 8-11), and a visible mask
    that leaves the box's two outer pixels hidden."""
    rng = np.random.default_rng(0)
    image = (100 + rng.integers(-5, 6, (40, 48, 3))).astype(np.uint8)
    crop = np.full((20, 20, 3), 90, np.uint8)
    crop[:, 8:12] = 230
    visible = np.zeros((40, 48), bool)
    x, y, w, h = BOX
    visible[y + 2 : y + h - 2, x + 2 : x + w - 2] = True
    return image, crop, visible


@pytest.mark.parametrize("blend", ["none", "gaussian", "poisson"])
def test_each_blend_changes_only_the_visible_pixels_and_puts_the_object_in_its_box(blend):
    image, crop, visible = scene_and_crop()
    out = paste(image, crop, BOX, visible, blend=blend, feather=1.0)
    assert out is not image and np.array_equal(image, scene_and_crop()[0])  # a new image; the input kept
    assert np.array_equal(out[~visible], image[~visible])
    assert not np.array_equal(out[visible], image[visible])
    # The bar lands on the box's columns 8-11 (scene columns 20-23), not a pixel off: the brightest columns
    # of the visible rows.
    x, y, w, h = BOX
    columns = out[y + 2 : y + h - 2, x : x + w].astype(float).mean((0, 2))
    assert set(np.argsort(columns)[-4:]) == {8, 9, 10, 11}, (blend, columns.round(1))


def test_nothing_visible_leaves_the_scene_as_it_was_and_an_unknown_blend_is_refused():
    image, crop, visible = scene_and_crop()
    assert np.array_equal(paste(image, crop, BOX, np.zeros_like(visible)), image)
    with pytest.raises(ValueError, match="blend"):
        paste(image, crop, BOX, visible, blend="alpha")


def test_harmonizing_moves_the_crop_toward_the_new_light_within_the_gain_range():
    crop = np.full((4, 4, 3), 100, np.uint8)
    assert np.array_equal(harmonized(crop, np.full(3, 100.0), np.full(3, 200.0), 0.0), crop)  # strength 0: as is
    half = harmonized(crop, np.full(3, 100.0), np.full(3, 130.0), 0.5)
    assert 100 < half[0, 0, 0] < 130  # partway toward a scene 1.3x as bright
    clipped = harmonized(crop, np.full(3, 100.0), np.full(3, 250.0), 1.0)
    assert clipped[0, 0, 0] == round(100 * GAIN_RANGE[1])  # 2.5x asked, the gain range's top given
