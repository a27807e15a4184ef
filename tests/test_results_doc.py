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
    for run in sorted(p for p in (ROOT / "docs" / "runs").iterdir() if p.is_dir()):
        ev = json.loads((run / "metrics" / "evaluate.json").read_text())
        assert all(f"{row['raw_where']['plausible']:.3f}" in text for row in ev.get("placement", {}).values()), run.name
        for n, summary in ev.get("downstream", {}).items():  # the recorded downstream runs' paired intervals
            for rows in summary["paired"].values():
                quoted = [f"{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}" in text for row in rows.values()]
                assert all(quoted), (run.name, n)
