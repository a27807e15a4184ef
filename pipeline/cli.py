"""The ``ctxaug`` command line: every stage, and one-shot commands for datasets outside DVC.

Errors in the input (a bad file, a bad param) are printed as one line, ``error: <file>: <problem>``,
with exit status 1 and no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.config import CocoConfig, Config, load_config
from pipeline.errors import PipelineError


def _config(params: str) -> Config:
    return load_config(params) if Path(params).exists() or params != "params.yaml" else Config()


def _datasets(root: str, fmt: str, annotations: tuple[str, ...], splits: tuple[str, ...], coco: CocoConfig):
    """split -> dataset for the reader commands."""
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.datasets.coco import CocoDataset

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
    click.option("--format", "fmt", type=click.Choice(["cityscapes", "coco"]), default="cityscapes",
                 show_default=True, help="Layout of ROOT: a Cityscapes tree, or the image folder of a COCO dataset."),
    click.option("--annotations", multiple=True, metavar="SPLIT=FILE",
                 help="COCO instances json for a split (repeatable); with --format coco."),
    click.option("--split", "splits", multiple=True, help="Only these splits (Cityscapes; repeatable)."),
    click.option("--params", default="params.yaml", show_default=True,
                 help="params.yaml whose 'coco' section maps COCO categories onto classes."),
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

    datasets = _datasets(root, fmt, annotations, splits, _config(params).coco)
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

    datasets = _datasets(root, fmt, annotations, splits, _config(params).coco)
    written = run_convert(datasets, out, to, progress=not quiet)
    click.echo(f"wrote {sum(written.values())} frames to {out}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SystemExit:
        raise



