"""The pix2pixHD-style renderer's networks and losses, and the part network (iPOSE spirit)."""

import pytest
import torch

from pipeline.models.part_net import N_PARTS, PartNet, class_part_mask, part_loss
from pipeline.models.renderer import (
    FeatureEncoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    feature_matching_loss,
    instance_average,
    lsgan_loss,
)


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize("size", [(32, 64), (64, 128)])
def test_generator_and_enhancer_shapes(size, upsample):
    g = GlobalGenerator(in_ch=31, width=8, downs=3, blocks=2, upsample=upsample)
    x = torch.rand(2, 31, *size)
    out = g(x)
    assert out.shape == (2, 3, *size) and out.abs().max() <= 1
    local = LocalEnhancer(31, g, width=4, blocks=1)
    assert local(x).shape == (2, 3, *size)


def test_multiscale_discriminator_features_and_lsgan():
    d = MultiscaleDiscriminator(in_ch=34, num_d=2, width=8, n_layers=3)
    outs = d(torch.rand(2, 34, 64, 128))
    assert len(outs) == 2 and all(len(feats) == 5 for feats in outs)
    assert outs[0][-1].shape[1] == 1
    assert outs[1][-1].shape[-1] < outs[0][-1].shape[-1]  # the second sees half the resolution
    ones = [[torch.ones(1, 1, 4, 4)]]
    assert lsgan_loss(ones, real=True).item() == 0 and lsgan_loss(ones, real=False).item() == 1


def test_feature_matching_is_zero_for_identical_inputs_and_positive_otherwise():
    d = MultiscaleDiscriminator(in_ch=6, num_d=2, width=8)
    x = torch.rand(2, 6, 32, 64)
    assert feature_matching_loss(d(x), d(x)).item() == 0
    assert feature_matching_loss(d(x), d(x + 0.5)).item() > 0


def test_instance_pooling_gives_one_feature_per_instance():
    ids = torch.zeros(2, 8, 8, dtype=torch.int32)
    ids[0, :4] = 26000
    ids[0, 4:] = 7
    ids[1, :, :3] = 24000
    ids[1, :, 3:] = 26000  # the same id in another image is another instance
    feats = torch.rand(2, 3, 8, 8)
    pooled = instance_average(feats, ids)
    for b in range(2):
        for value in ids[b].unique():
            region = ids[b] == value
            vals = pooled[b][:, region]
            assert torch.allclose(vals, vals[:, :1].expand_as(vals))
            assert torch.allclose(vals[:, 0], feats[b][:, region].mean(1), atol=1e-6)
    enc = FeatureEncoder(out_ch=3, width=4, downs=2)
    out = enc(torch.rand(2, 3, 8, 8), ids)
    assert out.shape == (2, 3, 8, 8)
    assert len({tuple(out[0, :, i, j].tolist()) for i in range(8) for j in range(8)}) == 2


def test_part_network_output_covers_exactly_the_object_mask():
    net = PartNet(["person", "car"], widths=(8, 16))
    mask = torch.zeros(3, 1, 32, 32)
    mask[0, 0, 4:28, 10:22] = 1
    mask[1, 0, 10:30, 2:30] = 1  # a car
    cls = torch.tensor([0, 1, 0])  # the third is empty
    parts = net.part_map(mask, cls)
    assert parts.shape == (3, 32, 32)
    assert ((parts > 0) == (mask[:, 0] > 0)).all()
    allowed = class_part_mask(["person", "car"])
    for b in range(2):
        used = parts[b][parts[b] > 0].long().unique() - 1
        assert allowed[cls[b], used].all()  # only the class's own parts


