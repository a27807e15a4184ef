"""docs/results.md, and the README's table of headline figures, from the metrics the pipeline's stages
wrote: the figures in one place, never typed by hand.

    python benchmarks/results_report.py            # rewrite what is out of date
    python benchmarks/results_report.py --check    # exit 1 when a page disagrees with the metrics

Reads the default run's `metrics/*.json` (what `dvc repro` wrote; `dvc.lock` records them) and each
recorded run under `docs/runs/` (a folder per run: its `params.yaml` and the `metrics/` its stages wrote,
e.g. the CamVid profile's training seeds). `tests/test_results_doc.py` runs the check, so the page cannot
drift from the metrics it quotes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml
from placement_report import placement_table, raw_over_real, share
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
RUNS = ROOT / "docs" / "runs"
ARMS = ("subset", "ours", "copy_paste", "rules")
OURS_FIRST = ("ours", "subset", "copy_paste", "rules")  # the README summary's order: ours / subset / copy-paste / rules
BASELINES = ("copy_paste", "rules")


def load(folder: Path, name: str) -> dict:
    path = folder / "metrics" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def segmenter_steps(folder: Path) -> int | None:
    """The downstream segmenter's training steps of the run in ``folder`` (its ``params.yaml``); None without one."""
    path = folder / "params.yaml"
    params = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return params.get("evaluate", {}).get("downstream", {}).get("steps")


