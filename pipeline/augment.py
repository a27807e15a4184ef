"""The ``augment`` stage: insert new objects into every frame and write the augmented dataset.

Layout of ``augment.out`` (default ``data/augmented``)::

    cityscapes/   the full Cityscapes tree: augmented frames (city ``{city}-aug``, docs/formats.md) and, with
                  ``copy_originals``, the original frames beside them
    coco/annotations/instances_{split}.json   every frame of the tree; ``file_name`` relative to
                  ``cityscapes/leftImg8bit/{split}``; inserted objects carry ``"inserted": true`` and
                  an ``insert_id`` that names their manifest line
    manifest.jsonl  one line per inserted object: frame, class, visible box and area, whole box and mask
                  (COCO RLE, before nearer objects cover it), seed and draw, model hash, crop source
    summary.json    per class: inserted, candidates drawn, acceptance rate, rejections; frame errors
    records/{split}/{frame}.json   one per finished frame (what it wrote, its annotations, its tallies)
    run.json        what the outputs depend on (the work key: params, weights and crops, code)

How it scales and resumes: every frame depends only on (seed, split, frame name) - its own seed, its
own random generators - so frames can be done in any order by any process. A frame is finished when
its record is written (last, atomically); a re-run skips finished frames, so a killed run restarted
completes to the same bytes. ``shard=(i, n)`` does every n-th frame from the i-th (``--shard i/n``, or
the torchrun rank); the COCO files, the manifest and the summary are merged from the records, in
dataset order, by whichever process finds every frame finished - so the merged output is the same
for any number of shards. A run whose params, weights, crops or code changed starts over (``run.json``, its
work key: ``checkpoints.py``); a frame whose input changed is done again (its record holds its digest).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.augmentation import (
    Context,
    augment_frame,
    build_context,
    frame_digest,
    frame_name,
    key_digest,
    record_path,
)
from pipeline.checkpoints import file_digest, files_digest, say_starting_over, tree_digest, work_key
from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.errors import PipelineError
from pipeline.insertion import REASONS
from pipeline.io import atomic_write_bytes, atomic_write_json, dumps_json, read_json
from pipeline.runtime import keep_freed_memory, resolve_device
from pipeline.writers.coco_writer import CocoWriter, augmented_coco_files


def run_key(cfg: Config, device: torch.device) -> dict:
    """The work key of the run (``checkpoints``): the params the augmented bytes depend on (not: workers,
    shards, progress bars), the weights and crops it loads, and the code it runs. Each frame's record adds
    the digest of that frame as read (``frame_digest``)."""
    weights = Path(cfg.augment.model) / "model.safetensors"
    if not weights.is_file():
        raise PipelineError(f"{weights}: no trained model (run the train stage: dvc repro train)")
    augment = dataclasses.asdict(cfg.augment)
    for key in ("workers", "device", "out", "model"):  # the model enters by its hash, the device by its type
        augment.pop(key)
    augment["appearance"].pop("renderer")  # the renderer enters by its hash (gan modes)
    params = {"seed": cfg.seed, "data": dataclasses.asdict(cfg.data), "coco": dataclasses.asdict(cfg.coco),
              "prepare": dataclasses.asdict(cfg.prepare), "model_config": dataclasses.asdict(cfg.model),
              "augment": augment, "device": device.type}
    inputs = {"model": file_digest(weights)}
    if cfg.augment.appearance.mode == "paste":  # the crop bank pastes its pixels; the renderer its weights
        inputs["crops"] = tree_digest(Path(cfg.augment.appearance.crops))
    else:
        renderer = Path(cfg.augment.appearance.renderer)
        # Its weights and styles (not config.json: its summary changes with every run, the network not).
        files = [*renderer.glob("*.safetensors"), *renderer.glob("styles.json")] if renderer.is_dir() else []
        inputs["renderer"] = files_digest(files, renderer)
    return work_key(params, inputs, __name__)


# -------------------------------------------------------------------------------------- the runner


_CONTEXT: Context | None = None


def _init_worker(cfg: Config, device: torch.device, key: dict, threads: int) -> None:
    global _CONTEXT
    torch.set_num_threads(threads)
    _CONTEXT = build_context(cfg, device, key)


def _job(args: tuple[str, int]) -> tuple[str, int, dict]:
    split, index = args
    return split, index, _guarded(_CONTEXT, split, index)


def _guarded(ctx: Context, split: str, index: int) -> dict:
    """``augment_frame`` with bad frames reported as a record (``on_error: skip``) or raised (``stop``).
    Only a bad input (``PipelineError``: an unreadable or inconsistent file) is a bad frame; any other
    exception is a bug and stops the run with its traceback, whatever ``on_error`` says."""
    try:
        record = augment_frame(ctx, split, index)
    except PipelineError as exc:  # one bad frame must not end a long run unless asked to
        if ctx.cfg.augment.on_error == "stop":
            raise
        frame = frame_name(ctx.dataset(split), index)
        message = str(exc)
        record = {"key": ctx.key, "inputs": None, "split": split, "frame": frame.stem, "error": message,
                  "images": [], "manifest": [], "stats": {}}
    record_file = record_path(ctx.out, frame_name(ctx.dataset(split), index))
    atomic_write_json(record_file, record)
    return record


def augment(cfg: Config, shard: tuple[int, int] | None = None, progress: bool = True,
            stop_after: int | None = None) -> dict:
    """Augment every frame of ``augment.splits`` that this shard owns and is not finished yet; merge
    when every frame is finished. Returns the run's figures (``merged`` says whether it merged)."""
    a = cfg.augment
    rank, world = _shard(shard)
    device = resolve_device(a.device)
    if device.type == "cuda" and world > 1 and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    key = run_key(cfg, device)
    # The model (and crops or renderer) loaded before anything is written: a missing or broken one is one
    # line and an untouched output folder, not a dead worker pool or a cleared run.
    ctx = build_context(cfg, device, key)
    out = Path(a.out)
    digest = key_digest(key)
    todo = []
    for split in a.splits:
        dataset = open_dataset(cfg.data, split, cfg.coco)
        for index in range(rank, len(dataset), world):
            if not _finished(record_path(out, frame_name(dataset, index)), digest, dataset, index):
                todo.append((split, index))
    _start_or_continue(out, key)
    if stop_after is not None:
        todo = todo[:stop_after]
    keep_freed_memory()
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"augment {rank}/{world}" if world > 1 else "augment", unit="frame",
               disable=not progress)
    workers = min(a.workers or os.cpu_count() or 1, max(1, len(todo)))
    if workers <= 1:
        for split, index in todo:
            _guarded(ctx, split, index)
            bar.update()
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(cfg, device, key, threads)) as pool:
            for _ in pool.map(_job, todo, chunksize=1):
                bar.update()
    bar.close()
    seconds = time.perf_counter() - t0
    if world > 1 and _distributed():
        torch.distributed.barrier()
    merged = None
    if rank == 0 or not _distributed():
        merged = merge(cfg, digest)
    return {"frames_done": len(todo), "seconds": round(seconds, 2),
            "frames_per_second": round(len(todo) / seconds, 3) if seconds > 0 and todo else None,
            "shard": [rank, world], "device": str(device), "merged": merged is not None,
            **({"summary": merged} if merged else {})}


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _shard(shard: tuple[int, int] | None) -> tuple[int, int]:
    """The explicit shard, or the torchrun rank (joining a gloo group for the final barrier)."""
    if shard is not None:
        i, n = shard
        if not (n >= 1 and 0 <= i < n):
            raise PipelineError(f"--shard {i}/{n}: expected i/n with 0 <= i < n")
        return i, n
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if not _distributed():
            torch.distributed.init_process_group("gloo")
        return int(os.environ.get("RANK", "0")), world
    return 0, 1


