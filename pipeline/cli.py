"""The ``ctxaug`` command line: every stage, and one-shot commands for datasets outside DVC.

Errors in the input (a bad file, a bad param) are printed as one line, ``error: <file>: <problem>``,
with exit status 1 and no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.config import Config, load_config
from pipeline.errors import PipelineError


def _config(params: str) -> Config:
    return load_config(params) if Path(params).exists() or params != "params.yaml" else Config()


def _datasets(root: str, fmt: str, annotations: tuple[str, ...], splits: tuple[str, ...], cfg: Config):
    """split -> dataset for the reader commands."""
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.datasets.coco import CocoDataset
    from pipeline.datasets.semantic import SemanticDataset

    coco = cfg.coco
    if fmt == "semantic":
        s = cfg.data.semantic
        if not s.classes:
            raise click.UsageError("--format semantic reads data.semantic (class map, folders) from --params")
        known = list(dict.fromkeys([*s.lists, *s.images]))
        return {split: SemanticDataset(root, split, s) for split in (splits or known)}

    if fmt == "coco":
        if not annotations:
            raise click.UsageError("--format coco needs --annotations SPLIT=FILE (one per split)")
        pairs = []
        for item in annotations:
            split, sep, path = item.partition("=")
            if not sep:
                split, path = "train", item
            pairs.append((split, path))
        return {split: CocoDataset(root, path, split, coco) for split, path in pairs}
    probe = CityscapesDataset(root, list(splits) or None)
    return {split: CityscapesDataset(root, [split]) for split in probe.splits
            if any(f.split == split for f in probe.frames)}


_dataset_options = [
    click.argument("root", type=click.Path(exists=True, file_okay=False)),
    click.option("--format", "fmt", type=click.Choice(["cityscapes", "coco", "semantic"]), default="cityscapes",
                 show_default=True, help="Layout of ROOT: a Cityscapes tree, the image folder of a COCO dataset, or a "
                 "semantic-label dataset (image + label-map folders; folders and class map from --params "
                 "data.semantic, e.g. a params file with profiles/camvid.yaml applied)."),
    click.option("--annotations", multiple=True, metavar="SPLIT=FILE",
                 help="COCO instances json for a split (repeatable); with --format coco."),
    click.option("--split", "splits", multiple=True, help="Only these splits (Cityscapes, semantic; repeatable)."),
    click.option("--params", default="params.yaml", show_default=True,
                 help="params.yaml whose 'coco' section maps COCO categories onto classes, and whose "
                 "'data.semantic' section describes a semantic-label dataset."),
]


def dataset_options(func):
    for option in reversed(_dataset_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ctxaug")
def cli() -> None:
    """Context-aware augmentation of street-scene segmentation datasets.

    Learns from a dataset's own label maps where a person or car can stand and what shape it has
    there, inserts new instances, and writes the augmented dataset in Cityscapes and COCO format.
    The stages run under DVC (`dvc repro`); each is also a command here.
    """


@cli.command()
@click.option("--params", default="params.yaml", show_default=True, help="Parameters file (section 'synthetic').")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: synthetic.out).")
@click.option("--workers", type=int, help="Processes (default: synthetic.workers; 0 = one per core).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synthesize(params: str, out: str | None, workers: int | None, quiet: bool) -> None:
    """Generate the built-in synthetic street-scene dataset (a Cityscapes tree).

    Deterministic: the same params give byte-identical files, whatever the number of workers. The
    folder is replaced only once every frame is written.
    """
    from pipeline.synthesize import generate_dataset

    cfg = _config(params)
    workers = workers if workers is not None else cfg.synthetic.workers or None
    summary = generate_dataset(cfg.synthetic, cfg.seed, out, workers, progress=not quiet)
    click.echo(f"wrote {sum(summary['frames'].values())} frames to {out or cfg.synthetic.out}: "
               + ", ".join(f"{k} {v}" for k, v in summary["instances"].items()))


@cli.command()
@dataset_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def inspect(root: str, fmt: str, annotations: tuple[str, ...], splits: tuple[str, ...], params: str,
            as_json: bool, quiet: bool) -> None:
    """Summarise the dataset at ROOT: frames, classes, instance counts and sizes, problems.

    Every frame is read as the pipeline would read it; the exit status is 1 when any problem is found.
    """
    from pipeline.inspection import format_report, inspect_dataset

    datasets = _datasets(root, fmt, annotations, splits, _config(params))
    report = inspect_dataset(datasets, progress=not quiet)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
    if report.problems:
        sys.exit(1)


@cli.command()
@dataset_options
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--to", type=click.Choice(["cityscapes", "coco", "both"]), default="both", show_default=True,
              help="cityscapes: full gtFine/leftImg8bit tree; coco: images + instances json; both.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert(root: str, fmt: str, annotations: tuple[str, ...], splits: tuple[str, ...], params: str,
            out: str, to: str, quiet: bool) -> None:
    """Convert the dataset at ROOT into OUT (Cityscapes tree and/or Cityscapes-as-COCO json).

    OUT appears only when every frame is written; on a bad input file nothing is left behind.
    """
    from pipeline.convert import convert as run_convert

    datasets = _datasets(root, fmt, annotations, splits, _config(params))
    written = run_convert(datasets, out, to, progress=not quiet)
    click.echo(f"wrote {sum(written.values())} frames to {out}")


@cli.command()
@click.argument("name")
@click.option("--params", default="params.yaml", show_default=True, help="The params file to write the profile into.")
def profile(name: str, params: str) -> None:
    """Write the dataset profile NAME (profiles/NAME.yaml, or a YAML path) into the params file.

    A profile holds the params keys a dataset needs: its folders and class map, GAN input sizes of its
    aspect, pixel floors for its objects. Then `dvc exp run` (or `dvc repro`) runs the pipeline on it,
    e.g. `ctxaug profile camvid && dvc exp run -n camvid`. Comments and order in the file stay; the result
    is checked before the file is replaced. `git checkout params.yaml` goes back.
    """
    from pipeline.profiles import apply_profile

    changed = apply_profile(name, params)
    click.echo(f"{params}: {len(changed)} keys from {name}" + (f": {', '.join(changed)}" if changed else ""))


def _shard_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    i, sep, n = value.partition("/")
    if not sep or not i.isdigit() or not n.isdigit():
        raise click.BadParameter(f"expected i/n (e.g. 0/4), got {value!r}", param_hint="--shard")
    return int(i), int(n)


@cli.command()
@dataset_options
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--model", default=None, metavar="DIR",
              help="Trained insertion GAN (default: augment.model, the train stage's output).")
@click.option("--crops", default=None, metavar="DIR",
              help="Crop bank to take appearance from (default: augment.appearance.crops).")
@click.option("--per-frame", "per_frame", multiple=True, metavar="CLASS=N",
              help="Objects to insert per frame and class (repeatable; default: augment.per_frame).")
@click.option("--shard", default=None, metavar="I/N", help="Do every N-th frame from the I-th (0-based). "
              "Run all N shards (anywhere, any order) on the same OUT; the last to finish merges.")
@click.option("--originals/--no-originals", default=None,
              help="Copy the original frames beside the augmented ones (default: augment.copy_originals).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Default: augment.device.")
@click.option("--workers", type=int, default=None, help="Processes (default: augment.workers; 0 = one per core).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def augment(root: str, fmt: str, annotations: tuple[str, ...], splits: tuple[str, ...], params: str, out: str,
            model: str | None, crops: str | None, per_frame: tuple[str, ...], shard: str | None,
            originals: bool | None, device: str | None, workers: int | None, quiet: bool) -> None:
    """Insert persons and cars into every frame of the dataset at ROOT; write OUT.

    OUT gets the augmented Cityscapes tree (cityscapes/), COCO json per split (coco/annotations/),
    manifest.jsonl (one line per inserted object) and summary.json. Everything else comes from the
    'augment' section of --params. Re-run after an interruption, it continues where it stopped; a run
    with other params or another model starts OUT over.
    """
    import dataclasses

    from pipeline.augment import augment as run_augment
    from pipeline.config import DataConfig

    cfg = _config(params)
    datasets = _datasets(root, fmt, annotations, splits, cfg)
    counts = dict(cfg.augment.per_frame)
    for item in per_frame:
        name, sep, n = item.partition("=")
        if not sep or not n.isdigit():
            raise click.BadParameter(f"expected CLASS=N (e.g. person=2), got {item!r}", param_hint="--per-frame")
        counts[name] = int(n)
    coco_annotations = {}
    for item in annotations:
        split, sep, path = item.partition("=")
        split, path = (split, path) if sep else ("train", item)
        coco_annotations[split] = str(Path(path).resolve())
    cfg.data = DataConfig(root=root, format=fmt, coco_annotations=coco_annotations if fmt == "coco" else {},
                          semantic=cfg.data.semantic)
    app = dataclasses.replace(cfg.augment.appearance, crops=crops or cfg.augment.appearance.crops)
    cfg.augment = dataclasses.replace(
        cfg.augment, out=out, model=model or cfg.augment.model, splits=list(datasets), per_frame=counts,
        copy_originals=cfg.augment.copy_originals if originals is None else originals,
        device=device or cfg.augment.device, workers=cfg.augment.workers if workers is None else workers,
        appearance=app)
    cfg.augment.validate("augment")
    result = run_augment(cfg, _shard_option(shard), progress=not quiet)
    click.echo(f"augmented {result['frames_done']} frames in {result['seconds']} s")
    if result["merged"]:
        for name, info in result["summary"]["classes"].items():
            click.echo(f"  {name}: {info['inserted']} inserted, acceptance rate {info['acceptance_rate']}")
        if result["summary"]["errors"]:
            click.echo(f"  {len(result['summary']['errors'])} frames failed: see {out}/summary.json", err=True)
    else:
        click.echo("  other shards are not finished: the last one to finish writes the COCO files and manifest")


@cli.command()
@click.option("--params", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: prepare.out).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare(params: str, out: str | None, quiet: bool) -> None:
    """Write the insertion GAN's training examples and the crop bank of real person/car crops.

    Reads the dataset of the 'data' section; 'prepare' says the resolutions and instance filters. Same as
    `dvc repro prepare`.
    """
    from pipeline.prepare import prepare as run_prepare

    summary = run_prepare(_config(params), out, progress=not quiet)
    for split, info in summary["splits"].items():
        click.echo(f"{split}: {info['frames']} frames, instances {info['instances']}, rejected {info['rejected']}")


@cli.command()
@click.option("--params", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--metrics", default="metrics/train.json", show_default=True, help="Where the figures go.")
def train(params: str, metrics: str) -> None:
    """Train the insertion GAN (where + what modules), then score its raw placements on the val frames.

    Reads the prepared examples (prepare.out); sections 'seed', 'prepare', 'model' and 'train'; resumes
    from train.checkpoint_dir. Several processes: `torchrun
    --nproc_per_node N -m stages.train`. Same as `dvc repro train`.
    """
    from pipeline.train import train_stage

    result = train_stage(_config(params), metrics)
    for name, scores in result.get("where_raw", {}).items():
        click.echo(f"{name}: raw where samples plausible {scores.get('plausible')}")
    click.echo(f"figures in {metrics}")


@cli.command("train-renderer")
@click.option("--params", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--metrics", default="metrics/renderer.json", show_default=True, help="Where the figures go.")
def train_renderer(params: str, metrics: str) -> None:
    """Train the learned appearance path: the pix2pixHD-style renderer and the part network.

    Reads the dataset of the 'data' section; section 'renderer'; resumes from renderer.checkpoint_dir;
    writes renderer.out (`augment.appearance.mode: gan | gan+parts` loads augment.appearance.renderer: the same
    folder by default).
    Same as `dvc repro train_renderer`.
    """
    from pipeline.renderer_training import train_renderer_stage

    result = train_renderer_stage(_config(params), metrics)
    click.echo(f"renderer: {result['renderer']['steps']} steps in {result['renderer']['seconds']} s; "
               f"part accuracy {result['part_net'].get('accuracy')}; figures in {metrics}")


@cli.command()
@click.option("--params", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--metrics", default="metrics/evaluate.json", show_default=True, help="Where the figures go.")
@click.option("--plots", default="plots/evaluate", show_default=True, help="Folder of the plots' data.")
@click.option("--reports", default="reports", show_default=True, help="Folder of the gallery.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(params: str, metrics: str, plots: str, reports: str, quiet: bool) -> None:
    """Measure the augmentation: placement, shape, diversity, downstream over seeds, render modes, real frames.

    Reads the trained model (augment.model), the augment output (augment.out), the prepared data, the
    downstream runs (metrics/downstream/N-SEED.json: `dvc repro downstream`) and, with
    evaluate.render_frames > 0, the trained renderer (augment.appearance.renderer), as the 'evaluate' section
    of --params says; prints the headline figures; writes the gallery. Same as `dvc repro evaluate`.
    """
    from pipeline.evaluate import evaluate_stage

    result = evaluate_stage(_config(params), metrics, plots, reports, progress=not quiet)
    for name, row in result["placement"].items():
        raw, filtered = row["raw_where"] or {}, row["filtered"]
        click.echo(f"{name}: raw model samples plausible {raw.get('plausible')} (random boxes "
                   f"{(row['random_boxes'] or {}).get('plausible')}), acceptance {row['acceptance_rate']}; "
                   f"filtered: inserted {filtered.get('ours', {}).get('plausible')}, random "
                   f"{filtered.get('random', {}).get('plausible')}, real {filtered.get('real', {}).get('plausible')}")
    for n, summary in result["downstream"].items():
        for metric in ("detector_mask_ap50_person", "detector_mask_ap50_car", "segmenter_iou_person",
                       "segmenter_iou_car"):
            row = summary["metrics"][metric]
            arms = ", ".join(f"{arm} {row[arm]['mean']} +- {row[arm]['std']}" for arm in row if "_vs_" not in arm)
            click.echo(f"downstream N={n} {metric}: {arms}; ours vs copy_paste: "
                       f"{row.get('ours_vs_copy_paste', {}).get('verdict')}, vs rules: "
                       f"{row.get('ours_vs_rules', {}).get('verdict')}")
    click.echo(f"figures in {metrics}, gallery in {reports}/gallery.html")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.BadParameter as exc:  # a bad value (a file where a folder goes, ...): bad input, one line
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # a malformed command line: click's usage and its exit status 2
        exc.show()
        sys.exit(exc.exit_code)
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SystemExit:
        raise



