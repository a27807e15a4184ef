"""Does the ground under the inserted persons teach the segmenter where persons are? One inserted arm made again
with its persons allowed to stand only on the labels given (e.g. sidewalk, where most real persons stand, or road,
where few do), trained with the downstream runs' code and seeds, and read against a recorded run's arms seed by
seed.

    python benchmarks/support_arm.py write 40 --person-on sidewalk --out runs/support-sidewalk [--arm rules]
    python benchmarks/support_arm.py run 40 0 1 2 --out runs/support-sidewalk [--arm rules]
    python benchmarks/support_arm.py compare 40 --out runs/support-sidewalk --against docs/runs/builtin-steps600-gan0

write: the arms of N by the arms stage's code (``write_arms``: ``params.yaml``, the workspace's trained GAN and crop
bank) with one change, under OUT/arms/N, and the workspace's test split (``dvc repro downstream_test``) linked as
OUT/test. ``--arm rules``: the rules arm's persons stand only on ``--person-on`` (its cars keep the rules' ground);
the subset, ours and copy-paste arms come out as ``dvc repro arms@N`` writes them. ``--arm ours``: ours' inserter
keeps only the candidates whose persons stand on ``--person-on`` (the support rule on for persons; its cars keep
what ``augment.support`` gave them), so ours' persons are the GAN's own shapes and crops at the GAN's own positions
on that ground; the subset comes out as the stage writes it, and copy-paste and the rules move the new objects.
run: per seed, the arm's segmenter trained and scored as the downstream runs do it (``train_and_score`` with
``evaluate.downstream.threads`` torch threads; the seed's initial weights and batches), in
``evaluate.downstream.workers`` processes side by side; one JSON line per seed appended to OUT/runs.jsonl.
compare: per seed, the arm's person and car IoU minus the recorded run's arms of the same seed (its
``metrics/downstream/N-SEED.json``: the same test images, initial weights and batches), with the t 95% interval over
the seeds, and the false person blobs a seed by what lies under them; ``--more MORE`` takes the seeds the recorded
run lacks from ``more_seeds.py run``'s MORE/seeds.jsonl (the recorded arms trained at further seeds in the workspace
that wrote them; only the arms trained there are compared). ``run --arm ours`` on seed 0 of a rules
variant checks the pairing: it gives the recorded ours' figures to the last digit when the workspace's arms are the
recorded run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from downstream_errors import recorded_figures, t_cell  # noqa: E402

from pipeline.augmentation import build_inserter  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.downstream import METRICS_DIR, arms_root, run_name, test_root  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation import arms as arms_module  # noqa: E402
from pipeline.evaluation.arm_layout import ARMS  # noqa: E402
from pipeline.evaluation.copy_paste import Relocate  # noqa: E402
from pipeline.evaluation.runs import read_test_set, train_and_score, worker_count  # noqa: E402
from pipeline.io import read_json  # noqa: E402
from pipeline.labels import BY_NAME  # noqa: E402

RUNS_FILE = "runs.jsonl"
SEEDS_FILE = "seeds.jsonl"  # more_seeds.py run's: further seeds of a recorded run's arms


def rerooted(cfg: Config, out: Path) -> Config:
    """``cfg`` with the downstream experiment's folder moved to ``out`` (its arms, test split and runs)."""
    return dataclasses.replace(cfg, evaluate=dataclasses.replace(
        cfg.evaluate, downstream=dataclasses.replace(cfg.evaluate.downstream, out=str(out))))


def ground_only(labels: list[str]) -> type[Relocate]:
    """``Relocate`` whose rules arm lets persons stand only on ``labels`` (its cars keep the rules' ground)."""
    person = BY_NAME["person"].id
    ground = frozenset(BY_NAME[name].id for name in labels)

    class RelocateOn(Relocate):
        def __init__(self, bank, cfg: Config, rules: bool = False):
            super().__init__(bank, cfg, rules)
            if self.rules is not None:
                self.rules = dataclasses.replace(self.rules, support={**self.rules.support, person: ground})

    return RelocateOn


def ours_on(labels: list[str], candidates: int | None = None) -> Callable:
    """``build_inserter`` whose inserter keeps only persons that stand on ``labels`` (``augment.support`` on; the
    other classes keep their ground rule where it was on, stand anywhere where it was off), from ``candidates``
    draws per class and frame (default ``augment.candidates``: fewer of them pass on narrow ground, so more keep
    the dose)."""
    person = BY_NAME["person"].id
    ground = frozenset(BY_NAME[name].id for name in labels)

    def build(cfg: Config, device: torch.device, bank=None):
        inserter = build_inserter(dataclasses.replace(cfg, augment=dataclasses.replace(
            cfg.augment, support=True, candidates=candidates or cfg.augment.candidates)), device, bank)
        support = inserter.yardstick.support
        if not cfg.augment.support:  # the other classes keep what they had: no ground rule
            anywhere = frozenset(range(256))  # every value a label map's pixel can hold
            support = {label_id: anywhere for label_id in support}
        inserter.yardstick = dataclasses.replace(inserter.yardstick, support={**support, person: ground})
        return inserter

    return build


