"""The CUDA path: training steps in bf16 and fp32, and CPU/GPU agreement of the insertion candidates.

Marked ``cuda`` and skipped without a CUDA device; `benchmarks/gpu_check.py` runs them on a GPU machine,
whose image may lack dvclive (logging is not under test here: a stand-in takes its place then).
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


class NullLive:
    """Takes dvclive's calls where dvclive is not installed."""

    step = 0

    def log_metric(self, *args, **kwargs):
        pass

    def log_image(self, *args, **kwargs):
        pass

    def next_step(self):
        pass

    def end(self):
        pass


def dvclive_installed() -> bool:
    # The name alone is not enough: run from the repo root, its dvclive/ folder (the training logs) imports as an
    # empty namespace package where dvclive is not installed (seen on a GPU machine's image).
    try:
        from dvclive import Live  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def logging_without_dvclive():
    if dvclive_installed():
        yield
        return
    import pipeline.renderer_training as renderer_training
    import pipeline.training as training

    saved = training.live_log, renderer_training.live_log
    training.live_log = renderer_training.live_log = lambda directory, resume: NullLive()
    yield
    training.live_log, renderer_training.live_log = saved


@pytest.fixture(scope="module")
def prepared(synthetic_root, tmp_path_factory):
    from test_training import tiny_config

    from pipeline.prepare import prepare

    tmp = tmp_path_factory.mktemp("cuda")
    cfg = tiny_config(synthetic_root, tmp, steps=4)
    prepare(cfg, workers=1, progress=False)
    return cfg


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
def test_gan_training_steps_on_cuda_give_finite_losses(prepared, bf16):
    from pipeline.trained_gan import build_model
    from pipeline.training import training_step
    from pipeline.training_data import PreparedData

    device = torch.device("cuda")
    torch.manual_seed(0)
    gan = build_model(prepared).to(device).to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(gan.generator_parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.discriminator_parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = PreparedData(f"{prepared.prepare.out}/train.npz", device, flip_prob=0.5)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
    for step in range(4):
        batch = data.batch(4, torch.Generator(device=device).manual_seed(step))
        values = training_step(gan, batch, opt_g, opt_d, True, autocast)
        assert {"g_total", "d_total"} <= set(values)
        assert all(math.isfinite(float(v)) for v in values.values()), (step, values)
    assert all(torch.isfinite(p).all() for p in gan.parameters())


def test_the_training_loop_runs_on_cuda(prepared, tmp_path):
    """The stage's own loop (bf16 autocast, channels_last) end to end: finite losses, weights saved."""
    from test_training import at

    from pipeline.trained_gan import load_trained
    from pipeline.training import train

    cfg = at(prepared, tmp_path, device="cuda")
    summary = train(cfg, progress=False)
    assert summary["device"].startswith("cuda") and summary["steps"] == cfg.train.steps
    gan = load_trained(cfg.train.out, cfg, "cuda")
    assert all(torch.isfinite(p).all() for p in gan.parameters())


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
def test_renderer_steps_on_cuda_give_finite_losses(synthetic_root, tmp_path, bf16):
    from test_renderer import tiny_renderer

    from pipeline.renderer_training import RenderFrames, renderer_step
    from pipeline.trained_renderer import build_networks

    cfg = tiny_renderer(synthetic_root, tmp_path)
    rc = cfg.renderer
    device = torch.device("cuda")
    torch.manual_seed(0)
    g, e, d = (m.to(device) if m is not None else None for m in build_networks(rc))
    opt_g = torch.optim.Adam(list(g.parameters()) + list(e.parameters()), lr=rc.lr, betas=tuple(rc.betas))
    opt_d = torch.optim.Adam(d.parameters(), lr=rc.lr, betas=tuple(rc.betas))
    data = RenderFrames(cfg, "train", device)
    for step in range(4):
        gen = torch.Generator().manual_seed(step)
        index = torch.randint(len(data), (2,), generator=gen).to(device)
        with_parts = torch.tensor([True, False], device=device)
        cond, real, ids = data.inputs(index, with_parts, data.windows(index, rc.crop, gen), rc.crop)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            losses = renderer_step(g, e, d, opt_g, opt_d, cond, real, ids, rc)
        losses.pop("fake")
        assert all(math.isfinite(float(v)) for v in losses.values()), (step, losses)


def test_cpu_and_gpu_give_the_same_candidates(trained_tiny, synthetic_root):
    """The same trained model and frame seeds: the same boxes (within a pixel) and shapes (IoU >= 0.98) on
    CPU and GPU. The tolerance covers TF32 convolutions and reordered float sums on the GPU: a shape pixel
    whose probability sits at the 0.5 threshold may flip, a box corner may round the other way."""
    from pipeline.appearance import CropBank
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.insertion import Inserter
    from pipeline.trained_gan import load_trained

    cfg = trained_tiny
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    inserters = {dev: Inserter(load_trained(cfg.augment.model, cfg, dev), bank, cfg, dev) for dev in ("cpu", "cuda")}
    dataset = CityscapesDataset(synthetic_root, ["val"])
    compared = 0
    for i in range(len(dataset)):
        scene = dataset[i]
        found = {dev: ins.propose(scene, seed=1000 + i) for dev, ins in inserters.items()}
        for name, cpu in found["cpu"].items():
            for a, b in zip(cpu, found["cuda"][name], strict=True):
                assert a.inside == b.inside
                assert max(abs(p - q) for p, q in zip(a.box, b.box, strict=True)) <= 1, (a.box, b.box)
                union = (a.shape | b.shape).sum()
                iou = (a.shape & b.shape).sum() / union if union else 1.0
                assert iou >= 0.98, (name, a.draw, iou)
                compared += 1
    assert compared > 0


def test_augment_on_cuda_writes_the_same_objects_as_on_cpu(trained_tiny, tmp_path):
    """The augment stage with ``device: cuda``: same frames, same classes and counts of inserted objects."""
    import json

    from pipeline.augment import augment

    counts = {}
    for dev in ("cpu", "cuda"):
        cfg = dataclasses.replace(trained_tiny, augment=dataclasses.replace(
            trained_tiny.augment, out=str(tmp_path / dev), device=dev, workers=1))
        result = augment(cfg, progress=False)
        assert result["device"].startswith(dev) and result["merged"] and not result["summary"]["errors"]
        manifest = [json.loads(line) for line in (tmp_path / dev / "manifest.jsonl").read_text().splitlines()]
        counts[dev] = sorted((m["source_frame"], m["class"]) for m in manifest)
    assert counts["cpu"] and np.mean([c in counts["cuda"] for c in counts["cpu"]]) >= 0.9