def test_part_loss_learns_a_split_shape():
    torch.manual_seed(0)
    net = PartNet(["person", "car"], widths=(8, 16))
    mask = torch.zeros(4, 1, 16, 16)
    mask[:, 0, 2:14, 4:12] = 1
    parts = torch.zeros(4, 16, 16, dtype=torch.uint8)
    parts[:, 2:6, 4:12] = 1  # head on top
    parts[:, 6:14, 4:12] = 4  # legs below
    cls = torch.zeros(4, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        loss = part_loss(net(mask, cls), parts, mask)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2
    assert (net.part_map(mask, cls) == parts).float().mean() > 0.9
    assert N_PARTS == 8


# ------------------------------------------------------------------------------------------ training
def tiny_renderer(root, tmp, steps=4):
    from pipeline.config import Config, DataConfig, PartNetConfig, RendererConfig

    return Config(data=DataConfig(root=str(root)), renderer=RendererConfig(
        out=str(tmp / "renderer"), checkpoint_dir=str(tmp / "ckpt"), log_dir=str(tmp / "live"), size=[64, 32],
        width=4, downs=2, blocks=1, num_d=2, d_width=4, feature_channels=3, clusters=2, crop=16, steps=steps,
        checkpoint_every=2, log_every=2, device="cpu",
        part_net=PartNetConfig(size=16, widths=[4, 8], steps=20, batch_size=8)))


def test_training_windows_lie_inside_the_frame_around_an_object(synthetic_root, tmp_path):
    from pipeline.labels import INSTANCE_FACTOR, TARGET_CLASSES
    from pipeline.renderer_training import RenderFrames

    cfg = tiny_renderer(synthetic_root, tmp_path)
    data = RenderFrames(cfg)
    gen = torch.Generator().manual_seed(0)
    index = torch.arange(len(data))
    crop = cfg.renderer.crop
    windows = data.windows(index, crop, gen)
    assert windows == data.windows(index, crop, torch.Generator().manual_seed(0))  # seeded: resumable
    cond, real, ids = data.inputs(index, torch.ones(len(data), dtype=torch.bool), windows, crop)
    assert cond.shape[-2:] == real.shape[-2:] == ids.shape[-2:] == (crop, crop)
    h, w = data.labels.shape[1:]
    with_objects = 0
    for i, (y, x) in enumerate(windows):
        assert 0 <= y <= h - crop and 0 <= x <= w - crop
        assert torch.equal(ids[i], data.ids[i, y : y + crop, x : x + crop])
        if len(data.objects[i]):
            with_objects += 1
            labels = ids[i][ids[i] >= INSTANCE_FACTOR] // INSTANCE_FACTOR
            assert any(int(v) in TARGET_CLASSES for v in labels.unique())  # the chosen object is in view
    assert with_objects > 0


def test_renderer_trains_resumes_and_loads(synthetic_root, tmp_path):
    from safetensors.torch import load_file

    from pipeline.renderer_training import train_renderer
    from pipeline.trained_renderer import load_renderer

    cfg = tiny_renderer(synthetic_root, tmp_path / "a")
    summary = train_renderer(cfg, progress=False)
    assert summary["steps"] == 4 and summary["resumed_from"] == 0
    r = load_renderer(cfg.renderer.out, cfg)
    assert set(r.styles) == {24, 26} and r.styles[24].shape == (2, 3)
    # Stopped after 2 steps and restarted: it continues from the checkpoint and ends with the same weights.
    cfg_b = tiny_renderer(synthetic_root, tmp_path / "b")
    assert train_renderer(cfg_b, progress=False, stop_after=2)["steps"] == 2
    assert train_renderer(cfg_b, progress=False)["resumed_from"] == 2
    a = load_file(tmp_path / "a" / "renderer" / "generator.safetensors")
    b = load_file(tmp_path / "b" / "renderer" / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Weights trained under other params are refused with the key named.
    import dataclasses

    other = dataclasses.replace(cfg, renderer=dataclasses.replace(cfg.renderer, width=8))
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="width"):
        load_renderer(cfg.renderer.out, other)


def test_part_net_trains_on_the_synthetic_parts(synthetic_root, tmp_path):
    from pipeline.models.part_net import object_square
    from pipeline.part_training import part_examples, train_part_net

    cfg = tiny_renderer(synthetic_root, tmp_path)
    masks, parts, classes = part_examples(cfg.data, cfg.coco, "train", cfg.renderer.part_net.size)
    assert masks.shape[1:] == (1, 16, 16) and ((parts > 0) <= (masks[:, 0] > 0)).all()
    assert set(classes.tolist()) == {0, 1}
    net, metrics = train_part_net(cfg, progress=False)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["val_objects"] > 0
    import numpy as np

    m = np.zeros((20, 30), bool)
    m[2:18, 25:30] = True  # a tall object at the right border: the square is padded, not shifted
    sq_m, sq_p = object_square(m, np.where(m, 3, 0).astype(np.uint8), 16)
    assert sq_m.sum() > 0 and set(np.unique(sq_p)) <= {0, 3}


@pytest.mark.parametrize("mode", ["gan", "gan+parts"])
def test_learned_appearance_changes_only_the_inserted_pixels(synthetic_root, tmp_path, mode):
    import numpy as np

    from pipeline.appearance.learned import LearnedAppearance
    from pipeline.datasets import open_dataset
    from pipeline.label_surgery import insert_object
    from pipeline.part_training import train_part_net
    from pipeline.renderer_training import train_renderer
    from pipeline.trained_renderer import load_renderer

    cfg = tiny_renderer(synthetic_root, tmp_path, steps=2)
    train_renderer(cfg, progress=False)
    net, _ = train_part_net(cfg, progress=False)
    scene = open_dataset(cfg.data, "train")[1]
    before_image, before_parts = scene.image.copy(), scene.parts.copy()
    mask = np.zeros(scene.size, bool)
    mask[150:230, 300:330] = True
    done = insert_object(scene, mask, 24, meta={"insert_id": 0})
    assert done is not None
    look = LearnedAppearance(load_renderer(cfg.renderer.out, cfg), net, cfg.renderer.size, mode,
                             part_size=cfg.renderer.part_net.size)
    look.apply(scene, [done.value], np.random.default_rng(0))
    visible = done.visible
    assert (scene.image[~visible] == before_image[~visible]).all()
    assert (scene.image[visible] != before_image[visible]).any()
    if mode == "gan+parts":
        assert (scene.parts[visible] > 0).all() and (scene.parts[visible] <= 4).all()  # person parts only
        assert (scene.parts[~visible] == before_parts[~visible]).all()


def test_augment_with_the_learned_renderer(trained_tiny, tmp_path):
    import dataclasses
    import json

    import numpy as np
    from official import coco_self_ap

    from pipeline.augment import augment
    from pipeline.renderer_training import train_renderer_stage

    tiny = tiny_renderer(trained_tiny.data.root, tmp_path)
    look = dataclasses.replace(trained_tiny.augment.appearance, mode="gan+parts", renderer=tiny.renderer.out)
    cfg = dataclasses.replace(trained_tiny, renderer=tiny.renderer, augment=dataclasses.replace(
        trained_tiny.augment, out=str(tmp_path / "aug"), appearance=look))
    metrics = train_renderer_stage(cfg, tmp_path / "renderer.json")
    assert 0 <= metrics["part_net"]["accuracy"] <= 1
    result = augment(cfg, progress=False)
    assert result["merged"] and not result["summary"]["errors"]
    lines = [json.loads(x) for x in (tmp_path / "aug" / "manifest.jsonl").read_text().splitlines()]
    assert lines and all(m["render"] == "gan+parts" and m["crop"] is None for m in lines)
    assert coco_self_ap(tmp_path / "aug" / "coco" / "annotations" / "instances_train.json") == {"segm": 1.0,
                                                                                               "bbox": 1.0}
    # Inserted objects now carry part ids in partIds.
    import cv2

    m = lines[0]
    stem = m["file_name"].split("/")[-1].replace("_leftImg8bit.png", "")
    city = m["file_name"].split("/")[0]
    parts = cv2.imread(str(tmp_path / "aug" / "cityscapes" / "gtFine" / "train" / city / f"{stem}_gtFine_partIds.png"),
                       cv2.IMREAD_UNCHANGED)
    ids = cv2.imread(str(tmp_path / "aug" / "cityscapes" / "gtFine" / "train" / city /
                         f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    assert (parts[ids == m["instance_id"]] > 0).all()
    assert np.isin(parts[ids == m["instance_id"]], [1, 2, 3, 4] if m["class"] == "person" else [5, 6, 7, 8]).all()


def test_render_modes_are_scored_side_by_side(trained_tiny, tmp_path):
    import dataclasses

    from pipeline.config import DownstreamConfig
    from pipeline.datasets import open_dataset
    from pipeline.evaluation.downstream import shrink, train_segmenter
    from pipeline.evaluation.render_quality import MODES, evaluate_render_modes
    from pipeline.renderer_training import train_renderer_stage
    from pipeline.trained_gan import load_trained

    tiny = tiny_renderer(trained_tiny.data.root, tmp_path)
    look = dataclasses.replace(trained_tiny.augment.appearance, renderer=tiny.renderer.out)
    cfg = dataclasses.replace(trained_tiny, renderer=tiny.renderer,
                              augment=dataclasses.replace(trained_tiny.augment, appearance=look))
    cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(
        cfg.evaluate, downstream=DownstreamConfig(size=[128, 64], widths=[8, 16], crop=0, steps=5, batch_size=2)))
    train_renderer_stage(cfg, tmp_path / "renderer.json")
    frames = [shrink(open_dataset(cfg.data, "train")[i], (128, 64)) for i in range(3)]
    seg, _ = train_segmenter(frames, cfg.evaluate.downstream, 0, torch.device("cpu"), progress=False)
    gan = load_trained(cfg.train.out, cfg)
    result, rows = evaluate_render_modes(cfg, gan, seg, torch.device("cpu"), frames=2, gallery_frames=1)
    assert result["frames"] == 2
    for mode in MODES:
        assert 0 <= result[mode]["inserted_accuracy"] <= 1 and 0 <= result[mode]["miou"] <= 1
    assert 0 <= result["part_net"]["accuracy"] <= 1
    assert len(rows) == 1 and len(rows[0][1]) == 3


def test_styles_from_whole_frames_when_training_on_whole_frames(synthetic_root, tmp_path):
    import dataclasses

    from pipeline.renderer_training import train_renderer
    from pipeline.trained_renderer import load_renderer

    cfg = tiny_renderer(synthetic_root, tmp_path, steps=2)
    cfg = dataclasses.replace(cfg, renderer=dataclasses.replace(cfg.renderer, crop=0))
    train_renderer(cfg, progress=False)
    r = load_renderer(cfg.renderer.out, cfg)
    assert set(r.styles) == {24, 26} and r.styles[24].shape == (2, 3)


def test_renderer_params_are_checked():
    from pipeline.config import RendererConfig
    from pipeline.errors import ConfigError

    for bad in ({"crop": -8}, {"crop": 60}, {"crop": 256}, {"reconstruction": -1.0}, {"upsample": "bicubic"}):
        with pytest.raises(ConfigError):
            RendererConfig(**bad).validate("renderer")
    RendererConfig(crop=0).validate("renderer")