def checked_test_split(cfg: Config) -> Path:
    """The workspace's test split (``dvc repro downstream_test``), refused in one line where it is missing."""
    workspace_test = test_root(cfg).resolve()
    if not workspace_test.is_dir():
        raise ConfigError(f"{workspace_test}: missing (run the test split's stage: dvc repro downstream_test)")
    return workspace_test


def write_variant(cfg: Config, n: int, out: Path, workspace_test: Path) -> dict:
    """The arms of N by ``write_arms`` - with whatever the caller changed in its module - under OUT/arms/N, and the
    workspace's test split linked as OUT/test; returns the arms' summary."""
    out.mkdir(parents=True, exist_ok=True)
    variant = rerooted(cfg, out)
    summary = arms_module.write_arms(variant, n, arms_root(variant, n))
    link = test_root(variant)
    if not link.exists():
        link.symlink_to(workspace_test, target_is_directory=True)
    return summary


def write(cfg: Config, n: int, labels: list[str], out: Path, arm: str = "rules", candidates: int | None = None) -> None:
    unknown = [name for name in labels if name not in BY_NAME]
    if unknown:
        raise ConfigError(f"--person-on: no label {unknown[0]!r}")
    if candidates is not None and (arm != "ours" or candidates < 1):
        raise ConfigError("--candidates: a positive count, with --arm ours")
    workspace_test = checked_test_split(cfg)
    if arm == "rules":  # write_arms' rules arm, and only it, gets the narrower ground
        arms_module.Relocate = ground_only(labels)
    else:  # ours' inserter keeps only persons on that ground
        arms_module.build_inserter = ours_on(labels, candidates)
    summary = write_variant(cfg, n, out, workspace_test)
    print(json.dumps({"arm": arm, "person_on": labels, "candidates": candidates, "inserted": summary["inserted"]}))


WORKER: dict = {}


def init_worker(cfg: Config) -> None:
    torch.set_num_threads(cfg.evaluate.downstream.threads)
    WORKER.update(cfg=cfg, test=read_test_set(cfg, test_root(cfg)))


def _train(n: int, arm: str, seed: int) -> dict:
    cfg = WORKER["cfg"]
    figures, _ = train_and_score(cfg, arms_root(cfg, n), arm, "segmenter", seed, WORKER["test"],
                                 torch.device("cpu"), progress=False)
    per_image = figures.pop("per_image")
    return {"n": n, "arm": arm, "seed": seed, "threads": cfg.evaluate.downstream.threads,
            "person_image_counts": per_image["person"], **figures}


def run(cfg: Config, n: int, arm: str, seeds: list[int], out: Path) -> None:
    variant = rerooted(cfg, out)
    if not (arms_root(variant, n) / arm).is_dir():
        raise ConfigError(f"{arms_root(variant, n) / arm}: missing (write it first: support_arm.py write {n} ...)")
    dc = variant.evaluate.downstream
    workers = worker_count(dc.workers, dc.threads, torch.device("cpu"), len(seeds))
    spawn = multiprocessing.get_context("spawn")  # as the downstream runs: a fresh interpreter, no forked OpenMP state
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=init_worker, initargs=(variant,)) as pool:
        for line in pool.map(_train, [n] * len(seeds), [arm] * len(seeds), seeds):
            with open(out / RUNS_FILE, "a") as f:
                f.write(json.dumps(line) + "\n")
            seg = line["segmenter"]
            print(f"{arm} seed {line['seed']}: person IoU {seg['person_iou']:.4f}, car IoU {seg['car_iou']:.4f}, "
                  f"{line['seconds']:.0f} s", flush=True)


def checked_arms(folder: Path, against: Path, n: int) -> None:
    """Refused in one line when ``folder``'s arms.json (copied there by more_seeds.py run) is not the recorded
    run's (``against``/arms/N/arms.json): its runs would not pair with the recorded ones."""
    mine, recorded = folder / "arms.json", against / "arms" / str(n) / "arms.json"
    if not mine.is_file() or not recorded.is_file() or read_json(mine) != read_json(recorded):
        raise ConfigError(f"{mine}: not the arms of {recorded} (run more_seeds.py in the workspace that "
                          "wrote the recorded run)")