def _finished(path: Path, digest: str, dataset=None, index: int | None = None) -> bool:
    """Whether the frame's record is there, from a run under the same key - and, given its ``dataset`` and
    ``index``, made from the frame as it reads now."""
    if not path.is_file():
        return False
    try:
        record = read_json(path)
    except PipelineError:
        return False  # a corrupt record: redo the frame
    if not isinstance(record, dict) or record.get("key") != digest:
        return False
    if dataset is None:
        return True
    if record.get("error"):
        return False  # a bad frame is tried again: its file may have been fixed
    try:
        return record.get("inputs") == frame_digest(dataset[index])
    except PipelineError:
        return False  # unreadable now: its job reports it


def _start_or_continue(out: Path, key: dict) -> None:
    """Keep the outputs of a run under the same key (resume); clear those of any other, saying why."""
    run_file = out / "run.json"
    if run_file.is_file():
        try:
            stored = read_json(run_file)
        except PipelineError:
            stored = None
        if stored == key:
            return
        say_starting_over("augment", stored, key)
    for name in ("cityscapes", "coco", "records", "manifest.jsonl", "summary.json", "run.json"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    atomic_write_json(run_file, key, indent=2)


# -------------------------------------------------------------------------------------- the merge


def merge(cfg: Config, digest: str) -> dict | None:
    """COCO files, manifest and summary from the records, in dataset order; None while frames are
    missing. The result depends on the records only, not on who wrote them or in which order."""
    out = Path(cfg.augment.out)
    records: dict[str, list[dict]] = {}
    for split in cfg.augment.splits:
        dataset = open_dataset(cfg.data, split, cfg.coco)
        records[split] = []
        for index in range(len(dataset)):
            path = record_path(out, frame_name(dataset, index))
            if not _finished(path, digest):
                return None
            records[split].append(read_json(path))
    _remove_stale_temporaries(out)
    manifest = bytearray()
    summary: dict = {"frames": {}, "classes": {}, "errors": []}
    drawn, inserted, rejected = Counter(), Counter(), Counter()
    short = Counter()
    for split, items in records.items():
        coco = CocoWriter()
        split_drawn, split_inserted = Counter(), Counter()
        for record in items:
            if record["error"]:
                summary["errors"].append({"split": split, "frame": record["frame"], "error": record["error"]})
                continue
            for image in record["images"]:
                coco.add_image(image["file_name"], image["height"], image["width"], image["annotations"])
            for line in record["manifest"]:
                manifest += dumps_json(line)
            stats = record["stats"]
            drawn.update(stats["drawn"])
            inserted.update(stats["inserted"])
            split_drawn.update(stats["drawn"])
            split_inserted.update(stats["inserted"])
            rejected.update(stats["rejected"])
            for name, n in cfg.augment.per_frame.items():
                if stats["inserted"].get(name, 0) < n:
                    short[name] += 1
        coco.write(augmented_coco_files(out, split)[0])
        summary["frames"][split] = {"frames": len(items), "errors": sum(1 for r in items if r["error"]),
                                    "acceptance_rate": {name: round(split_inserted[name] / n, 4)
                                                        for name, n in sorted(split_drawn.items()) if n}}
    for name in sorted(cfg.augment.per_frame):
        summary["classes"][name] = {
            "inserted": inserted[name], "candidates_drawn": drawn[name],
            "acceptance_rate": round(inserted[name] / drawn[name], 4) if drawn[name] else None,
            "frames_short": short[name],
            "rejected": {r: rejected[f"{name}/{r}"] for r in REASONS if rejected[f"{name}/{r}"]},
        }
    atomic_write_bytes(out / "manifest.jsonl", bytes(manifest))
    atomic_write_json(out / "summary.json", summary, indent=2)
    return summary


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed run left in the tree or the records (never in the merged files, which
    another shard may be writing at this moment)."""
    for sub in ("cityscapes", "records"):
        root = out / sub
        if root.is_dir():
            for path in root.rglob(".*.tmp"):
                path.unlink(missing_ok=True)


def augment_stage(cfg: Config, metrics_path: str | Path = "metrics/augment.json") -> dict:
    """The DVC stage: augment, then write the run's figures (summary + speed) as DVC metrics."""
    result = augment(cfg)
    if result["merged"]:
        metrics = {"augment": {k: v for k, v in result.items() if k not in ("summary", "merged")},
                   **result["summary"]}
        atomic_write_json(Path(metrics_path), metrics, indent=2)
        for name, info in result["summary"]["classes"].items():
            print(f"augment {name}: {info['inserted']} inserted, acceptance {info['acceptance_rate']}, "
                  f"rejected {info['rejected']}")
        if result["summary"]["errors"]:
            print(f"augment: {len(result['summary']['errors'])} frames failed (see {cfg.augment.out}/summary.json)")
    return result