def budget_head(head: str, steps: int | None) -> str:
    """``head`` with the segmenter's budget said: its figures are of a segmenter trained that long."""
    return f"{head}, segmenter {steps} steps" if steps else head


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def f3(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def rules_cell(row: dict | None) -> str:
    """plausible (support / overlap / scale)."""
    if not row:
        return "-"
    parts = "/".join(f"{row[r]:.2f}" for r in ("support", "overlap", "scale") if r in row)
    return f"{row['plausible']:.3f} ({parts})"


def pair(row: dict, fmt: str) -> str:
    """``ours / real`` of a row keyed by arm, or - where the metrics lack it."""
    return " / ".join(fmt.format(row[a]) for a in ("ours", "real")) if {"ours", "real"} <= set(row) else "-"


def placement(ev: dict) -> list[str]:
    p = ev.get("placement", {})
    classes = list(p)
    rows = []
    for label, read in (
        ("raw where samples, plausible (support/overlap/scale)", lambda c: rules_cell(p[c].get("raw_where"))),
        ("random boxes of real sizes", lambda c: rules_cell(p[c].get("random_boxes"))),
        ("the frames' own objects as boxes (ceiling)", lambda c: rules_cell(p[c].get("real_boxes"))),
        ("augment acceptance", lambda c: f3(p[c].get("acceptance_rate"))),
        ("inserted objects (filtered)", lambda c: rules_cell(p[c]["filtered"].get("ours"))),
        ("random copies of the inserted shapes", lambda c: rules_cell(p[c]["filtered"].get("random"))),
        ("the frames' own objects as masks", lambda c: rules_cell(p[c]["filtered"].get("real"))),
        ("median height inserted / real, px", lambda c: pair(p[c]["filtered"].get("median_height", {}), "{:.0f}")),
        ("median width / height inserted / real",
         lambda c: pair(p[c]["filtered"].get("median_aspect", {}), "{:.2f}")),
        ("median scale at the contact row, inserted / real",
         lambda c: pair(p[c]["filtered"].get("median_scale", {}), "{:.2f}")),
    ):
        rows.append([label, *(read(c) for c in classes)])
    return table(["on the val frames", *classes], rows)


def shapes(ev: dict, train: dict) -> list[str]:
    s, d, post = ev.get("shape", {}), ev.get("diversity", {}), train.get("what_posterior", {})
    classes = list(s)
    rows = [[f"precision / recall, {arm}", *(f"{s[c][arm]['precision']:.3f} / {s[c][arm]['recall']:.3f}"
                                             for c in classes)]
            for arm in ("raw", "inserted", "real_train", "box") if all(arm in s[c] for c in classes)]
    rows.append(["shape IoU over z_what / real pairs",
                 *(f"{d[c]['shape_iou_within']:.3f} / {d[c]['shape_iou_real']:.3f}" for c in classes)])
    rows.append(["box IoU over z_where", *(f"{d[c]['box_iou_within']:.3f}" for c in classes)])
    if post:
        rows.append(["what posterior KL, nats (active dims)",
                     *(f"{post[c]['kl_what']:.2f} ({post[c]['active_dims']})" for c in classes)])
        rows.append(["L1 to the real mask: posterior mean / z = 0",
                     *(f"{post[c]['l1_posterior_mean']:.3f} / {post[c]['l1_z_zero']:.3f}" for c in classes)])
    return table(["shapes (val)", *classes], rows)


def augment(aug: dict) -> list[str]:
    cls = aug.get("classes", {})
    rows = [[c, str(v["inserted"]), str(v["candidates_drawn"]), f3(v["acceptance_rate"]),
             ", ".join(f"{k} {n}" for k, n in v["rejected"].items())] for c, v in cls.items()]
    run = aug.get("augment", {})
    lines = table(["class", "inserted", "drawn", "acceptance", "rejected"], rows)
    if run.get("frames_per_second"):
        lines += ["", f"{run['frames_done']} frames at {run['frames_per_second']} frames/s ({run['device']})."]
    return lines


def dose_line(summary: dict) -> str:
    """The inserted objects per arm and their share of the arm's persons and cars."""
    dose = summary.get("dose")
    if not dose:
        return ""
    asked = dose.get("per_frame") or {}  # a class not asked for (CamVid's riders) is inserted by no arm
    shares = "; ".join(f"{arm} " + ", ".join(f"{c} {dose['inserted'][arm].get(c, 0)} ({part:.0%})"
                                             for c, part in dose["inserted_share"][arm].items()
                                             if not asked or c in asked)
                       for arm in dose["inserted_share"])
    return (f" Dose: {dose['copies']} augmented copies of each frame, {dose['per_frame']} objects asked per copy; "
            f"inserted (share of the arm's objects): {shares}.")


def downstream(ev: dict, steps: int | None) -> list[str]:
    """The tables of one run's downstream summary ``ev``, its segmenter trained ``steps`` steps (None: unknown)."""
    lines = []
    budget = f", the segmenter trained {steps} steps" if steps else ""
    for n, summary in ev.get("downstream", {}).items():
        lines += ["", f"N = {n} training frames, seeds {summary['seeds']}, scored on {summary['test_frames']} "
                      f"{summary['split']} frames{budget}; training frames per arm {summary['train_frames']}. "
                      "Mean +- std over seeds; ours minus each baseline with the paired t-test's p."
                      f"{dose_line(summary)}", ""]
        rows = []
        for metric, row in summary["metrics"].items():
            cells = [f"{row[a]['mean']:.4f} +- {row[a]['std']:.4f}" if row[a]["std"] is not None else
                     f3(row[a]["mean"]) for a in ARMS]
            for b in BASELINES:
                v = row[f"ours_vs_{b}"]
                cells.append("-" if v["difference"] is None else
                             f"{v['difference']:+.4f} (p {v['p']:.2f})" if v.get("p") is not None else
                             f"{v['difference']:+.4f}")
            rows.append([metric, *cells])
        lines += table(["metric", *ARMS, *(f"ours - {b}" for b in BASELINES)], rows)
        paired = summary.get("paired", {})
        if paired:
            lines += ["", "Ours minus each arm, paired (the same seeds and test images), with the 95% interval of a "
                          "bootstrap over seeds and test images (`pipeline/evaluation/paired.py`):", ""]
            others = sorted({k.removeprefix("ours_minus_") for row in paired.values() for k in row})
            prow = [[metric, *(f"{row[f'ours_minus_{o}']['difference']:+.4f} "
                               f"[{row[f'ours_minus_{o}']['ci95'][0]:+.4f}, {row[f'ours_minus_{o}']['ci95'][1]:+.4f}]"
                               for o in others)] for metric, row in paired.items()]
            lines += table(["metric", *(f"ours - {o}" for o in others)], prow)
    return lines


def render_modes(ev: dict) -> list[str]:
    r = ev.get("render_modes")
    if not r:
        return []
    rows = [[mode, f3(r[mode]["miou"]), f3(r[mode]["inserted_accuracy"])]
            for mode in ("paste", "gan", "gan+parts") if mode in r]
    return ["", f"Render modes on {r['frames']} {r['split']} frames, read by the subset arm's segmenter:", "",
            *table(["mode", "mIoU", "inserted pixels read as their class"], rows)]


def real_frames(ev: dict) -> list[str]:
    r = ev.get("real_frames", {})
    if not r.get("placement"):
        return []
    rows = [[c, f3(r.get("acceptance", {}).get(c)), rules_cell(v.get("ours")), rules_cell(v.get("real"))]
            for c, v in r["placement"].items()]
    return ["", f"Real frames ({r['frames']} at `{r['root']}`):", "",
            *table(["class", "acceptance", "inserted (filtered)", "their own objects"], rows)]


def replicates_section(rep: dict) -> list[str]:
    """The downstream experiment over replicates (benchmarks/replicates_summary.py's file): each arm's figure
    over the replicates, and ours minus each other arm with both intervals and each replicate's difference."""
    if not rep:
        return []
    metrics = rep["metrics"]
    first = next(iter(next(iter(metrics.values()))["paired"].values()))
    lines = ["", f"N = {rep['size']}, {len(rep['replicates'])} replicates ({', '.join(rep['replicates'])}), "
                 f"{first['seeds']} seeds each, {first['images']} test images. Each arm's figure is the mean over the "
                 "replicates of the mean over their seeds:", ""]
    lines += table(["metric", *ARMS], [[m, *(f3(v["mean"].get(a)) for a in ARMS)] for m, v in metrics.items()])
    lines += ["", "Ours minus each arm, replicates and seeds read as crossed random factors (seed s is the same "
                  "initial weights and batches under every GAN): the 95% interval of the bootstrap over replicates, "
                  "seeds (the same for every drawn replicate) and test images, the two-way t interval of the "
                  "replicates x seeds table (with few of either the bootstrap runs narrow and the t interval leaves "
                  "out the test images' noise: resolved when both exclude zero), each replicate's and each seed's "
                  "difference, and (IoU) the seeds at this many replicates, and the replicates at this many seeds, "
                  "a t interval of +-0.02 would take at the measured variance components (its half-width at the mean "
                  "squares they expect, on its Satterthwaite degrees of freedom: few GANs that differ widen it; - "
                  "where that factor alone cannot reach it):", ""]
    rows = [[m, other.removeprefix("ours_minus_").replace("_", "-"), f"{r['difference']:+.4f}",
             f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]", f"[{r['t_ci95'][0]:+.4f}, {r['t_ci95'][1]:+.4f}]",
             ", ".join(f"{d:+.3f}" for d in r["per_replicate"]), ", ".join(f"{d:+.3f}" for d in r["per_seed"]),
             str(r["seeds_needed"] or "-"), str(r["replicates_needed"] or "-")]
            for m, v in metrics.items() for other, r in v["paired"].items()]
    return lines + table(["metric", "ours minus", "difference", "bootstrap 95%", "t 95%", "per replicate",
                          "per seed", "seeds for +-0.02", "replicates for +-0.02"], rows)