def seeds_lines(folder: Path, n: int) -> dict[tuple[str, int], dict]:
    """``more_seeds.py run``'s lines for N in FOLDER/seeds.jsonl, by (arm, seed); none where the file is missing."""
    path = folder / SEEDS_FILE
    if not path.is_file():
        return {}
    return {(r["arm"], r["seed"]): r for r in map(json.loads, path.read_text().splitlines()) if r["n"] == n}


def further_seeds(more: Path, against: Path, n: int) -> dict[int, dict[str, dict]]:
    """Per seed and arm, the figures of the recorded run's arms trained at further seeds by ``more_seeds.py run``
    (MORE/seeds.jsonl)."""
    checked_arms(more, against, n)
    runs: dict[int, dict[str, dict]] = {}
    for (arm, seed), r in seeds_lines(more, n).items():
        runs.setdefault(seed, {})[arm] = r
    return runs


def compare(n: int, out: Path, against: Path, arm: str, more: Path | None = None) -> None:
    path = out / RUNS_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: missing (train first: support_arm.py run {n} SEED ...)")
    lines = {r["seed"]: r for r in map(json.loads, path.read_text().splitlines()) if r["arm"] == arm and r["n"] == n}
    seeds = sorted(lines)
    further = further_seeds(more, against, n) if more is not None else {}
    in_run = [s for s in seeds if s not in further or (against / METRICS_DIR / f"{run_name(n, s)}.json").is_file()]
    recorded = {seed: figures["arms"] for seed, figures in zip(in_run, recorded_figures(against, n, in_run),
                                                              strict=True)}
    recorded |= {s: further[s] for s in seeds if s not in recorded}
    arms = [a for a in ARMS if all(a in recorded[s] for s in seeds)]
    print(f"{arm} of {out} against {against}" + (f" and {more}" if more else "") + f": N = {n}, seeds {seeds}")
    for name in ("person", "car"):
        mine = np.array([lines[s]["segmenter"][f"{name}_iou"] for s in seeds])
        cells = [f"{name} IoU {mine.mean():.4f}"]
        for other in sorted(arms, key=("rules", "ours", "copy_paste", "subset").index):
            theirs = np.array([recorded[s][other]["segmenter"][f"{name}_iou"] for s in seeds])
            cells.append(f"minus {other} ({theirs.mean():.4f}) {t_cell(mine - theirs, 3)}")
        print("  " + "; ".join(cells))
    under = {}
    for label in ("variant", *arms):
        counts = [lines[s]["segmenter"] if label == "variant" else recorded[s][label]["segmenter"] for s in seeds]
        under[label] = [c["false_positives"]["person"]["under"] for c in counts]
    print("  false person blobs a seed by what lies under them: variant / " + " / ".join(arms))
    ground = sorted({k for runs in under.values() for u in runs for k in u},
                    key=lambda k: -sum(u.get(k, 0) for u in under["variant"]))
    for k in ground:
        print(f"    {k}: " + " / ".join(f"{np.mean([u.get(k, 0) for u in under[label]]):.0f}" for label in under))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the arms with one arm's persons on the given ground")
    w.add_argument("n", type=int)
    w.add_argument("--person-on", nargs="+", required=True, help="the labels the arm's persons may stand on")
    w.add_argument("--arm", default="rules", choices=("rules", "ours"), help="the arm whose persons move")
    w.add_argument("--candidates", type=int, help="ours: the GAN's draws per class and frame (default: "
                   "augment.candidates; more keep the dose on narrow ground)")
    r = sub.add_parser("run", help="train and score one arm's segmenter per seed")
    r.add_argument("n", type=int)
    r.add_argument("seeds", type=int, nargs="+")
    r.add_argument("--arm", default="rules", choices=ARMS)
    c = sub.add_parser("compare", help="the arm against a recorded run's arms, seed by seed")
    c.add_argument("n", type=int)
    c.add_argument("--against", type=Path, required=True, help="a recorded run folder, e.g. docs/runs/builtin-gan0")
    c.add_argument("--arm", default="rules", choices=ARMS)
    c.add_argument("--more", type=Path, help="the recorded arms at further seeds: more_seeds.py run's OUT (its "
                   "seeds.jsonl), for the seeds the recorded run lacks")
    for p in (w, r, c):
        p.add_argument("--out", type=Path, required=True, help="the variant's folder, e.g. runs/support-sidewalk")
        p.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with reported_as_one_line():
        if args.command == "compare":
            compare(args.n, args.out, args.against, args.arm, args.more)
            return
        cfg = load_config(args.params)
        if args.command == "write":
            write(cfg, args.n, args.person_on, args.out, args.arm, args.candidates)
        else:
            run(cfg, args.n, args.arm, args.seeds, args.out)


if __name__ == "__main__":
    main()
