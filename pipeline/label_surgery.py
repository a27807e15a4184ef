"""Edits of a scene's label maps that keep them consistent.

``remove_object``: take a real object out of a label map, filling its pixels from the surrounding
stuff - the insertion GAN's supervised path must not see the object it is asked to place.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.labels import INSTANCE_IDS

_IS_THING = np.zeros(256, dtype=bool)
_IS_THING[list(INSTANCE_IDS)] = True


def remove_object(labels: np.ndarray, instance_ids: np.ndarray, value: int) -> tuple[np.ndarray, np.ndarray]:
    """Label and instance maps with object ``value`` replaced by the nearest stuff around it.

    Each pixel of the object takes the label of the nearest pixel that belongs to no object (a
    neighbouring person or car is not smeared into the hole). With no stuff at all in the map the
    object becomes ``unlabeled``.
    """
    mask = instance_ids == value
    if not mask.any():
        return labels, instance_ids
    stuff = ~_IS_THING[labels] & ~mask
    labels = labels.copy()
    if stuff.any():
        _, (iy, ix) = ndimage.distance_transform_edt(~stuff, return_indices=True)
        labels[mask] = labels[iy[mask], ix[mask]]
    else:
        labels[mask] = 0
    instance_ids = instance_ids.copy()
    instance_ids[mask] = labels[mask]  # stuff pixels store their plain label id
    return labels, instance_ids