def more_seeds_command(path: Path, more: dict) -> str:
    """The command that prints the figures of ``path`` (benchmarks/more_seeds.py's paired-N.json, read as ``more``)."""
    return (f"python benchmarks/more_seeds.py compare {more['size']} --out {path.parent.relative_to(ROOT)} "
            f"--against docs/runs/{more['recorded']}")


def more_seeds_section(more: dict) -> list[str]:
    """A recorded run's comparison carried to further seeds by some of its arms (benchmarks/more_seeds.py's
    paired-N.json): each arm's figure over all the seeds, and ours minus each with both intervals."""
    seeds = more["seeds"]
    metrics = more["metrics"]
    arms = [a for a in ARMS if a in next(iter(metrics.values()))["mean"]]
    lines = ["", f"N = {more['size']}, {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}): {more['recorded']}'s seeds and "
                 "further ones of these arms (the pairing checked by a recorded seed trained again). Each arm's figure "
                 "is the mean over the seeds:", ""]
    lines += table(["metric", *arms], [[m, *(f3(v["mean"][a]) for a in arms)] for m, v in metrics.items()])
    lines += ["", "Ours minus each: the paired bootstrap over seeds and test images with its half-width, the t "
                  "interval over the seeds' own differences, and (IoU) the seeds a half-width of 0.02 would take at "
                  "this spread:", ""]
    rows = [[m, other.removeprefix("ours_minus_").replace("_", "-"), f"{r['difference']:+.4f}",
             f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]", f"{r['half_width']:.4f}",
             f"[{r['t_ci95'][0]:+.4f}, {r['t_ci95'][1]:+.4f}]", str(r["seeds_needed"] or "-")]
            for m, v in metrics.items() for other, r in v["paired"].items()]
    return lines + table(["metric", "ours minus", "difference", "bootstrap 95%", "half-width", "t 95%",
                          "seeds for +-0.02"], rows)


