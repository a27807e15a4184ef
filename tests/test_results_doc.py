"""docs/results.md is what benchmarks/results_report.py makes of the committed metrics: no figure on that page
is typed by hand, and a re-run whose metrics changed fails here until the page is regenerated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "results_report.py"


def test_the_results_page_agrees_with_the_metrics():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_page_quotes_the_metrics_it_is_made_from():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import results_report
    finally:
        sys.path.remove(str(SCRIPT.parent))
    text = results_report.report()
    placement = json.loads((ROOT / "metrics" / "evaluate.json").read_text())["placement"]
    for name, row in placement.items():
        assert f"{row['acceptance_rate']:.3f}" in text, name
    # The recorded runs: folders of the stages' metrics (a benchmark's own folder, e.g. support_arm.py's, has none)
    for run in sorted(p for p in (ROOT / "docs" / "runs").iterdir() if (p / "metrics").is_dir()):
        ev = json.loads((run / "metrics" / "evaluate.json").read_text())
        assert all(f"{row['raw_where']['plausible']:.3f}" in text for row in ev.get("placement", {}).values()), run.name
        for n, summary in ev.get("downstream", {}).items():  # the recorded downstream runs' paired intervals
            for rows in summary["paired"].values():
                quoted = [f"{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}" in text for row in rows.values()]
                assert all(quoted), (run.name, n)


def test_the_recorded_downstream_summaries_are_remade_from_their_runs():
    """docs/runs/NAME/metrics/evaluate.json's downstream summary is what benchmarks/recorded_runs_summary.py makes
    of the folder's runs and per-image counts with the current summary code (a change to it that moves a
    recorded figure fails here until the summaries are remade)."""
    from pipeline.downstream import run_folder_config, summarize_runs

    folders = [p for p in sorted((ROOT / "docs" / "runs").iterdir()) if (p / "runs").is_dir()]
    assert folders  # builtin-gpu, camvid-seed0
    for folder in folders:
        cfg = run_folder_config(folder)
        remade = json.loads(json.dumps(summarize_runs(cfg, folder / "metrics" / "downstream")))
        assert remade == json.loads((folder / "metrics" / "evaluate.json").read_text())["downstream"], folder.name


def test_the_replicates_summaries_are_remade_from_their_runs():
    """docs/runs/*-replicates-N.json is what benchmarks/replicates_summary.py makes of the named run folders'
    per-image counts with the current code."""
    from pipeline.downstream import replicated_differences, run_folder_config

    files = sorted((ROOT / "docs" / "runs").glob("*-replicates-*.json"))
    assert files  # camvid-replicates-25.json
    for path in files:
        written = json.loads(path.read_text())
        cfgs = {name: run_folder_config(ROOT / "docs" / "runs" / name) for name in written["replicates"]}
        remade = {"size": written["size"]} | replicated_differences(cfgs, written["size"])
        assert json.loads(json.dumps(remade)) == written, path.name


def test_the_summary_plans_the_measured_design_as_its_t_interval(tmp_path):
    """``replicates_summary.py --plan RxS`` at the design the runs have prints the t interval's own half-width
    (the plan is that interval at the mean squares the measured components expect); a design it cannot read is
    refused in one line."""
    script = ROOT / "benchmarks" / "replicates_summary.py"
    written = json.loads((ROOT / "docs" / "runs" / "camvid-replicates-25.json").read_text())
    folders = [str(ROOT / "docs" / "runs" / name) for name in written["replicates"]]
    first = next(iter(written["metrics"]["segmenter_iou_person"]["paired"].values()))
    measured = f"{len(folders)}x{first['seeds']}"
    result = subprocess.run([sys.executable, str(script), *folders, "--size", str(written["size"]),
                             "--out", str(tmp_path / "out.json"), "--plan", measured, "--plan", "6x40"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    plans = [float(line.split("+-")[1]) for line in lines if line.startswith(f"  plan {measured}:")]
    later = [float(line.split("+-")[1]) for line in lines if line.startswith("  plan 6x40:")]
    rows = [r for m in ("segmenter_iou_person", "segmenter_iou_car") for r in written["metrics"][m]["paired"].values()]
    assert len(plans) == len(later) == len(rows) == 6
    for plan, more_seeds, row in zip(plans, later, rows, strict=True):
        assert abs(plan - (row["t_ci95"][1] - row["t_ci95"][0]) / 2) < 2e-4, row
        assert more_seeds <= plan
    bad = subprocess.run([sys.executable, str(script), *folders, "--size", "25", "--out", str(tmp_path / "x.json"),
                          "--plan", "six"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "'six' is not REPLICATESxSEEDS" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.json").exists()
