import numpy as np

from pipeline import labels


def test_table_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels as official

    ours = {(label.name, label.id, label.train_id, label.category, label.has_instances, label.ignore_in_eval,
             label.color) for label in labels.LABELS}
    theirs = {(label.name, label.id, label.trainId, label.category, label.hasInstances, label.ignoreInEval,
               tuple(label.color)) for label in official}
    assert ours == theirs


def test_luts_and_decoding():
    assert labels.color_lut()[26].tolist() == [0, 0, 142]
    assert labels.train_id_lut()[24] == 11 and labels.train_id_lut()[9] == 255
    assert labels.label_of(26003) == 26 and labels.label_of(24) == 24
    assert labels.INSTANCE_IDS == frozenset(range(24, 34))
    assert set(labels.VALID_IDS.tolist()) == set(range(34)) and labels.VALID_IDS.dtype == np.int64