def report() -> str:
    ev, train, aug, prep = (load(ROOT, n) for n in ("evaluate", "train", "augment", "prepare"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    lines = [
        "# Results",
        "",
        "Generated by `python benchmarks/results_report.py` from the metrics the pipeline's stages wrote; do not",
        "edit by hand (`tests/test_results_doc.py` fails when this page and the metrics disagree). How the",
        "defaults were chosen, and figures of earlier code: docs/history.md.",
        "",
        f"## The built-in dataset, default params (seed {params.get('seed', 0)})",
        "",
        "`dvc repro` on the built-in synthetic dataset; `metrics/evaluate.json`, `metrics/train.json`,",
        "`metrics/augment.json`. Rules: support, overlap and the ground-plane scale of `pipeline/rules.py`.",
        "",
        *placement(ev),
        "",
        *shapes(ev, train),
        "",
        "### Augment",
        "",
        *augment(aug),
        "",
        "### Downstream",
        *downstream(ev, segmenter_steps(ROOT)),
        *render_modes(ev),
        *real_frames(ev),
    ]
    runs = sorted(p for p in RUNS.iterdir() if p.is_dir()) if RUNS.is_dir() else []
    placed = [r for r in runs if load(r, "evaluate").get("placement")]
    if runs:
        lines += ["", "## Recorded runs (docs/runs/)", "",
                  "Each folder holds the run's `params.yaml` and the metrics its stages wrote; "
                  f"`python benchmarks/placement_report.py {' '.join(str(r.relative_to(ROOT)) for r in placed)}`.",
                  "", *placement_table(placed)]
        for run in runs:
            down = downstream(load(run, "evaluate"), segmenter_steps(run))
            if down:
                lines += ["", f"### Downstream, {run.name}", *down]
    for path in sorted(RUNS.glob("*/paired-*.json")) if RUNS.is_dir() else []:
        more = json.loads(path.read_text())
        lines += ["", f"### Downstream with further seeds, {path.parent.name} (`{more_seeds_command(path, more)}`)",
                  *more_seeds_section(more)]
    for path in sorted(RUNS.glob("*-replicates-*.json")) if RUNS.is_dir() else []:
        lines += ["", f"### Downstream over replicates, {path.stem} (`python benchmarks/replicates_summary.py`)",
                  *replicates_section(json.loads(path.read_text()))]
    budget = budget_rows(["person", "car"])
    if budget:
        lines += ["", "## The segmenter's training budget (built-in val, the development split)", "",
                  "How long the downstream segmenter must train before its figures settle: the subset and ours at each "
                  "budget, one GAN, the same seeds (`benchmarks/segmenter_stability.py`; docs/history.md, \"The "
                  "segmenter's training budget\").", "", *table(["", "person", "car", "made by"], budget)]
    return "\n".join(lines).rstrip() + "\n"


CAMVID_DOWNSTREAM = "camvid-steps1200"
# ... and at CamVid's own resolution (the profile's segmenter size since): another GAN, per N (the same GAN, val
# frames and segmenter); their ours and subset arms carried to more seeds (benchmarks/more_seeds.py) lie beside
# each, in NAME-more-seeds, where that folder exists
CAMVID_NATIVE = {25: "camvid-native-gan0", 50: "camvid-native-gan0-n50", 100: "camvid-native-gan0-n100"}
# The experiments read over several trained GANs (benchmarks/replicates_summary.py's files), by dataset
REPLICATES = {"built-in": "builtin-replicates-40.json", "CamVid at 256x192": "camvid-replicates-25.json"}
# The built-in experiment at the 600-step default, the default GAN, many seeds
BUILTIN_600 = "builtin-steps600-gan0"
# How many steps the downstream segmenter needs: benchmarks/segmenter_stability.py's models on the built-in val split
BUDGET = "segmenter-budget-val.jsonl"
SUMMARY_START = "<!-- results: made by benchmarks/results_report.py from the metrics; do not edit -->"
SUMMARY_END = "<!-- /results -->"


def budget_rows(classes: list[str]) -> list[list[str]]:
    """The built-in downstream segmenter at each training budget measured on val (one GAN): IoU of the subset
    and ours, and ours minus the subset with its t interval over the seeds both arms ran."""
    path = RUNS / BUDGET
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    budgets = sorted({r["steps"] for r in records})

    def iou(steps: int, arm: str, c: str) -> dict[int, float]:
        return {r["seed"]: r[f"{c}_iou"] for r in records if r["steps"] == steps and r["arm"] == arm}

    def paired(steps: int, c: str) -> np.ndarray:
        subset, ours = iou(steps, "subset", c), iou(steps, "ours", c)
        return np.array([[subset[k], ours[k]] for k in sorted(set(subset) & set(ours))])

    def difference(steps: int, c: str) -> str:
        d = np.diff(paired(steps, c), axis=1)[:, 0]
        low, high = stats.ttest_1samp(d, 0).confidence_interval(0.95)
        return f"{steps}: {d.mean():+.3f} [{low:+.3f}, {high:+.3f}]"

    head = (f"built-in val (the development split), one GAN, the segmenter trained {' / '.join(map(str, budgets))} "
            f"steps ({' / '.join(str(len(paired(b, 'person'))) for b in budgets)} seeds)")
    command = f"`python benchmarks/segmenter_stability.py --out docs/runs/{BUDGET} summary`"
    return [[f"{head}: segmenter IoU, subset / ours",
             *["; ".join(f"{b}: {m[0]:.3f} / {m[1]:.3f}" for b in budgets for m in [paired(b, c).mean(axis=0)])
               for c in classes], command],
            [f"{head}: segmenter IoU, ours minus subset [95% t interval over seeds]",
             *["; ".join(difference(b, c) for b in budgets) for c in classes], command]]


def summary() -> str:
    """The README's headline figures, each with the command that makes it: one table of placement, and one of the
    downstream experiments, a row each (every arm's person IoU and ours minus each other arm with its interval);
    every other figure of those runs: docs/results.md."""
    ev = load(ROOT, "evaluate")
    p = ev.get("placement", {})
    classes = [c for c in ("person", "car") if c in p]
    # The built-in GAN's placements over its trainings (the replicates' own folders): one seed's figure is
    # one draw of the GAN's training noise
    builtin_gans = replicates("built-in")
    gans = builtin_gans.get("replicates", [])
    trained = [load(RUNS / g, "train")["where_raw"] for g in gans]

    def per_class(read) -> list[str]:
        return [read(c) for c in classes]

    rows = [
        ["built-in: raw where samples plausible [95% interval, val frames resampled] (random boxes)",
         *per_class(lambda c: f"{share(p[c]['raw_where'])} ({p[c]['random_boxes']['plausible']:.3f})"),
         "`dvc repro`"],
        *([[f"built-in, {len(gans)} GANs ({', '.join(gans)}): raw where samples plausible, each",
            *per_class(lambda c: " / ".join(f"{t[c]['plausible']:.3f}" for t in trained)),
            f"`dvc exp run -S train.seed=S` (docs/runs/{REPLICATES['built-in']})"]] if gans else []),
        ["built-in: augment acceptance", *per_class(lambda c: f3(p[c].get("acceptance_rate"))), "`dvc repro`"],
        ["built-in: inserted objects plausible (the frames' own)",
         *per_class(lambda c: f"{p[c]['filtered']['ours']['plausible']:.3f} "
                              f"({p[c]['filtered']['real']['plausible']:.3f})"), "`dvc repro`"],
    ]
    runs = sorted(r for r in RUNS.glob("camvid-seed*") if r.is_dir()) if RUNS.is_dir() else []
    if runs:
        camvid = [load(r, "evaluate").get("placement", {}) for r in runs]
        seeds = " / ".join(r.name.removeprefix("camvid-seed") for r in runs)
        rows += [
            [f"CamVid val, seeds {seeds}: raw where samples plausible, over the val objects' own (the ceiling) "
             "[95% interval, val frames resampled]",
             *per_class(lambda c: " / ".join(raw_over_real(e[c]) for e in camvid)),
             "`ctxaug profile camvid && dvc exp run`"],
            [f"CamVid val, seeds {seeds}: augment acceptance",
             *per_class(lambda c: " / ".join(f"{e[c]['acceptance_rate']:.3f}" for e in camvid)),
             "`ctxaug profile camvid && dvc exp run`"],
        ]
    verdicts = downstream_verdicts("built-in", ROOT, "`dvc repro`")
    verdicts += replicates_verdict("built-in", builtin_gans)
    # ... a default GAN's experiment on test at the default budget, over more seeds than the default run's (the GAN
    # the default params trained on the machine of 6 December: another kind of machine trains another, docs/history.md)
    if (RUNS / BUILTIN_600).is_dir():
        verdicts += downstream_verdicts("built-in, the default GAN of 6 December", RUNS / BUILTIN_600,
                                        f"`dvc exp run -S 'evaluate.downstream.seeds=[...]'` (docs/runs/{BUILTIN_600})")
    # CamVid at its own resolution, per N, with ours minus the subset (short of +-0.02) carried to more seeds where a
    # NAME-more-seeds folder holds them
    for n, name in CAMVID_NATIVE.items():
        if (RUNS / name).is_dir():
            seeds = ",".join(map(str, load(RUNS / name, "evaluate")["downstream"][str(n)]["seeds"]))
            more = RUNS / f"{name}-more-seeds" / f"paired-{n}.json"
            verdicts += downstream_verdicts(
                "CamVid at 480x360, one GAN", RUNS / name,
                f"`ctxaug profile camvid && dvc exp run -S 'evaluate.downstream.sizes=[{n}]' "
                f"-S 'evaluate.downstream.seeds=[{seeds}]'` (docs/runs/{name})", more)
    # Is N = 25's verdict the GAN's or the method's? The same experiment with GANs trained afresh, at 256x192
    verdicts += replicates_verdict("CamVid at 256x192", replicates("CamVid at 256x192"))
    # ... and that resolution's one-GAN grid over N (the 300-step grid of camvid-seed0, which hardly learned
    # persons, and the GPU's built-in runs stay in docs/results.md)
    sizes = ",".join(load(RUNS / CAMVID_DOWNSTREAM, "evaluate").get("downstream", {}))
    verdicts += downstream_verdicts("CamVid at 256x192, one GAN", RUNS / CAMVID_DOWNSTREAM,
                                    f"`ctxaug profile camvid && dvc exp run -S 'evaluate.downstream.sizes=[{sizes}]' "
                                    "-S 'evaluate.downstream.size=[256,192]'`")
    header = ["downstream experiment", "person IoU: ours / subset / copy-paste / rules",
              *(f"person IoU, ours minus {arm_names((o,))}" for o in OTHERS),
              f"car IoU, ours minus {arm_names(OTHERS)}", "look-alike pixels read as person, ours minus copy-paste",
              "made by"]
    lines = [SUMMARY_START, "", *table(["placement", *classes, "made by"], rows), "", *table(header, verdicts), "",
             SUMMARY_END]
    return "\n".join(lines)


OTHERS = OURS_FIRST[1:]  # ours minus each, in this order


def arm_names(arms: tuple[str, ...]) -> str:
    """``arms`` as a row label says them: ``ours / subset / copy-paste / rules``."""
    return " / ".join(a.replace("_", "-") for a in arms)


def interval(row: dict | None, ci: str = "ci95") -> str:
    """A paired difference with its 95% interval (``ci``: ``ci95`` the bootstrap's, ``t_ci95`` the t interval's)."""
    return "-" if row is None else f"{row['difference']:+.3f} [{row[ci][0]:+.3f}, {row[ci][1]:+.3f}]"


def verdict_row(head: str, iou: dict, paired: dict, ci: str, command: str, more: dict | None = None) -> list[str]:
    """One downstream experiment in a row of the README's table: each arm's person IoU (``iou``: arm -> mean), ours
    minus each other arm in person IoU, then in car IoU, and ours minus copy-paste in look-alike pixels read as
    person (``paired``: metric -> ``ours_minus_ARM`` -> difference and ``ci``). ``more``: a comparison carried to
    further seeds (benchmarks/more_seeds.py), whose intervals replace the recorded run's for the arms it holds."""
    extra = more["metrics"] if more else {}

    def cell(metric: str, other: str) -> str:
        carried = extra.get(metric, {}).get("paired", {}).get(f"ours_minus_{other}")
        if carried is not None:
            return f"{interval(carried)} ({len(more['seeds'])} seeds)"
        return interval(paired.get(metric, {}).get(f"ours_minus_{other}"), ci)

    return [head, " / ".join(f3(iou[a]) for a in OURS_FIRST),
            *(cell("segmenter_iou_person", o) for o in OTHERS),
            " / ".join(cell("segmenter_iou_car", o) for o in OTHERS),
            cell("lookalike_pixels_person", "copy_paste"), command]


def downstream_verdicts(name: str, folder: Path, command: str, more_path: Path | None = None) -> list[list[str]]:
    """The README rows of the downstream runs whose params and metrics are in ``folder``, one per N: intervals of
    the paired bootstrap over seeds and test images; ``more_path``: the run's comparison carried to further seeds
    (benchmarks/more_seeds.py's paired-N.json, for its N), where that file exists."""
    more = json.loads(more_path.read_text()) if more_path is not None and more_path.is_file() else None
    rows = []
    for n, summary_n in load(folder, "evaluate").get("downstream", {}).items():
        head = budget_head(f"{name}, N = {n}, {len(summary_n['seeds'])} seeds, {summary_n['split']}",
                           segmenter_steps(folder))
        carried = more if more and str(more["size"]) == n else None
        how = command
        if carried:
            others = arm_names(tuple(k.removeprefix("ours_minus_")
                                     for k in carried["metrics"]["segmenter_iou_person"]["paired"]))
            how += f"; ours minus {others}: `{more_seeds_command(more_path, carried)}`"
        iou = {a: summary_n["metrics"]["segmenter_iou_person"][a]["mean"] for a in OURS_FIRST}
        rows.append(verdict_row(head, iou, summary_n.get("paired", {}), "ci95", how, carried))
    return rows


def replicates(name: str) -> dict:
    """``name``'s experiment over GAN trainings (its file in ``REPLICATES``); empty while the file is absent."""
    path = RUNS / REPLICATES[name]
    return json.loads(path.read_text()) if path.is_file() else {}


def replicates_verdict(name: str, rep: dict) -> list[list[str]]:
    """The README row of dataset ``name``'s experiment over GAN trainings, ``rep`` (``replicates(name)``; none while
    its file is absent): the two-way t interval over GANs and seeds (the bootstrap's: docs/results.md)."""
    if not rep or "segmenter_iou_person" not in rep["metrics"]:
        return []
    m = rep["metrics"]
    first = next(iter(m["segmenter_iou_person"]["paired"].values()))
    steps = {segmenter_steps(RUNS / r) for r in rep["replicates"]}
    head = budget_head(f"{name}, N = {rep['size']}, {len(rep['replicates'])} GANs x {first['seeds']} seeds "
                       "(t intervals over GANs x seeds)", steps.pop() if len(steps) == 1 else None)
    paired = {k: v["paired"] for k, v in m.items()}
    return [verdict_row(head, m["segmenter_iou_person"]["mean"], paired, "t_ci95",
                        f"`python benchmarks/replicates_summary.py` (docs/runs/{REPLICATES[name]})")]


def with_summary(readme: str) -> str:
    start, end = readme.index(SUMMARY_START), readme.index(SUMMARY_END) + len(SUMMARY_END)
    return readme[:start] + summary() + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 when docs/results.md differs")
    args = parser.parse_args()
    pages = {OUT: report(), README: with_summary(README.read_text())}
    stale = [path for path, text in pages.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)}: out of date with the metrics; run `python benchmarks/results_report.py`",
                  file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path in stale:
        path.write_text(pages[path])
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
